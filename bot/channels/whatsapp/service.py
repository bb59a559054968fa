"""The WhatsApp channel assembled from the settings: its client, webhook and outbox delivery."""

from __future__ import annotations

from dataclasses import dataclass

from bot.app import Sanad
from bot.channels.telegram_files import TelegramFiles
from bot.channels.whatsapp.client import CloudClient
from bot.channels.whatsapp.deliver import whatsapp_deliver, whatsapp_pace
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.webhook import WhatsAppWebhook
from outbox.pace import Pace
from outbox.sender import Deliver

MISSING = """\
WhatsApp is not fully configured: {missing} not set.
See docs/whatsapp.md for the steps in Meta's developer console."""


@dataclass(frozen=True)
class WhatsApp:
    client: CloudClient
    webhook: WhatsAppWebhook
    deliver: Deliver
    pace: Pace  # the number's: its throughput, the pair rate; replies and outbox alike
    telegram_files: TelegramFiles | None = None  # Telegram's photos, for WhatsApp recipients

    async def close(self) -> None:
        await self.client.aclose()
        if self.telegram_files is not None:
            await self.telegram_files.aclose()


def missing_settings(sanad: Sanad) -> list[str]:
    settings = sanad.settings
    names = {
        "WHATSAPP_TOKEN": settings.whatsapp_token,
        "WHATSAPP_PHONE_NUMBER_ID": settings.whatsapp_phone_number_id,
        "WHATSAPP_APP_SECRET": settings.whatsapp_app_secret,
        "WHATSAPP_VERIFY_TOKEN": settings.whatsapp_verify_token,
    }
    return [name for name, value in names.items() if not value]


def assemble_whatsapp(sanad: Sanad) -> WhatsApp:
    missing = missing_settings(sanad)
    if missing:
        raise ValueError(MISSING.format(missing=", ".join(missing)))
    settings = sanad.settings
    assert settings.whatsapp_token is not None and settings.whatsapp_phone_number_id
    client = CloudClient(
        settings.whatsapp_base_url, settings.whatsapp_phone_number_id, settings.whatsapp_token
    )
    # A photo Telegram keeps (a broadcast's picture sent there) reaches WhatsApp as a file:
    # fetched from Telegram once, when it is first sent here.
    files = TelegramFiles.of(settings) if settings.telegram_bot_token is not None else None
    kept = files.local if files is not None else None
    pace = whatsapp_pace(settings.whatsapp_messages_per_second)
    webhook = WhatsAppWebhook(sanad, client, kept, pace=pace)
    numbered: NumberedChoices = webhook.numbered
    deliver = whatsapp_deliver(client, sanad.engine, sanad.dispatcher.clock, numbered, kept)
    return WhatsApp(client, webhook, deliver, pace, files)
