"""The Telegram channel: python-telegram-bot's `Bot` (its requests, its `Update` parsing) and
our own way of taking updates in.

Conversation state is not kept here (no ConversationHandler, no PTB persistence): every update
goes to the channel-neutral dispatcher, which keeps state in the database. Nor is PTB's
Application in the way: `TelegramBot.poll` fetches updates with getUpdates and hands each
batch to `apply_updates`, the webhook (bot.channels.webhook) hands each posted update to
`apply_update`; both say by raising `NotRecorded` that Telegram must deliver it again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import ExitStack, asynccontextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any

from telegram import Bot, Update
from telegram.error import Conflict, TelegramError
from telegram.error import RetryAfter as TelegramRetryAfter
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBUserWarning

from bot.app import Sanad
from bot.background import Background
from bot.channels.base import Rejected, RetryAfter, Transient, Unreachable, by_channel
from bot.channels.http_pool import pooled_transport
from bot.channels.telegram_commands import bot_commands
from bot.channels.telegram_delivery import (
    CHANNEL,
    TelegramChannel,
    retry_after_seconds,
    telegram_deliver,
    to_incoming,
)
from bot.channels.telegram_flood import answer_aside, bounded
from bot.heap import frozen_start
from handlers.dispatcher import REPLIED_DELAY, Dispatcher
from handlers.help import commands_for
from handlers.messages import Incoming, Reply, TryLater
from locales import LANGUAGES, translator
from outbox.pace import Pace
from outbox.sender import Deliver
from storage.db import transaction
from storage.people import remember
from storage.wal import checkpointing

if TYPE_CHECKING:  # prometheus_client is imported only by a process that counts
    from bot.metrics import Metrics

log = logging.getLogger(__name__)
JSONDict = dict[str, Any]  # an update as Telegram sends it
USERNAME_SETTING = "telegram_username"
SENDER_CONNECTIONS = 16  # above the sender's concurrency, so sends do not queue for a socket
# A process taking updates sends replies (REPLYING_CHATS chats at a time, or one per webhook
# request) beside the sender: a pool as large as PTB's Application gave it.
BOT_CONNECTIONS = 256
ALLOWED_UPDATES = ["message", "callback_query"]
ERROR_LOGGERS = ("handlers", "bot.channels", "outbox")  # their ERROR records count as errors
POLL_TIMEOUT = 30  # seconds getUpdates waits for an update (long polling)
RETRY_SECONDS = (1, 2, 4, 8, 15, 30)  # waits after failures, the last one repeated
OVERALL_PER_SECOND = 30.0  # Telegram: messages a second per bot
PER_CHAT_SECONDS = 1.0  # Telegram: a message a second per chat
PER_CHAT_BURST = 3  # ... "short bursts that go over this limit" pass: an answer's few messages
# Chats of one batch answered at the same time: concurrent, yet not a hundred requests at once
# (on a loaded machine they would time out together and go to the outbox as late copies).
REPLYING_CHATS = 8
# Answers on their way before the next batch waits for some (a batch holds at most 100 updates).
ANSWERING_AT_MOST = 100

# `poll` fetches with `Bot.do_api_request`: the updates come as JSON, and a flood of one
# chat's presses is dropped before it costs its parsing (see bot.channels.telegram_flood).
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)

Answer = Callable[[], Awaitable[None]]  # sends an applied update's replies


class NotRecorded(Exception):
    """An update was not stored: Telegram must send it again (the webhook answers 500;
    polling keeps its offset unconfirmed)."""


def telegram_pace() -> Pace:
    """One pace for every message of a process to Telegram, replies and outbox alike."""
    return Pace(
        OVERALL_PER_SECOND,
        PER_CHAT_SECONDS,
        time.monotonic,
        asyncio.sleep,
        per_chat_burst=PER_CHAT_BURST,
    )


class TelegramBot:
    """Sanad on Telegram in one process: the `Bot`, the updates it takes in (polled or posted
    to the webhook) and, with `with_background`, the scheduler and the outbox sender.

    `async with` starts it (the bot introduces itself to Telegram and publishes the command
    list; the background starts) and stops it (the background first, the bot's connections
    last). While it runs, a SQLite database is checkpointed from a thread (see storage.wal).
    `metrics` counts updates, replies, their time and the sender's, when given.
    """

    def __init__(
        self,
        sanad: Sanad,
        bot: Bot,
        *,
        with_background: bool = False,
        metrics: Metrics | None = None,
        pace: Pace | None = None,
        other_channels: dict[str, Deliver] | None = None,
        other_paces: dict[str, Pace] | None = None,
    ) -> None:
        self.sanad = sanad
        self.bot = bot
        self.with_background = with_background
        self.metrics = metrics
        self.pace = pace or telegram_pace()
        self.other_channels = other_channels or {}
        self.other_paces = other_paces or {}  # one per channel: each has its own limits
        self._background: Background | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._checkpoints = ExitStack()
        # Chat id -> the answer to its last update of a batch, being sent while the next batch
        # is fetched and applied (see `apply_updates`); at most REPLYING_CHATS send at once.
        self._answering: dict[int | None, asyncio.Task[None]] = {}
        self._replying = asyncio.Semaphore(REPLYING_CHATS)

    @property
    def dispatcher(self) -> Dispatcher:
        return self.sanad.dispatcher

    async def __aenter__(self) -> TelegramBot:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self.bot.initialize()  # getMe: the token is checked, the username known
            await _introduce(self.sanad, self.bot)
            self._tasks.append(asyncio.create_task(_write_delivered_regularly(self.sanad)))
            if self.with_background:
                delivers = {CHANNEL: telegram_deliver(self.bot), **self.other_channels}
                self._background = Background(
                    self.sanad,
                    by_channel(delivers),
                    self.metrics.sent if self.metrics else None,
                    {CHANNEL: self.pace, **self.other_paces},
                )
                await self._background.start()
            self._checkpoints.enter_context(checkpointing(self.sanad.engine))
        except BaseException:
            await self.stop()
            raise
        log.info("Telegram bot @%s started", self.bot.username)

    async def stop(self) -> None:
        await self.answered()
        if self._background is not None:
            background, self._background = self._background, None
            await background.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.dispatcher.write_delivered()
        self.dispatcher.close()
        self._checkpoints.close()
        await self.bot.shutdown()

    # --- updates ------------------------------------------------------------------------

    async def apply_update(self, update: Update) -> None:
        """Apply one update in its own transaction and answer it; NotRecorded if the database
        could not take it. Any other failure is a fault of ours that a redelivery would
        repeat: it is logged (the dispatcher has already told the person) and the update
        counts as done."""
        started = time.perf_counter()
        incoming = self._incoming(update)
        if incoming is None:
            return
        try:
            # A fault of ours comes back as a "sorry" reply.
            replies = await self.dispatcher.apply(incoming)
        except TryLater as error:
            raise self._not_recorded(update, error) from error
        await _answer_logged(update.update_id, self._answer(update, incoming, replies, started))

    async def apply_updates(self, updates: Sequence[Update], stored: Callable[[int], None]) -> None:
        """Apply a batch of fetched updates in as few transactions as the conversations allow,
        calling `stored(update_id)` as they are committed.

        A commit costs more than everything else an update does in the database (SQLite
        writes and locks its log for each), so the updates share one transaction, committed
        before any of their button presses is answered or their replies are sent: nobody is
        told of anything that was not stored. The updates of one transaction go to the
        dispatcher's batch thread together (`Dispatcher.handle_together`), one hop off the
        event loop for all of them; the process's other tasks go on meanwhile. The answers go
        out while the next updates are fetched and applied (this returns before they are
        sent; `answered` waits for them), but a chat's next update, in this batch or a later
        one, is applied only after the replies to its previous one were sent (commit, send,
        go on in a new transaction), as when updates come one by one. When an update
        cannot be applied with the others (a collision with another process's write, a
        fault), the transaction is rolled back and its updates up to that one are applied
        again one by one, each in its own transaction, with the usual answers to failures;
        when the database cannot take it, nothing of it is stored or answered and it is
        fetched again (NotRecorded).
        """
        rest = list(updates)
        while rest:
            together, rest = _one_per_chat(rest)
            await self._answered_chats(together)
            started = time.perf_counter()
            taken = [
                (update, incoming) for update in together if (incoming := self._incoming(update))
            ]
            if not taken:
                stored(together[-1].update_id)
                continue
            try:
                outcome = await self.dispatcher.run_in_batch(
                    self.dispatcher.handle_together, [incoming for _, incoming in taken]
                )
            except TryLater as error:  # nothing of it stored
                raise self._not_recorded(taken[0][0], error) from error
            if outcome.alone is not None:  # rolled back: one by one up to that update
                last = together.index(taken[outcome.alone][0])
                for again in together[: last + 1]:
                    await self.apply_update(again)
                    stored(again.update_id)
                rest = together[last + 1 :] + rest
                continue
            stored(together[-1].update_id)
            for (update, incoming), replies in zip(taken, outcome.replies, strict=True):
                answer = self._answer(update, incoming, replies, started)
                self._answer_soon(update, answer)

    def _answer_soon(self, update: Update, answer: Answer) -> None:
        """Send `answer` (up to REPLYING_CHATS chats at once) while the process goes on: the
        next batch is fetched and applied meanwhile, except for this chat's next update, which
        waits for it (`_answered_chats`)."""

        async def in_turn() -> None:
            async with self._replying:
                await _answer_logged(update.update_id, answer)

        chat = update.effective_chat
        key = chat.id if chat is not None else None
        earlier = self._answering.get(key)  # only for updates without a chat
        task = asyncio.create_task(_after(earlier, in_turn()))
        self._answering[key] = task
        task.add_done_callback(lambda _: self._forget_answer(key, task))

    def _forget_answer(self, key: int | None, task: asyncio.Task[None]) -> None:
        if self._answering.get(key) is task:
            del self._answering[key]

    async def _answered_chats(self, updates: Sequence[Update]) -> None:
        """Wait until the replies to earlier updates of these updates' chats were sent, and
        until no more than ANSWERING_AT_MOST answers are on their way."""
        for update in updates:
            chat = update.effective_chat
            task = self._answering.get(chat.id if chat is not None else None)
            if task is not None:
                await task
        while len(self._answering) > ANSWERING_AT_MOST:
            await asyncio.wait(list(self._answering.values()), return_when=asyncio.FIRST_COMPLETED)

    async def answered(self) -> None:
        """Wait until every applied update was answered."""
        while self._answering:
            await asyncio.gather(*self._answering.values())

    def _incoming(self, update: Update) -> Incoming | None:
        """The update as the dispatcher takes it; None when there is nothing to apply."""
        if self.metrics is not None:
            self.metrics.updates.inc()
        try:
            return to_incoming(update)
        except Exception:  # a fault of ours: it would fail again
            key = {"update_id": f"telegram:{update.update_id}"}
            log.exception("update telegram:%s failed", update.update_id, extra=key)
            return None

    def _not_recorded(self, update: Update, error: Exception) -> NotRecorded:
        log.warning(
            "update telegram:%s not recorded (%s); Telegram will deliver it again",
            update.update_id,
            error.__class__.__name__,
            extra={"update_id": f"telegram:{update.update_id}"},
        )
        return NotRecorded(update.update_id)

    def _answer(
        self, update: Update, incoming: Incoming, replies: list[Reply], started: float
    ) -> Answer:
        """What answers an applied update once it is stored: its button press, its replies."""

        async def answer() -> None:
            if update.callback_query is not None:
                await _acknowledge(update)
            sent = await _send_replies(self.sanad, self.bot, incoming, replies, self.pace)
            if self.metrics is not None:
                self.metrics.replied(sent, time.perf_counter() - started)

        return answer

    # --- long polling -------------------------------------------------------------------

    async def poll(self, stop: asyncio.Event, timeout: float = POLL_TIMEOUT) -> None:
        """Long polling that loses nothing Telegram considers delivered, until `stop` is set.

        getUpdates(offset) tells Telegram to forget every update below `offset`. The next
        offset is sent only after each update of the batch went through the dispatcher, which
        committed it with its effect (or found it already applied). An update the database
        could not take stops the batch; it is fetched again after a wait. A crash at any
        moment therefore leaves Telegram holding every update that was not recorded.

        Network errors, Telegram's 5xx and a 409 Conflict (another process polling, or a
        webhook set) are tried again after RETRY_SECONDS; a 429 after the wait it asks for.
        """
        offset: int | None = None
        failures = 0

        def stored(update_id: int) -> None:
            nonlocal offset
            offset = update_id + 1

        log.info("polling for updates")
        while not stop.is_set():
            try:
                fetched = await _unless_stopped(
                    stop,
                    self.bot.do_api_request(
                        "getUpdates",
                        api_kwargs={
                            "offset": offset,
                            "timeout": int(timeout),
                            "allowed_updates": ALLOWED_UPDATES,
                        },
                        read_timeout=timeout + 10,
                    ),
                )
                kept, dropped = bounded(fetched)
                updates = [Update.de_json(data, self.bot) for data in kept]
                await self.apply_updates(updates, stored)
                if dropped:  # answered on the side: the next batch does not wait for them
                    answer_aside(self.bot, dropped)
                    stored(max(int(data["update_id"]) for data in fetched))
                failures = 0
            except Exception as error:  # nothing of the batch confirmed: it is fetched again
                wait: float = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                if isinstance(error, TelegramRetryAfter):
                    wait = max(wait, retry_after_seconds(error))
                if isinstance(error, Conflict):
                    log.warning(
                        "polling: Telegram reports a conflict (another process polls this "
                        "bot, or a webhook is set); trying again in %d s",
                        wait,
                    )
                elif isinstance(error, (TelegramError, NotRecorded)):
                    log.warning("polling: %s; trying again in %d s", error.__class__.__name__, wait)
                else:  # a fault of ours
                    log.exception("polling: a batch failed; trying again in %d s", wait)
                await _wait(stop, wait)
        await self.answered()
        log.info("polling stopped")


def build_telegram(
    sanad: Sanad,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    with_background: bool = False,
    metrics: Metrics | None = None,
    pace: Pace | None = None,
    other_channels: dict[str, Deliver] | None = None,
    other_paces: dict[str, Pace] | None = None,
) -> TelegramBot:
    """Sanad's `TelegramBot` from its settings; the requests can be replaced in tests."""
    settings = sanad.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    bot = Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.bot_api_url,
        base_file_url=settings.bot_file_url,
        request=request or _request(BOT_CONNECTIONS),
        get_updates_request=get_updates_request or request or HTTPXRequest(),
    )
    return TelegramBot(
        sanad,
        bot,
        with_background=with_background,
        metrics=metrics,
        pace=pace,
        other_channels=other_channels,
        other_paces=other_paces,
    )


