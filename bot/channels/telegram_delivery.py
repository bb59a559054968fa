"""The Telegram channel's renderer and sender: one path for direct replies and outbox messages.

A `Reply` becomes Bot API calls within Telegram's limits, counted as Telegram counts them, in
UTF-16 code units (an emoji outside the BMP counts 2): 4096 a text, 1024 a caption. A longer
text is split (bot.channels.base.split: never inside a word, a number or a bidi isolate); a
photo or document whose text does not fit its caption goes without one, followed by the text;
the options become an inline keyboard on the last message.

How Telegram's answers map (outbox.sender decides what each means for an outbox row; a direct
reply that fails waits in the outbox, unless the person is unreachable):

* 429 with retry_after (`telegram.error.RetryAfter`) -> `RetryAfter`: the sender waits;
* 403 (`Forbidden`: blocked by the user, deactivated) -> `Unreachable`;
* 400 "chat not found" / "user not found" -> `Unreachable` too: the account is gone, which is
  a fact about the person, not about this message;
* any other 400 (`BadRequest`: bad button data, bad photo) -> `Rejected`: the same request
  would fail again, so the row is "failed" at once;
* 5xx, timeouts, the network (`NetworkError`, `TimedOut`) and other Telegram errors ->
  `Transient`: retried with backoff.

Use a bot built with a connection pool (`bot.channels.telegram.build_telegram`, `make_bot`):
a bare `Bot()` has a pool of one connection, below the sender's concurrency.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.error import RetryAfter as TelegramRetryAfter
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from bot.channels.base import (
    Address,
    Limits,
    Rejected,
    RetryAfter,
    Transient,
    Unreachable,
    split,
    utf16_units,
)
from bot.channels.telegram_commands import set_chat_commands
from handlers.messages import Incoming, Location, Photo, Reply
from outbox.intents import reply_for
from outbox.sender import Deliver
from storage.models import OutboxMessage

CHANNEL = "telegram"
#: What Telegram's file ids are made of (URL-safe base64): never a path, which PTB would upload.
TELEGRAM_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
GONE = ("chat not found", "user not found")
LIMITS = Limits(text=4096, caption=1024, measure=utf16_units)
BUTTON_LABEL_LIMIT = 60

# `send_text` asks for sendMessage through `Bot.do_api_request`, which suggests
# `Bot.send_message` for endpoints PTB knows; that suggestion is the one thing we decline.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage'", category=PTBUserWarning)


@dataclass(frozen=True)
class TelegramMessage:
    """One Bot API call of a rendered reply: a text, or a photo or document (a path to upload
    or a file id Telegram keeps) with an optional caption."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    photo: Path | str | None = None
    document: Path | None = None


class TelegramChannel:
    """Telegram through python-telegram-bot's `Bot`."""

    name = CHANNEL
    limits = LIMITS

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.uploaded = UploadedPhotos()

    def parse(self, event: Any) -> Incoming | None:
        return to_incoming(event) if isinstance(event, Update) else None

    def render(self, reply: Reply) -> list[TelegramMessage]:
        return render(reply)

    async def send_reply(self, address: str, reply: Reply) -> str | None:
        """Send `reply`; returns Telegram's id of the last message (the one with its buttons)."""
        chat_id = int(address)
        if reply.commands is not None:  # logged and left if Telegram refuses it
            await set_chat_commands(self.bot, chat_id, reply.commands)
        shown: str | None = None
        try:
            for message in render(reply):
                shown = await _call(self.bot, chat_id, message, self.uploaded)
            return shown
        except TelegramRetryAfter as error:
            raise RetryAfter(retry_after_seconds(error)) from error
        except Forbidden as error:
            raise Unreachable(error.message) from error
        except BadRequest as error:  # before NetworkError, of which it is a subclass
            if any(phrase in error.message.lower() for phrase in GONE):
                raise Unreachable(error.message) from error
            raise Rejected(error.message) from error
        except TelegramError as error:
            raise Transient(error.message) from error


def render(reply: Reply) -> list[TelegramMessage]:
    """The Bot API calls that carry `reply`, each within Telegram's limits."""
    markup = keyboard([(o.label, o.value) for o in reply.options], reply.columns)
    media: dict[str, Any] = {}
    if reply.document is not None:
        media = {"document": reply.document}
    elif reply.photo is not None:
        photo: Path | str | None
        if isinstance(reply.photo, Photo):
            photo = reply.photo.file_id or (Path(reply.photo.path) if reply.photo.path else None)
        else:
            photo = reply.photo
        media = {"photo": photo}
    if media:
        if LIMITS.measure(reply.text) <= LIMITS.caption:
            return [TelegramMessage(reply.text, markup, **media)]
        first = TelegramMessage("", None, **media)
        return [first, *_texts(reply.text, markup)]
    return _texts(reply.text, markup)


def _texts(text: str, markup: InlineKeyboardMarkup | None) -> list[TelegramMessage]:
    parts = split(text, LIMITS.text, LIMITS.measure)
    return [
        TelegramMessage(part, markup if number == len(parts) else None)
        for number, part in enumerate(parts, 1)
    ]


