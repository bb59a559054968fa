"""Delivering outbox messages on Telegram: one row, one Bot API call, errors in neutral terms.

How Telegram's answers map (outbox.sender decides what each means for the row):

* 429 with retry_after (`telegram.error.RetryAfter`) -> `RetryAfter`: the sender waits;
* 403 (`Forbidden`: blocked by the user, deactivated) -> `Unreachable`;
* 400 "chat not found" / "user not found" -> `Unreachable` too: the account is gone, which is
  a fact about the person, not about this message;
* any other 400 (`BadRequest`: text too long, bad button data, bad photo) -> `Rejected`: the
  same request would fail again, so the row is "failed" at once;
* 5xx, timeouts, the network (`NetworkError`, `TimedOut`) and other Telegram errors ->
  `Transient`: retried with backoff.

Use the Application's bot (its connection pool allows the sender's concurrency; a bare
`Bot()` has a pool of one connection).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.error import RetryAfter as TelegramRetryAfter
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from outbox.sender import Address, Deliver, Rejected, RetryAfter, Transient, Unreachable
from storage.models import OutboxMessage
from storage.outbox import FILE_ID

CHANNEL = "telegram"
#: What Telegram's file ids are made of (URL-safe base64): never a path, which PTB would upload.
TELEGRAM_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
GONE = ("chat not found", "user not found")

# `send_text` asks for sendMessage through `Bot.do_api_request`, which suggests
# `Bot.send_message` for endpoints PTB knows; that suggestion is the one thing we decline.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage'", category=PTBUserWarning)


def telegram_deliver(bot: Bot) -> Deliver:
    """A `Deliver` that sends outbox rows with `bot`: text, or a photo with the text as caption;
    options become an inline keyboard."""

    async def deliver(address: Address, message: OutboxMessage) -> None:
        if address.channel != CHANNEL:
            raise Rejected(f"not a Telegram address: {address.channel}")
        try:
            await _send(bot, int(address.address), message)
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

    return deliver


async def _send(bot: Bot, chat_id: int, message: OutboxMessage) -> None:
    markup = keyboard(message.options)
    if not message.photo_path:
        await send_text(bot, chat_id, message.text, markup)
        return
    if message.photo_path.startswith(FILE_ID):  # a photo Telegram already has
        file_id = message.photo_path[len(FILE_ID) :]
        # PTB uploads a string that names a local file: a reference must look like Telegram's.
        if not TELEGRAM_FILE_ID.fullmatch(file_id):
            raise Rejected("the photo is not a Telegram file id")
        await bot.send_photo(
            chat_id,
            file_id,
            caption=message.text or None,
            reply_markup=markup,
        )
        return
    try:
        photo = open(message.photo_path, "rb")  # noqa: SIM115  (closed below)
    except OSError as error:
        raise Rejected(f"photo {message.photo_path}: {error.strerror}") from error
    with photo:
        await bot.send_photo(chat_id, photo, caption=message.text or None, reply_markup=markup)


async def send_text(
    bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Send one text message; Telegram's errors are raised as `Bot.send_message` raises them.

    `Bot.send_message` turns Telegram's answer into a `Message` (every entity and button
    rebuilt as objects); nothing here reads it, and building it cost about a fifth of the
    CPU of a reply (cProfile of bench.workers). `do_api_request` makes the same request
    (same defaults, same error mapping) and returns the answer as it came.
    """
    await bot.do_api_request(
        "sendMessage", api_kwargs={"chat_id": chat_id, "text": text, "reply_markup": markup}
    )


def keyboard(options: Sequence[Sequence[str]], columns: int = 1) -> InlineKeyboardMarkup | None:
    """An inline keyboard of (label, value) options, `columns` buttons a row; None without."""
    if not options:
        return None
    buttons = [InlineKeyboardButton(label[:60], callback_data=value) for label, value in options]
    return InlineKeyboardMarkup(
        [buttons[start : start + columns] for start in range(0, len(buttons), columns)]
    )


def retry_after_seconds(error: TelegramRetryAfter) -> float:
    """The wait Telegram asks for, in seconds (PTB 22 gives an int or, opted in, a timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
