"""Delivering outbox rows on WhatsApp: inside the 24-hour window the row is rendered as a live
reply would be; outside it (or after WhatsApp refused it for the window) it goes as its utility
template. WhatsApp's message id is kept on the row, for its status reports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.client import CloudClient, WindowClosed
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.render import MAX_ROWS, Outgoing, render
from bot.channels.whatsapp.templates import template_message
from bot.channels.whatsapp.window import free_form_allowed
from handlers.messages import Option, Reply
from locales import DEFAULT_LANGUAGE, translator
from outbox.sender import Address, Deliver, Rejected
from storage.db import transaction
from storage.deliveries import last_inbound, record_platform_id
from storage.models import OutboxMessage, Person
from storage.outbox import FILE_ID

log = logging.getLogger(__name__)
#: The sender keeps a little under the number's throughput, without bursts: requests spaced
#: evenly here reach Meta a little bunched (network, concurrency), and Meta counts arrivals.
SENDING_SHARE = 0.95
SENDING_BURST = 1.0


def sending_rate(messages_per_second: float) -> float:
    """The sender's rate for a number allowed `messages_per_second`."""
    return messages_per_second * SENDING_SHARE


def whatsapp_deliver(
    client: CloudClient,
    engine: Engine,
    clock: Callable[[], datetime],
    numbered: NumberedChoices | None = None,
) -> Deliver:
    numbered = numbered or NumberedChoices(engine)

    async def deliver(address: Address, message: OutboxMessage) -> None:
        if address.channel != CHANNEL:
            raise Rejected(f"not a WhatsApp address: {address.channel}")
        assert message.id is not None
        language, last = await asyncio.to_thread(_facts, engine, message.person_id, address)
        if free_form_allowed(last, clock(), message.error):
            try:
                ident = await _send_all(client, address.address, _free_form(message, language))
            except WindowClosed:
                ident = await client.send(address.address, template_message(message, language))
            else:
                # Only a question with numbered options changes what a typed number means: a
                # reminder or an announcement leaves the chat's open question as it was.
                values = _numbered_of(message)
                if values:
                    await asyncio.to_thread(numbered.shown, address.address, values)
        else:
            ident = await client.send(address.address, template_message(message, language))
        await asyncio.to_thread(_record, engine, message.id, ident)

    return deliver


def _free_form(message: OutboxMessage, language: str) -> list[Outgoing]:
    photo = message.photo_path
    if photo and photo.startswith(FILE_ID):  # a photo kept by Telegram: WhatsApp cannot get it
        photo = None
        if not message.text:
            raise Rejected("a photo kept by Telegram cannot be sent on WhatsApp")
    reply = Reply(
        message.text,
        tuple(Option(label, value) for label, value in message.options),
        photo=Path(photo) if photo else None,
    )
    return render(reply, translator(language))


def _numbered_of(message: OutboxMessage) -> tuple[str, ...]:
    if len(message.options) <= MAX_ROWS:
        return ()
    outgoing = _free_form(message, DEFAULT_LANGUAGE)
    return outgoing[-1].numbered if outgoing else ()


async def _send_all(client: CloudClient, to: str, outgoing: list[Outgoing]) -> str:
    ident = ""
    for item in outgoing:
        ident = await client.send(to, item)
    return ident


def _facts(engine: Engine, person_id: int, address: Address) -> tuple[str, datetime | None]:
    with transaction(engine) as session:
        person = session.get(Person, person_id)
        language = (person.language if person else None) or DEFAULT_LANGUAGE
        return language, last_inbound(session, address.channel, address.address)


def _record(engine: Engine, message_id: int, ident: str) -> None:
    with transaction(engine) as session:
        record_platform_id(session, message_id, ident)
