"""The Telegram channel: translates python-telegram-bot updates into Incoming and Replies back.

Conversation state is not kept here (no ConversationHandler, no PTB persistence): every update
goes to the channel-neutral dispatcher, which keeps state in the database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import ExitStack, asynccontextmanager, suppress
from contextvars import ContextVar
from typing import Any

from telegram import (
    Bot,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBUserWarning

from bot.app import Sanad
from bot.background import Background
from bot.channels.base import Rejected, RetryAfter, Transient, Unreachable, by_channel
from bot.channels.telegram_commands import bot_commands
from bot.channels.telegram_delivery import CHANNEL, TelegramChannel, telegram_deliver, to_incoming
from bot.channels.telegram_flood import answer_aside, bounded
from bot.metrics import Metrics
from handlers.dispatcher import REPLIED_DELAY, ApplyAlone, Dispatcher
from handlers.help import commands_for
from handlers.messages import Incoming, Reply, TryLater
from locales import LANGUAGES, translator
from outbox.pace import Pace
from outbox.sender import Deliver
from storage.db import transaction
from storage.people import remember
from storage.wal import checkpointing

log = logging.getLogger(__name__)
JSONDict = dict[str, Any]  # an update as Telegram sends it
USERNAME_SETTING = "telegram_username"
SENDER_CONNECTIONS = 16  # above the sender's concurrency, so sends do not queue for a socket
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

# `poll` fetches with `Bot.do_api_request`: the updates come as JSON, and a flood of one
# chat's presses is dropped before it costs its parsing (see bot.channels.telegram_flood).
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)

_failures: ContextVar[list[BaseException] | None] = ContextVar("update_failures", default=None)


class _Batch:
    """Updates fetched together (long polling) and applied in one transaction: their button
    presses are answered and their replies sent once it committed (see `apply_updates`)."""

    def __init__(self) -> None:
        self.collecting = True  # False while its updates are applied again one by one
        self.dispatcher: Dispatcher | None = None  # set when Sanad applies its first update
        self.updates: list[Update] = []
        self.chats: set[int] = set()
        # (update id, chat id, answer), in the order of the updates
        self.answers: list[tuple[int, int | None, Callable[[], Awaitable[None]]]] = []

    def collects(self, dispatcher: Dispatcher) -> bool:
        """Whether the update being handled goes into the batch (the dispatcher's batch is
        begun with its first update)."""
        if not self.collecting:
            return False
        if self.dispatcher is None:
            dispatcher.begin_batch()
            self.dispatcher = dispatcher
        return True

    def clear(self) -> None:
        self.dispatcher = None
        self.updates, self.chats, self.answers = [], set(), []


_batch: ContextVar[_Batch | None] = ContextVar("update_batch", default=None)


class NotRecorded(Exception):
    """An update went through the Application but was not stored: Telegram must send it
    again (the webhook answers 500; polling keeps its offset unconfirmed)."""


def telegram_pace() -> Pace:
    """One pace for every message of a process to Telegram, replies and outbox alike."""
    return Pace(
        OVERALL_PER_SECOND,
        PER_CHAT_SECONDS,
        time.monotonic,
        asyncio.sleep,
        per_chat_burst=PER_CHAT_BURST,
    )


def build_application(
    sanad: Sanad,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
    with_background: bool = False,
    metrics: Metrics | None = None,
    pace: Pace | None = None,
    other_channels: dict[str, Deliver] | None = None,
    other_paces: dict[str, Pace] | None = None,
) -> Application:
    """The python-telegram-bot Application for `sanad`; requests can be replaced in tests.

    With `with_background`, the scheduler and the outbox sender run in the same process,
    started after the bot introduced itself and stopped before it shuts down.
    `metrics` counts updates, replies, their time and the sender's, when given.
    While it runs, a SQLite database is checkpointed from a thread (see storage.wal).
    """
    settings = sanad.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.bot_api_url)
        .base_file_url(settings.bot_file_url)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(get_updates_request or request)
    pace = pace or telegram_pace()
    background: list[Background] = []
    tasks: list[asyncio.Task[None]] = []
    checkpoints = ExitStack()

    async def started(application: Application) -> None:
        await _introduce(sanad, application)
        tasks.append(asyncio.create_task(_write_delivered_regularly(sanad)))
        if with_background:
            delivers = {CHANNEL: telegram_deliver(application.bot), **(other_channels or {})}
            paces = {CHANNEL: pace, **(other_paces or {})}  # one per channel: its own limits
            background.append(
                Background(sanad, by_channel(delivers), metrics.sent if metrics else None, paces)
            )
            await background[0].start()
        checkpoints.enter_context(checkpointing(sanad.engine))  # last: stopping undoes it

    async def stopping(application: Application) -> None:
        for work in background:
            await work.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sanad.dispatcher.write_delivered()
        sanad.dispatcher.close()
        checkpoints.close()

    # No Updater: `poll` confirms an offset only after the update was recorded, which PTB's
    # Updater (it fetches the next batch while the last one waits in a queue) does not.
    # No JobQueue either: schedules belong to bot.background (APScheduler 3, one process).
    application = (
        builder.updater(None).job_queue(None).post_init(started).post_stop(stopping).build()
    )
    # One handler for every update: the dispatcher decides what it means, so PTB's handler
    # groups have nothing to order. Updates of one chat are processed in arrival order.
    application.add_handler(TypeHandler(Update, _handler(sanad, pace, metrics)))
    application.add_error_handler(_remember_failure)
    return application


async def apply_update(application: Application, update: Update) -> None:
    """Process one update; raise NotRecorded if the database could not take it.

    Any other failure is a fault of ours that a redelivery would repeat: it is logged (the
    dispatcher has already told the person) and the update counts as done.
    """
    failures: list[BaseException] = []
    token = _failures.set(failures)
    try:
        await application.process_update(update)
    finally:
        _failures.reset(token)
    for failure in failures:
        if isinstance(failure, TryLater):
            raise NotRecorded(update.update_id) from failure
        if isinstance(failure, ApplyAlone):
            raise failure


async def _remember_failure(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB hands handler exceptions here instead of raising them from process_update."""
    update_id = getattr(update, "update_id", None)
    if isinstance(context.error, ApplyAlone):
        pass  # not a failure: the update is applied again, on its own (see apply_updates)
    elif isinstance(context.error, TryLater):
        log.warning(
            "update telegram:%s not recorded; Telegram will deliver it again",
            update_id,
            extra={"update_id": f"telegram:{update_id}"},
        )
    else:
        log.error(
            "update telegram:%s failed",
            update_id,
            exc_info=context.error,
            extra={"update_id": f"telegram:{update_id}"},
        )
    failures = _failures.get()
    if failures is not None and context.error is not None:
        failures.append(context.error)


