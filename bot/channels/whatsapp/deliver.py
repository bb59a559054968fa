"""Delivering outbox rows on WhatsApp: inside the 24-hour window the row is rendered as a live
reply would be; outside it (or after WhatsApp refused it for the window) it goes as its utility
template. WhatsApp's message id is returned, for the sender to keep on the row (status reports)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.client import CloudClient, WindowClosed
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.render import MAX_ROWS, Outgoing, render
from bot.channels.whatsapp.templates import template_message
from bot.channels.whatsapp.window import free_form_allowed
from handlers.messages import Photo, Reply
from locales import DEFAULT_LANGUAGE, translator
from outbox.intents import reply_for
from outbox.pace import Pace
from outbox.sender import Address, Deliver, Rejected
from storage.models import OutboxMessage

log = logging.getLogger(__name__)
#: Messages to one person: one a second, the few of one answer at once (Meta's pair rate
#: takes bursts of 45 in 6 s).
PER_CHAT_SECONDS = 1.0
PER_CHAT_BURST = 3
#: Evenly spaced, a late timer made up for. Meta counts arrivals, which requests bunched on
#: the way could push over the throughput: the pace's window counts a message from its grant
#: to its answer (outbox.pace), so the sender may run at the number's full throughput.
SENDING_BURST = 2.0


def whatsapp_pace(messages_per_second: float) -> Pace:
    """One pace for every message of a process to one business number, replies and outbox."""
    return Pace(
        messages_per_second,
        PER_CHAT_SECONDS,
        time.monotonic,
        asyncio.sleep,
        SENDING_BURST,
        PER_CHAT_BURST,
    )


def whatsapp_deliver(
    client: CloudClient,
    engine: Engine,
    clock: Callable[[], datetime],
    numbered: NumberedChoices | None = None,
) -> Deliver:
    numbered = numbered or NumberedChoices(engine)

    async def deliver(address: Address, message: OutboxMessage) -> str | None:
        if address.channel != CHANNEL:
            raise Rejected(f"not a WhatsApp address: {address.channel}")
        assert message.id is not None
        language = address.language or message.language or DEFAULT_LANGUAGE
        reply = reply_for(message, language)
        template = template_message(message.id, reply, language)
        if free_form_allowed(address.last_inbound_at, clock(), message.error):
            outgoing = render(whatsapp_reply(reply), translator(language))
            try:
                ident = await _send_all(client, address.address, outgoing)
            except WindowClosed:
                ident = await client.send(address.address, template)
            else:
                # Only a question with numbered options changes what a typed number means: a
                # reminder or an announcement leaves the chat's open question as it was.
                if len(reply.options) > MAX_ROWS and outgoing[-1].numbered:
                    await asyncio.to_thread(numbered.shown, address.address, outgoing[-1].numbered)
        else:
            ident = await client.send(address.address, template)
        return ident  # the sender records it with the row's "sent", for the status reports

    return deliver


def whatsapp_reply(reply: Reply) -> Reply:
    """`reply` as WhatsApp can carry it: a photo kept by another platform (a Telegram file id)
    cannot be fetched from here, so only its text goes."""
    photo = reply.photo
    if isinstance(photo, Photo):
        if photo.path:
            return replace(reply, photo=Path(photo.path))
        if not reply.text:
            raise Rejected("a photo kept by another platform cannot be sent on WhatsApp")
        return replace(reply, photo=None)
    return reply


async def _send_all(client: CloudClient, to: str, outgoing: list[Outgoing]) -> str:
    ident = ""
    for item in outgoing:
        ident = await client.send(to, item)
    return ident