def _one_per_chat(updates: list[Update]) -> tuple[list[Update], list[Update]]:
    """The updates up to the first that repeats a chat, and the rest."""
    chats: set[int] = set()
    for index, update in enumerate(updates):
        chat = update.effective_chat
        if chat is not None:
            if chat.id in chats:
                return updates[:index], updates[index:]
            chats.add(chat.id)
    return updates, []


async def _after(earlier: asyncio.Task[None] | None, then: Coroutine[Any, Any, None]) -> None:
    if earlier is not None:
        await earlier
    await then


async def _answer_logged(update_id: int, answer: Answer) -> None:
    try:
        await answer()
    except Exception:  # stored already, so nothing to deliver again; the next ones go on
        log.exception(
            "update telegram:%s: answering it failed",
            update_id,
            extra={"update_id": f"telegram:{update_id}"},
        )


async def _unless_stopped(
    stop: asyncio.Event, fetching: Coroutine[Any, Any, list[JSONDict]]
) -> list[JSONDict]:
    """The fetched updates, or none if `stop` came first (what was being fetched is not
    confirmed, so Telegram keeps it)."""
    fetch = asyncio.ensure_future(fetching)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait((fetch, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not fetch.done():
        fetch.cancel()
        with suppress(asyncio.CancelledError):
            await fetch
        return []
    return list(fetch.result())


@asynccontextmanager
async def polling(
    telegram: TelegramBot, timeout: float = POLL_TIMEOUT
) -> AsyncIterator[TelegramBot]:
    """`telegram` started and polling for the duration of the block."""
    stop = asyncio.Event()
    async with telegram:
        task = asyncio.create_task(telegram.poll(stop, timeout))
        try:
            yield telegram
        finally:
            stop.set()
            await task


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_polling_until(
    sanad: Sanad,
    stop: asyncio.Event,
    *,
    with_background: bool = True,
    metrics: Metrics | None = None,
) -> None:
    """Poll (and, with `with_background`, schedule and send) until `stop` is set."""
    telegram = build_telegram(sanad, with_background=with_background, metrics=metrics)
    async with telegram:
        await telegram.bot.delete_webhook()  # getUpdates is refused while a webhook is set
        with frozen_start():
            await telegram.poll(stop)


def run_polling(
    sanad: Sanad, *, with_background: bool = True, metrics: Metrics | None = None
) -> None:
    """`python -m bot run`: poll until SIGINT or SIGTERM, then stop cleanly (the batch under
    way is finished, the background stopped, the connections closed)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_polling_until(sanad, stop, with_background=with_background, metrics=metrics)

    asyncio.run(main())


def make_bot(sanad: Sanad) -> Bot:
    """A bare Bot (no updates) for a process that only sends, such as the worker."""
    settings = sanad.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    return Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=settings.bot_api_url,
        base_file_url=settings.bot_file_url,
        request=_request(SENDER_CONNECTIONS),
    )


async def run_worker(
    sanad: Sanad,
    stop: asyncio.Event,
    bot: Bot | None = None,
    metrics: Metrics | None = None,
    other_channels: dict[str, Deliver] | None = None,
    other_paces: dict[str, Pace] | None = None,
) -> None:
    """The scheduler and the sender alone, until `stop` is set."""
    async with bot or make_bot(sanad) as ready:
        delivers = {CHANNEL: telegram_deliver(ready), **(other_channels or {})}
        paces = {CHANNEL: telegram_pace(), **(other_paces or {})}
        work = Background(sanad, by_channel(delivers), metrics.sent if metrics else None, paces)
        with checkpointing(sanad.engine):
            await work.start()
            await stop.wait()
            await work.stop()


async def _introduce(sanad: Sanad, bot: Bot) -> None:
    """Remember the bot's username (for invite links) and publish, per language, the commands
    of someone not registered yet."""
    await asyncio.to_thread(_remember_username, sanad, bot.username)
    forms = sanad.dispatcher.services.forms
    for language in LANGUAGES:
        tr = translator(language)
        # What someone who has not written yet sees; each person gets their role's list in
        # their chat (see telegram_commands) with their first reply.
        commands = bot_commands(commands_for(None, None, forms, tr))
        try:
            await bot.set_my_commands(
                commands, language_code=None if language == "ar" else language
            )
        except TelegramError as error:
            log.warning("could not publish the command list: %s", error)


def _remember_username(sanad: Sanad, username: str) -> None:
    with transaction(sanad.engine) as session:
        remember(session, USERNAME_SETTING, username)


async def _send_replies(
    sanad: Sanad, bot: Bot, incoming: Incoming, replies: list[Reply], pace: Pace | None = None
) -> int:
    """Send the replies of a committed update at the process's `pace` (shared with the
    outbox); what Telegram does not take waits in the outbox for the sender and its retries
    (the update itself is recorded: a redelivery would be ignored, so failing it would lose
    the replies). Returns how many were sent now."""
    channel = TelegramChannel(bot)
    chat = (CHANNEL, incoming.chat_id)
    shown: str | None = None  # Telegram's id of the last message: the question, if one
    sent_before = 0  # messages of this answer already sent (past the burst they are spaced)
    for number, reply in enumerate(replies):
        try:
            if pace is not None:
                await pace.reply_turn(chat, sent_before)
            if number + 1 < len(replies):  # (only counted when another reply follows)
                sent_before += len(channel.render(reply))
            try:
                shown = await channel.send_reply(incoming.chat_id, reply)
            except RetryAfter as flood:  # the whole bot waits; the outbox sends it after
                if pace is not None:
                    pace.pause(flood.seconds)
                raise
            finally:
                if pace is not None:
                    pace.done(chat, outbox=False)
        except Unreachable:
            log.info("update telegram:%s: the person blocked the bot", incoming.update_id)
            await sanad.dispatcher.sent(incoming)  # nothing will reach them anyway
            return number
        except (RetryAfter, Transient, Rejected) as error:  # the outbox retries
            log.warning(
                "update telegram:%s: a reply was not sent (%s)",
                incoming.update_id,
                error.__class__.__name__,
            )
            await asyncio.to_thread(sanad.dispatcher.keep_unsent, incoming, replies[number:])
            # Not marked as delivered: the outbox may bring the question after the person
            # has given up waiting and typed again, and that must not answer the next one.
            return number
    await sanad.dispatcher.sent(incoming, shown)
    return len(replies)


def _request(connections: int) -> HTTPXRequest:
    """PTB's request layer over our pool (bot.channels.http_pool)."""
    transport = pooled_transport(connections)
    return HTTPXRequest(connection_pool_size=connections, httpx_kwargs={"transport": transport})


async def _write_delivered_regularly(sanad: Sanad) -> None:
    """An idle process still writes down, soon, which replies it sent."""
    while True:
        await asyncio.sleep(REPLIED_DELAY)
        await sanad.dispatcher.run_in_batch(sanad.dispatcher.write_delivered)


async def _acknowledge(update: Update) -> None:
    """Answer the button press (Telegram shows a spinner until then).

    The pressed message keeps its buttons: editing them away would cost a second request per
    press on patchy networks, and an old button pressed again is refused by the handlers.
    """
    query = update.callback_query
    assert query is not None
    try:
        await query.answer()
    except TelegramError as error:  # cosmetic: the spinner stops by itself
        log.debug("could not answer the button press: %s", error)