class UploadedPhotos:
    """Photo files uploaded once (one another channel keeps, a chart) are sent again by the
    file id Telegram gave them: a broadcast's picture is not uploaded for every recipient, and
    concurrent sends of one file wait for its first upload."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, int, int], str] = {}
        self.locks: dict[tuple[str, int, int], asyncio.Lock] = {}


async def _call(
    bot: Bot,
    chat_id: int,
    message: TelegramMessage,
    uploaded: UploadedPhotos | None = None,
) -> str:
    """Send one message; returns Telegram's id of it."""
    caption = message.text or None
    if message.document is not None:
        try:
            document = message.document.open("rb")
        except OSError as error:
            raise Rejected(f"document {message.document}: {error.strerror}") from error
        with document:
            sent = await bot.send_document(
                chat_id,
                document,
                caption=caption,
                filename=message.document.name,
                reply_markup=message.markup,
            )
        # A document is a chat export made for this message: once Telegram has it, the server
        # keeps no copy of the reports in it (an unsent one waits in the outbox for a retry).
        message.document.unlink(missing_ok=True)
        return str(sent.message_id)
    if isinstance(message.photo, str):  # a photo Telegram already has: its file id
        # PTB uploads a string that names a local file: a reference must look like Telegram's.
        if not TELEGRAM_FILE_ID.fullmatch(message.photo):
            raise Rejected("the photo is not a Telegram file id")
        sent = await bot.send_photo(
            chat_id, message.photo, caption=caption, reply_markup=message.markup
        )
        return str(sent.message_id)
    if message.photo is not None:
        return await _send_photo_file(
            bot, chat_id, message, message.photo, uploaded or UploadedPhotos()
        )
    return await send_text(bot, chat_id, message.text, message.markup)


async def _send_photo_file(
    bot: Bot, chat_id: int, message: TelegramMessage, path: Path, uploaded: UploadedPhotos
) -> str:
    """Send a photo file, by the file id Telegram gave it when it has one; returns Telegram's
    id of the message."""
    caption = message.text or None
    try:
        found = path.stat()
    except OSError as error:
        raise Rejected(f"photo {path}: {error.strerror}") from error
    key = (str(path.resolve()), found.st_size, found.st_mtime_ns)
    async with uploaded.locks.setdefault(key, asyncio.Lock()):
        if key in uploaded.ids:  # Telegram has it: its file id
            sent = await bot.send_photo(
                chat_id, uploaded.ids[key], caption=caption, reply_markup=message.markup
            )
            return str(sent.message_id)
        try:
            photo = path.open("rb")
        except OSError as error:
            raise Rejected(f"photo {path}: {error.strerror}") from error
        with photo:
            sent = await bot.send_photo(
                chat_id, photo, caption=caption, reply_markup=message.markup
            )
        if sent.photo and TELEGRAM_FILE_ID.fullmatch(sent.photo[-1].file_id):
            uploaded.ids[key] = sent.photo[-1].file_id
        return str(sent.message_id)


def telegram_deliver(bot: Bot) -> Deliver:
    """A `Deliver` that sends outbox rows with `bot`: each row is made into a `Reply` in the
    recipient's language when it is sent, then rendered as any reply."""
    channel = TelegramChannel(bot)

    async def deliver(address: Address, message: OutboxMessage) -> str | None:
        if address.channel != CHANNEL:
            raise Rejected(f"not a Telegram address: {address.channel}")
        return await channel.send_reply(address.address, reply_for(message, address.language))

    return deliver


async def send_text(
    bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
) -> str:
    """Send one text message; returns Telegram's id of it. Telegram's errors are raised as
    `Bot.send_message` raises them.

    `Bot.send_message` turns Telegram's answer into a `Message` (every entity and button
    rebuilt as objects); nothing here reads it, and building it cost about a fifth of the
    CPU of a reply (cProfile of bench.workers). `do_api_request` makes the same request
    (same defaults, same error mapping) and returns the answer as it came: 15 µs of CPU a
    call instead of 98 (a text), 58 instead of 220 (three buttons), 2.5-5% of Sanad's CPU per
    update (6 December 2026, bench/README.md).
    """
    sent = await bot.do_api_request(
        "sendMessage", api_kwargs={"chat_id": chat_id, "text": text, "reply_markup": markup}
    )
    return str(sent["message_id"])


def keyboard(options: Sequence[Sequence[str]], columns: int = 1) -> InlineKeyboardMarkup | None:
    """An inline keyboard of (label, value) options, `columns` buttons a row; None without."""
    if not options:
        return None
    buttons = [
        InlineKeyboardButton(label[:BUTTON_LABEL_LIMIT], callback_data=value)
        for label, value in options
    ]
    return InlineKeyboardMarkup(
        [buttons[start : start + columns] for start in range(0, len(buttons), columns)]
    )


def retry_after_seconds(error: TelegramRetryAfter) -> float:
    """The wait Telegram asks for, in seconds (PTB 22 gives an int or, opted in, a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def to_incoming(update: Update) -> Incoming | None:
    """The neutral form of an update, or None for updates Sanad does not act on."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != "private":
        return None
    base: dict[str, Any] = {
        "channel": CHANNEL,
        "chat_id": str(chat.id),
        "sender": str(user.id),
        "update_id": str(update.update_id),
        "sender_name": user.full_name,
        "language_code": user.language_code,
    }
    query = update.callback_query
    if query is not None:
        pressed_on = query.message.message_id if query.message is not None else None
        answers = str(pressed_on) if pressed_on is not None else None
        return Incoming(**base, choice=query.data or "", answers=answers)
    message = update.message
    if message is None:
        return None
    base["message_id"] = str(message.message_id)
    if message.reply_to_message is not None:
        base["answers"] = str(message.reply_to_message.message_id)
    if message.photo:
        return Incoming(
            **base, photo=Photo(file_id=message.photo[-1].file_id), text=message.caption
        )
    if message.location is not None:
        return Incoming(
            **base, location=Location(message.location.latitude, message.location.longitude)
        )
    if message.text is not None:
        return Incoming(**base, text=message.text)
    return Incoming(**base, text="")
