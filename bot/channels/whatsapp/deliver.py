"""Delivering outbox rows on WhatsApp: inside the 24-hour window the row is rendered as a live
reply would be; outside it (or after WhatsApp refused it for the window) it goes as its utility
template. WhatsApp's message id is returned for the sender to record on the row (with its
"sent"), for its status reports; the last message of a row carries the row's id as callback
data, so that a report that comes before that write is kept for it (storage.deliveries)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from bot.channels.base import KeptFile
from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.client import CloudClient, WindowClosed
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.render import MAX_ROWS, Outgoing, mime_type, render
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
OUTBOX_ROW = "outbox:"
IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
IMAGE_BYTES = 5 * 1024 * 1024


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
    kept: KeptFile | None = None,
) -> Deliver:
    """Outbox rows -> WhatsApp; `kept` gives the files another platform keeps (Telegram's
    photos) as files here, for upload."""
    numbered = numbered or NumberedChoices(engine)

    async def deliver(address: Address, message: OutboxMessage) -> str:
        if address.channel != CHANNEL:
            raise Rejected(f"not a WhatsApp address: {address.channel}")
        assert message.id is not None
        language = address.language or message.language or DEFAULT_LANGUAGE
        reply = reply_for(message, language)
        template = template_message(message.id, reply, language)
        callback = callback_for(message.id)
        if not free_form_allowed(address.last_inbound_at, clock(), message.error):
            return await client.send(address.address, template, callback)
        outgoing = render(await whatsapp_reply(reply, kept), translator(language))
        try:
            ident = await _send_all(client, address.address, outgoing, callback)
        except WindowClosed:
            return await client.send(address.address, template, callback)
        # Only a question with numbered options, or one waiting for typed text, changes what a
        # typed answer means: a reminder or an announcement leaves the chat's open question as
        # it was.
        waits_for_text = reply.expect == "text"
        if (len(reply.options) > MAX_ROWS and outgoing[-1].numbered) or waits_for_text:
            await asyncio.to_thread(
                numbered.shown, address.address, outgoing[-1].numbered, waits_for_text
            )
        return ident

    return deliver


async def whatsapp_reply(reply: Reply, kept: KeptFile | None = None) -> Reply:
    """`reply` as WhatsApp can carry it: its photo a file on this machine, of a type and size
    WhatsApp takes as an image. A photo another platform keeps (a Telegram file id) is fetched
    from it (`kept`, once per file); when it cannot be had, or WhatsApp would refuse it, only
    the text goes (and a photo alone is refused)."""
    photo = reply.photo
    if isinstance(photo, Photo):
        photo = Path(photo.path) if photo.path else await _fetched(photo.file_id, kept)
    if photo is None or not sendable_image(photo):
        if reply.photo is None:
            return reply
        if not reply.text:
            raise Rejected("a photo WhatsApp cannot carry, and no text")
        log.warning("whatsapp: a photo WhatsApp cannot carry; its text goes alone")
        return replace(reply, photo=None)
    return replace(reply, photo=photo)


async def _fetched(file_id: str | None, kept: KeptFile | None) -> Path | None:
    if not file_id or kept is None:
        return None
    try:
        return await kept(file_id)
    except Rejected as error:  # Transient goes up: the row is tried again later
        log.warning("whatsapp: a photo kept by another platform is gone (%s)", error)
        return None


def sendable_image(path: Path) -> bool:
    """Whether WhatsApp takes the file as an image: JPEG or PNG, at most 5 MB (a file missing
    is the upload's to report)."""
    if mime_type(path) not in IMAGE_TYPES:
        return False
    try:
        return path.stat().st_size <= IMAGE_BYTES
    except OSError:
        return True


def callback_for(row_id: int) -> str:
    """The callback data of an outbox row's message (its status webhooks carry it back)."""
    return f"{OUTBOX_ROW}{row_id}"


def outbox_row(callback: str) -> int | None:
    """The outbox row a status webhook's callback data names, if any."""
    if not callback.startswith(OUTBOX_ROW) or not callback[len(OUTBOX_ROW) :].isdecimal():
        return None
    return int(callback[len(OUTBOX_ROW) :])


async def _send_all(client: CloudClient, to: str, outgoing: list[Outgoing], callback: str) -> str:
    """Send the messages of one reply; the last carries the callback data (its id is the one
    recorded: the reports of the others have no row to find)."""
    ident = ""
    for number, item in enumerate(outgoing, 1):
        ident = await client.send(to, item, callback if number == len(outgoing) else None)
    return ident
