"""Sanad's WhatsApp webhook over HTTP against the fake Cloud API, and people chatting on it.

async with WhatsAppChat(sanad) as wa:
    worker = wa.person("97333000001")
    await worker.says(f"start {code}")
    await worker.taps("English")
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from pydantic import SecretStr

from bot.app import Sanad
from bot.channels.webhook import create_app
from bot.channels.whatsapp.service import WhatsApp, assemble_whatsapp
from bot.invite_links import invite_links
from bot.metrics import Metrics
from tests.fakes.telegram_bot_server import serving_asgi
from tests.fakes.whatsapp_cloud import FakeCloudApi, FakeUser, Sent, serving_cloud
from tests.harness import plain

TOKEN = "EAAG-test-token-never-logged"
APP_SECRET = "app-secret-for-signatures"
VERIFY_TOKEN = "verify-me"


def with_whatsapp(sanad: Sanad, base_url: str, api: FakeCloudApi) -> Sanad:
    settings = sanad.settings.model_copy(
        update={
            "whatsapp_token": SecretStr(api.token),
            "whatsapp_phone_number_id": api.phone_number_id,
            "whatsapp_app_secret": SecretStr(api.app_secret),
            "whatsapp_verify_token": SecretStr(VERIFY_TOKEN),
            "whatsapp_number": api.display_number,
            "whatsapp_base_url": base_url,
        }
    )
    # The links of /invite follow the settings, as `assemble` would have built them.
    dispatcher = sanad.dispatcher
    dispatcher.services = replace(dispatcher.services, invite_link=invite_links(settings))
    return Sanad(settings, sanad.engine, dispatcher)


class WhatsAppChat:
    """The fake Cloud API and Sanad's webhook, both served over HTTP on 127.0.0.1."""

    def __init__(self, sanad: Sanad, api: FakeCloudApi | None = None) -> None:
        clock = sanad.dispatcher.clock
        self.api = api or FakeCloudApi(
            token=TOKEN, app_secret=APP_SECRET, clock=lambda: clock().timestamp()
        )
        self.sanad = sanad
        self._stack = AsyncExitStack()
        self.whatsapp: WhatsApp
        self.root = ""

    async def __aenter__(self) -> WhatsAppChat:
        base = await self._stack.enter_async_context(serving_cloud(self.api))
        self.sanad = with_whatsapp(self.sanad, base, self.api)
        self.sanad.dispatcher.replied_delay = 0.0
        self.whatsapp = assemble_whatsapp(self.sanad)
        app = create_app(self.sanad, None, Metrics(self.sanad.engine), self.whatsapp)
        await self._stack.enter_async_context(app.router.lifespan_context(app))
        self.root = await self._stack.enter_async_context(serving_asgi(app))
        self.api.webhook_url = f"{self.root}/whatsapp"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def person(self, wa_id: str, name: str = "Fatima") -> WhatsAppPerson:
        return WhatsAppPerson(self, self.api.user(wa_id, name))


class WhatsAppPerson:
    """Someone on WhatsApp; keeps what the bot sent in answer to their last action."""

    def __init__(self, chat: WhatsAppChat, user: FakeUser) -> None:
        self.chat = chat
        self.user = user
        self.answers: list[Sent] = []

    @property
    def api(self) -> FakeCloudApi:
        return self.chat.api

    async def _do(self, act: Any, *args: Any) -> list[str]:
        before = len(self.api.sent)
        act(*args)
        await self.api.push()
        self.answers = [m for m in self.api.sent[before:] if m.to == self.user.wa_id]
        return self.texts

    async def says(self, text: str) -> list[str]:
        return await self._do(self.user.text, text)

    async def replies_to(self, message: Sent, text: str) -> list[str]:
        """Reply to the bot's `message` (quoting it) with `text`."""
        return await self._do(self.user.reply, message, text)

    def message_asking(self, text: str) -> Sent:
        """The latest message the bot sent this person that contains `text`."""
        for message in reversed(self.api.to(self.user.wa_id)):
            if text in plain(message.text):
                return message
        raise AssertionError(f"no message containing {text!r}")

    async def taps(self, label: str) -> list[str]:
        """Press the button or list row showing `label` (its title, or the full label in a
        row's description or shortened in its title)."""
        message = self.choices_message
        for row in message.rows:
            if plain(row.get("description", "")) == label:
                return await self._do(self.user.press, message, row["title"])
        for _, title in message.choices:
            if title == label or plain(label).startswith(title.rstrip("…")):
                return await self._do(self.user.press, message, title)
        raise AssertionError(f"no choice {label!r} in {message.choices}")

    async def sends_photo(self, data: bytes) -> list[str]:
        return await self._do(self.user.image, data)

    async def shares_location(self, latitude: float, longitude: float) -> list[str]:
        return await self._do(self.user.location, latitude, longitude)

    async def sends(self, kind: str) -> list[str]:
        return await self._do(self.user.other, kind)

    @property
    def choices_message(self) -> Sent:
        for message in reversed(self.api.to(self.user.wa_id)):
            if message.choices:
                return message
        raise AssertionError("no message with choices")

    @property
    def titles(self) -> list[str]:
        return [title for _, title in self.choices_message.choices]

    @property
    def texts(self) -> list[str]:
        return [plain(m.text) for m in self.answers]

    @property
    def last(self) -> str:
        return self.texts[-1]

    @property
    def everything(self) -> str:
        return "\n".join(self.texts)