@asynccontextmanager
async def running(application: Application) -> AsyncIterator[Application]:
    """The Application started (with its post_init: command list, scheduler and sender if it
    has them) for the duration of the block, then stopped and shut down."""
    await application.initialize()
    try:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        try:
            yield application
        finally:
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    finally:
        await application.shutdown()


async def poll(
    application: Application, stop: asyncio.Event, timeout: float = POLL_TIMEOUT
) -> None:
    """Long polling that loses nothing Telegram considers delivered.

    getUpdates(offset) tells Telegram to forget every update below `offset`. The next offset
    is sent only after each update of the batch went through the dispatcher, which committed
    it with its effect (or found it already applied). An update the database could not take
    stops the batch; it is fetched again after a wait. A crash at any moment therefore leaves
    Telegram holding every update that was not recorded.
    """
    offset: int | None = None
    failures = 0

    def stored(update_id: int) -> None:
        nonlocal offset
        offset = update_id + 1

    while not stop.is_set():
        try:
            fetched = await _unless_stopped(
                stop,
                application.bot.do_api_request(
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
            updates = [Update.de_json(data, application.bot) for data in kept]
            await apply_updates(application, updates, stored)
            if dropped:  # answered on the side: the next batch does not wait for them
                answer_aside(application.bot, dropped)
                stored(max(int(data["update_id"]) for data in fetched))
            failures = 0
        except (TelegramError, NotRecorded) as error:
            wait = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            failures += 1
            log.warning("polling: %s; trying again in %d s", error.__class__.__name__, wait)
            await _wait(stop, wait)


async def apply_updates(
    application: Application, updates: Sequence[Update], stored: Callable[[int], None]
) -> None:
    """Apply a batch of fetched updates in as few transactions as the conversations allow,
    calling `stored(update_id)` as they are committed.

    A commit costs more than everything else an update does in the database (SQLite writes
    and locks its log for each), so the updates share one transaction, committed before any of
    their button presses is answered or their replies are sent: nobody is told of anything that
    was not stored. Between the first update and the commit nothing waits on the network, so no
    other task of the process can write meanwhile. A chat's second update in the batch is
    applied after the first's replies were sent (commit, send, go on in a new transaction), as
    when updates come one by one. When an update cannot be applied with the others (a
    collision with another process's write, a fault), the batch so far is rolled back and its
    updates are applied again one by one, each in its own transaction, with the usual answers
    to failures; when the database cannot take it, nothing of the batch is stored or answered
    and it is fetched again (NotRecorded).
    """
    batch = _Batch()
    token = _batch.set(batch)
    try:
        for update in updates:
            chat = update.effective_chat
            if chat is not None and chat.id in batch.chats:
                await _settle(batch, stored)
            batch.updates.append(update)
            if chat is not None:
                batch.chats.add(chat.id)
            try:
                await apply_update(application, update)
            except ApplyAlone:  # the dispatcher rolled the batch back
                batch.dispatcher = None
                batch.collecting = False
                for again in batch.updates:
                    await apply_update(application, again)
                    stored(again.update_id)
                batch.collecting = True
                batch.clear()
        await _settle(batch, stored)
    finally:
        if batch.dispatcher is not None:  # interrupted: nothing of the batch was stored
            batch.dispatcher.rollback_batch()
        _batch.reset(token)


async def _settle(batch: _Batch, stored: Callable[[int], None]) -> None:
    """Commit the batch, then answer its updates (NotRecorded if the commit failed)."""
    if batch.dispatcher is not None:
        dispatcher, batch.dispatcher = batch.dispatcher, None
        try:
            dispatcher.commit_batch()
        except TryLater as error:
            raise NotRecorded(batch.updates[0].update_id) from error
    if batch.updates:
        stored(batch.updates[-1].update_id)
    answers = batch.answers
    batch.clear()
    by_chat: dict[int | None, list[tuple[int, Callable[[], Awaitable[None]]]]] = {}
    for update_id, chat_id, answer in answers:
        by_chat.setdefault(chat_id, []).append((update_id, answer))
    # Chats are answered at once (up to REPLYING_CHATS), each in the order of its updates and
    # at its own pace.
    turns = asyncio.Semaphore(REPLYING_CHATS)
    await asyncio.gather(
        *(_answer_in_order(chat_answers, turns) for chat_answers in by_chat.values())
    )


async def _answer_in_order(
    answers: list[tuple[int, Callable[[], Awaitable[None]]]], turns: asyncio.Semaphore
) -> None:
    async with turns:
        for update_id, answer in answers:
            await _answer_logged(update_id, answer)


async def _answer_logged(update_id: int, answer: Callable[[], Awaitable[None]]) -> None:
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
    application: Application, timeout: float = POLL_TIMEOUT
) -> AsyncIterator[Application]:
    """The Application running and polling for the duration of the block."""
    stop = asyncio.Event()
    async with running(application):
        task = asyncio.create_task(poll(application, stop, timeout))
        try:
            yield application
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
    application = build_application(sanad, with_background=with_background, metrics=metrics)
    async with running(application):
        await application.bot.delete_webhook()
        await poll(application, stop)


def run_polling(
    sanad: Sanad, *, with_background: bool = True, metrics: Metrics | None = None
) -> None:
    """`python -m bot run`: poll until SIGINT or SIGTERM."""

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
        request=HTTPXRequest(connection_pool_size=SENDER_CONNECTIONS),
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


async def _introduce(sanad: Sanad, application: Application) -> None:
    """Remember the bot's username (for invite links) and publish, per language, the commands
    of someone not registered yet."""
    username = application.bot.username
    with transaction(sanad.engine) as session:
        remember(session, USERNAME_SETTING, username)
    forms = sanad.dispatcher.services.forms
    for language in LANGUAGES:
        tr = translator(language)
        # What someone who has not written yet sees; each person gets their role's list in
        # their chat (see telegram_commands) with their first reply.
        commands = bot_commands(commands_for(None, None, forms, tr))
        try:
            await application.bot.set_my_commands(
                commands, language_code=None if language == "ar" else language
            )
        except TelegramError as error:
            log.warning("could not publish the command list: %s", error)


def _handler(
    sanad: Sanad,  # type: ignore[no-untyped-def]
    pace: Pace,
    metrics: Metrics | None = None,
):
    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        started = time.perf_counter()
        if metrics is not None:
            metrics.updates.inc()
        incoming = to_incoming(update)
        if incoming is None:
            return
        batch = _batch.get()
        if batch is not None and not batch.collects(sanad.dispatcher):
            batch = None  # its updates are being applied again one by one
        # TryLater: nothing stored, so raise; ApplyAlone: the batch was rolled back
        replies = sanad.dispatcher.handle(incoming)

        async def answer() -> None:
            if update.callback_query is not None:
                await _acknowledge(update)
            sent = await _send_replies(sanad, context.bot, incoming, replies, pace)
            if metrics is not None:
                metrics.replied(sent, time.perf_counter() - started)

        if batch is not None:  # answered once the batch is committed
            chat_id = update.effective_chat.id if update.effective_chat else None
            batch.answers.append((update.update_id, chat_id, answer))
        else:
            await answer()

    return handle


async def _send_replies(
    sanad: Sanad, bot: Bot, incoming: Incoming, replies: list[Reply], pace: Pace | None = None
) -> int:
    """Send the replies of a committed update at the process's `pace` (shared with the
    outbox); what Telegram does not take waits in the outbox for the sender and its retries
    (the update itself is recorded: a redelivery would be ignored, so failing it would lose
    the replies). Returns how many were sent now."""
    channel = TelegramChannel(bot)
    chat = (CHANNEL, incoming.chat_id)
    sent_before = 0  # messages of this answer already sent (past the burst they are spaced)
    for number, reply in enumerate(replies):
        try:
            if pace is not None:
                await pace.reply_turn(chat, sent_before)
            if number + 1 < len(replies):  # (only counted when another reply follows)
                sent_before += len(channel.render(reply))
            try:
                await channel.send_reply(incoming.chat_id, reply)
            except RetryAfter as flood:  # the whole bot waits; the outbox sends it after
                if pace is not None:
                    pace.pause(flood.seconds)
                raise
            finally:
                if pace is not None:
                    pace.done(chat, outbox=False)
        except Unreachable:
            log.info("update telegram:%s: the person blocked the bot", incoming.update_id)
            sanad.dispatcher.delivered(incoming)  # nothing will reach them anyway
            return number
        except (RetryAfter, Transient, Rejected) as error:  # the outbox retries
            log.warning(
                "update telegram:%s: a reply was not sent (%s)",
                incoming.update_id,
                error.__class__.__name__,
            )
            sanad.dispatcher.keep_unsent(incoming, replies[number:])
            # Not marked as delivered: the outbox may bring the question after the person
            # has given up waiting and typed again, and that must not answer the next one.
            return number
    sanad.dispatcher.delivered(incoming)
    return len(replies)


async def _write_delivered_regularly(sanad: Sanad) -> None:
    """An idle process still writes down, soon, which replies it sent."""
    while True:
        await asyncio.sleep(REPLIED_DELAY)
        sanad.dispatcher.write_delivered()


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
