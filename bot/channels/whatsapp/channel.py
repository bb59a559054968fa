"""WhatsApp as a `bot.channels.base.Channel`: parse, render and send, on the Cloud API.

The webhook (bot.channels.whatsapp.webhook) and the outbox delivery (.deliver) add what only
WhatsApp needs around it: signatures, media fetched before dispatch, typed numbers, the
24-hour window and its templates.
"""

from __future__ import annotations

from typing import Any

from bot.channels.base import KeptFile, Limits
from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.client import CloudClient
from bot.channels.whatsapp.deliver import whatsapp_reply
from bot.channels.whatsapp.parse import Inbound, events
from bot.channels.whatsapp.render import CAPTION_LIMIT, TEXT_LIMIT, Outgoing, render
from handlers.messages import Incoming, Reply
from locales import DEFAULT_LANGUAGE, translator

#: WhatsApp counts characters (code points).
LIMITS = Limits(text=TEXT_LIMIT, caption=CAPTION_LIMIT)


class WhatsAppChannel:
    """The WhatsApp Business Cloud API of one phone number."""

    name = CHANNEL
    limits = LIMITS

    def __init__(
        self,
        client: CloudClient | None,
        language: str = DEFAULT_LANGUAGE,
        kept: KeptFile | None = None,
    ) -> None:
        self.client = client
        self.language = language  # for the words rendering adds (a list's button)
        self.kept = kept  # photos another platform keeps, as files here

    def parse(self, event: Any) -> Incoming | None:
        """The first message of a webhook body that the bot reads (an image still to fetch
        keeps its media id in `Photo.file_id`)."""
        if not isinstance(event, dict):
            return None
        try:
            found = events(event)
        except (ValueError, KeyError, TypeError):
            return None
        for item in found:
            if isinstance(item, Inbound):
                return item.incoming
        return None

    def render(self, reply: Reply) -> list[Outgoing]:
        return render(reply, translator(self.language))

    async def send_reply(self, address: str, reply: Reply) -> str | None:
        assert self.client is not None, "a channel made without a client only renders"
        ident: str | None = None
        for outgoing in self.render(await whatsapp_reply(reply, self.kept)):
            ident = await self.client.send(address, outgoing)
        return ident
