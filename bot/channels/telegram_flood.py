"""One chat pressing buttons faster than the bot answers (a person, or a client flooding old
buttons) never holds up everyone else: each chat's pending updates are counted, and a button
press that comes while its chat already has PRESSES_PER_CHAT of them is dropped with a short
"wait" (once per burst), changing nothing. A text message or anything else is never dropped.

Both ways updates arrive share this: long polling counts the updates of one fetched batch,
the webhook those of each chat being applied right now in its process. Updates are looked at
as Telegram sends them (JSON), before they are parsed: a flood costs its parsing too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from telegram import Bot
from telegram.error import TelegramError

from locales import DEFAULT_LANGUAGE, supported, translator

log = logging.getLogger(__name__)
JSONDict = dict[str, Any]  # an update as Telegram sends it
PRESSES_PER_CHAT = 3

_answering: set[asyncio.Task[None]] = set()  # answers to dropped presses under way


def chat_of(data: JSONDict) -> object:
    """The chat an update belongs to (a press on a message without one: its presser's)."""
    query = data.get("callback_query")
    if isinstance(query, dict):
        chat = (query.get("message") or {}).get("chat") or query.get("from") or {}
        return chat.get("id")
    message = data.get("message")
    if isinstance(message, dict):
        return (message.get("chat") or {}).get("id")
    return None


def is_press(data: JSONDict) -> bool:
    return isinstance(data.get("callback_query"), dict)


class Backlog:
    """Each chat's updates taken in and not done yet; which presses to drop, and which of the
    dropped ones to answer (the first of a burst: the spinner of the others stops by itself,
    and answering every press of a flood would cost as much as the flood)."""

    def __init__(self, limit: int = PRESSES_PER_CHAT) -> None:
        self.limit = limit
        self.pending: Counter[object] = Counter()
        self._told: set[object] = set()  # chats answered "wait" since they were last quiet

    def admit(self, data: JSONDict) -> bool:
        """Whether `data` is to be applied (then counted until `done`), or dropped."""
        chat = chat_of(data)
        if is_press(data) and self.pending[chat] >= self.limit:
            return False
        self.pending[chat] += 1
        return True

    def done(self, data: JSONDict) -> None:
        """An admitted update was applied (or failed): its chat has one less pending."""
        chat = chat_of(data)
        self.pending[chat] -= 1
        if self.pending[chat] <= 0:
            del self.pending[chat]
            self._told.discard(chat)  # the burst is over

    def to_answer(self, dropped: Sequence[JSONDict]) -> list[JSONDict]:
        """Of the `dropped` presses, those to answer "wait": the first of each chat's burst."""
        first: list[JSONDict] = []
        for data in dropped:
            chat = chat_of(data)
            if chat not in self._told:
                self._told.add(chat)
                first.append(data)
        return first


def bounded(fetched: Sequence[JSONDict]) -> tuple[list[JSONDict], list[JSONDict]]:
    """Of a batch fetched together, the updates to apply and the presses to drop."""
    backlog = Backlog()
    kept: list[JSONDict] = []
    dropped: list[JSONDict] = []
    for data in fetched:
        (kept if backlog.admit(data) else dropped).append(data)
    return kept, dropped


def answer_aside(bot: Bot, dropped: Sequence[JSONDict], backlog: Backlog | None = None) -> None:
    """Answer "wait" to the first dropped press of each chat's burst in `backlog` (without
    one: of each chat in `dropped`), without waiting for the answers: whoever dropped them
    goes on at once (see `answering_drops`)."""
    if not dropped:
        return
    log.info("dropped %d button presses of chats pressing faster than answered", len(dropped))
    first = (backlog or Backlog()).to_answer(dropped)
    if first:
        task = asyncio.create_task(_answer_wait(bot, first))
        _answering.add(task)
        task.add_done_callback(_answering.discard)


def answering_drops() -> bool:
    """Whether answers to dropped presses are still under way."""
    return bool(_answering)


async def _answer_wait(bot: Bot, presses: list[JSONDict]) -> None:
    async def answer(data: JSONDict) -> None:
        query = data["callback_query"]
        language = (query.get("from") or {}).get("language_code")
        tr = translator(supported(language) or DEFAULT_LANGUAGE)
        try:
            await bot.answer_callback_query(
                str(query["id"]),
                tr.gettext("Too many presses at once: this one was ignored. Wait for my answer."),
            )
        except TelegramError as error:  # cosmetic: the spinner stops by itself
            log.debug("could not answer a dropped button press: %s", error)

    await asyncio.gather(*(answer(data) for data in presses))
