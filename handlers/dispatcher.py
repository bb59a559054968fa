"""Applies each incoming message exactly once, in one transaction with its effect.

Several updates may share that transaction (`begin_batch` ... `commit_batch`): a channel that
receives them in batches (Telegram's long polling) then pays one commit for many, which on
SQLite costs more than everything else an update does in the database. Their replies must wait
until the commit, so that nobody is told of anything that was not stored.

The channels that run on an event loop call `apply` and `run_in_batch` (and `sent`): the
database work and whatever a handler draws (a digest's chart) then run on the dispatcher's
threads, and the loop goes on sending other chats' replies and reading their messages.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session

from handlers.context import Context, Services
from handlers.messages import Incoming, Reply, TryLater, compact
from handlers.router import route
from handlers.state import ChatState
from locales import DEFAULT_LANGUAGE, supported, translator
from outbox.intents import intent_of
from storage.applied import record_all_applied, record_applied
from storage.asked import Asked, asked_by, record_asked
from storage.conversations import (
    LaterStates,
    StoredChat,
    mark_replied,
    read_chat,
    read_chats,
    read_state,
    save_state,
)
from storage.db import transaction
from storage.outbox import enqueue, question_of
from storage.people import MemberRows, find_person, mark_reachable, wrote_from
from storage.types import utcnow

log = logging.getLogger(__name__)
REPLIED_DELAY = 0.5  # seconds: how long "these replies were sent" may wait to be written
CONFLICT_ATTEMPTS = 3  # tries of an update that collides with another process's write
# Chats applied at once off the event loop (`apply`); each thread keeps a connection, so with
# the batch's thread this stays within SQLAlchemy's default pool of 5.
APPLYING_THREADS = 4

P = ParamSpec("P")
T = TypeVar("T")

#: A channel's reading of a message in the light of what the database holds (on WhatsApp:
#: what a typed number stands for after a numbered question), run in the update's own
#: transaction before the handlers see it: the channel pays no read of its own. It may change
#: what the message says, not who sent it.
Interpret = Callable[[Connection, Incoming], Incoming]


class ApplyAlone(Exception):
    """An update of a batch could not be applied with the others (a collision with another
    process's write, a fault of ours): the batch was rolled back and nothing of it stored. Each
    of its updates is to be handled again on its own, outside a batch, where each failure has
    its usual answer. (A database that cannot take the update raises TryLater, as alone.)"""


@dataclass
class _Batch:
    """What the updates of a batch share: the chats' new states, written at its end (one
    statement), and what `handle_together` read for all its updates at its start: whether
    each was applied before (update key -> new), each chat's row and writer (chat key ->
    ...). An update takes its part of what was read ahead; one read nothing ahead (a second
    update of a chat in the batch) reads for itself, after the states saved so far."""

    states: LaterStates = field(default_factory=LaterStates)
    new: dict[str, bool] = field(default_factory=dict)
    chats: dict[str, tuple[StoredChat, MemberRows | None]] = field(default_factory=dict)


@dataclass
class Together:
    """What `Dispatcher.handle_together` did: the replies of each update, or, when one could
    not be applied with the others, its index (and nothing stored)."""

    replies: list[list[Reply]]
    alone: int | None = None


class Dispatcher:
    """The one entry point channels call: an incoming message in, the replies out."""

    def __init__(
        self, engine: Engine, services: Services, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.services = services
        self.clock = clock
        # Chat key -> version: saved here, its replies not yet handed to the channel ...
        self._saved: dict[str, int] = {}
        # ... handed over, not yet written down (one write for many chats, see `delivered`).
        self._replied: dict[str, int] = {}
        # Chat key -> the question its saved version asks (its replies not yet handed over),
        # and (chat key, platform message id) -> the question that message asked, not yet
        # written down (storage.asked; written with the marks of `_replied`).
        self._asking: dict[str, Asked] = {}
        self._shown: dict[tuple[str, str], Asked] = {}
        self._replied_since = time.monotonic()
        # How late the marks may be written. Several processes sharing chats (webhook) need
        # them at once: the chat's next message may reach another process within a second.
        self.replied_delay = REPLIED_DELAY
        self._connections = threading.local()  # see `_connection`, `begin_batch`
        self._kept: list[Connection] = []  # every thread's kept connection (see `close`)
        self._lock = threading.Lock()  # `_kept` and `_replied`, used from several threads
        self._threads: ThreadPoolExecutor | None = None  # see `apply`
        self._batch_thread: ThreadPoolExecutor | None = None  # see `run_in_batch`
        self._turns = _Turns()

    # --- from an event loop -----------------------------------------------------------------

    async def apply(self, incoming: Incoming, interpret: Interpret | None = None) -> list[Reply]:
        """`handle` on one of the dispatcher's threads, so that a slow transaction or a chart
        being drawn holds up neither the event loop nor the other chats; one chat's messages
        are applied one after another, in the order they came."""
        async with self._turns.of(_chat_key(incoming)):
            if self._threads is None:
                self._threads = ThreadPoolExecutor(APPLYING_THREADS, "dispatcher")
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._threads, self.handle, incoming, interpret)

    async def run_in_batch(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`call` on the thread of this dispatcher's batches: `begin_batch`, `handle` of the
        batch's updates, `commit_batch` or `rollback_batch` (a batch's transaction is its
        thread's). One call at a time, in the order they are made."""
        if self._batch_thread is None:
            self._batch_thread = ThreadPoolExecutor(1, "dispatcher-batch")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._batch_thread, partial(call, *args, **kwargs))

    async def sent(self, incoming: Incoming, shown: str | None = None) -> None:
        """`delivered`, for a channel on an event loop: the marks are written off the loop,
        on the batches' thread (see `write_delivered`)."""
        if self._note_delivered(incoming, shown):
            await self.run_in_batch(self.write_delivered)

    def handle(self, incoming: Incoming, interpret: Interpret | None = None) -> list[Reply]:
        """Apply `incoming` (read first by the channel's `interpret`, if given); its replies,
        each carrying the language it is written in."""
        batched = self.in_batch
        try:
            if batched:
                return self._apply(incoming, interpret)
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                try:
                    return self._apply(incoming, interpret)
                except IntegrityError:
                    # Another process stored something this update collides with (the same
                    # association's report for the same period, a new chat's first row):
                    # everything was rolled back; applied again, it sees the other's work.
                    log.info(
                        "update %s: a concurrent write collided (attempt %d)",
                        _update_key(incoming),
                        attempt,
                        extra={"update_id": _update_key(incoming)},
                    )
                    if attempt == CONFLICT_ATTEMPTS:
                        raise  # not a race then: a fault of ours, below
            raise AssertionError("unreachable")
        except (OperationalError, InterfaceError) as error:
            # The database did not take the update (nor its batch): worth delivering again,
            # not a "sorry".
            if batched:
                self.rollback_batch()
            log.warning(
                "update %s:%s not applied, the database could not take it (%s)",
                incoming.channel,
                incoming.update_id,
                error.__class__.__name__,
                extra={"update_id": _update_key(incoming)},
            )
            raise TryLater(_update_key(incoming)) from error
        except Exception as error:
            if batched:  # a collision or a fault: seen to alone, where each has its answer
                self.rollback_batch()
                log.info(
                    "update %s: applied on its own instead of in a batch (%s)",
                    _update_key(incoming),
                    error.__class__.__name__,
                    extra={"update_id": _update_key(incoming)},
                )
                raise ApplyAlone(_update_key(incoming)) from error
            # A fault of ours: delivering it again would fail again. Nothing of this update
            # was stored; the person may simply try again.
            log.exception(
                "update %s:%s failed",
                incoming.channel,
                incoming.update_id,
                extra={"update_id": _update_key(incoming)},
            )
            return [self.sorry(incoming)]

    def _apply(self, incoming: Incoming, interpret: Interpret | None = None) -> list[Reply]:
        """One attempt: the update and its effect in one transaction."""
        key = _chat_key(incoming)
        # Taken before the transaction reads anything: a mark leaves `_replied` only once
        # written (see `write_delivered`), so the row read below has it if this lacks it.
        handed = self._replied.get(key)
        # Core statements on a connection; a session only if a handler asks for one.
        batch: _Batch | None = getattr(self._connections, "batch", None)
        with self._transaction() as connection:
            if incoming.update_id is not None and not self._first_time(connection, incoming):
                return []  # a redelivery, or another process applied it meanwhile
            if interpret is not None:
                incoming = interpret(connection, incoming)
            read_ahead = batch.chats.pop(key, None) if batch is not None else None
            if read_ahead is None and batch is not None:
                batch.states.write(connection)  # this chat's row may be among them
            chat, found = read_ahead or read_chat(
                connection, key, incoming.channel, incoming.sender
            )
            context = self._context(connection, incoming, chat, found)
            context.reply_unsure = not chat.replied and handed != chat.version
            bound = self._bound(connection, key, incoming)
            if bound is not None and bound.answered(context.state.waiting_for()):
                context.answers_earlier = True
            elif bound is not None:  # a reply to the question open now: they surely saw it
                context.reply_unsure = False
            nonce = context.state.nonce  # as stored before this update
            try:
                route(context)
                context.flush()  # the person the chat's row refers to may be new
            finally:
                context.close()
            _spend_pressed_buttons(incoming, nonce, context)
            person_id = context.person.id if context.person else None
            state = context.state.dump()
            if read_ahead is not None and batch is not None:
                batch.states.save(connection, key, chat, state, context.now, person_id)
            else:
                save_state(connection, key, chat, state, context.now, person_id)
            language = context.tr.language  # as it is now: the person may have chosen one
            replies = [replace(reply, language=language) for reply in compact(context.replies)]
        self._saved[key] = chat.version + 1
        waiting = context.state.waiting_for() if replies else None
        if waiting is not None:
            self._asking[key] = Asked(chat.version + 1, waiting)
        else:
            self._asking.pop(key, None)
        _log_applied(incoming, context)
        return replies

    # --- several updates in one transaction ---------------------------------------------

    def handle_together(self, incomings: Sequence[Incoming]) -> Together:
        """`handle` of several updates, each of another chat, in one transaction (a batch):
        their replies, to be sent once this returned. When one of them could not be applied
        with the others (ApplyAlone), everything is rolled back and `Together.alone` says
        which: it and those before it are to be applied again on their own. TryLater when the
        database could not take them: nothing of them is stored.

        What every update reads first (whether it was applied before, its chat's row and
        writer) is read for all of them at once, and the chats' new states are written
        together at the end: four statements for the batch instead of three for each update
        (a lone update keeps its three). On PostgreSQL each statement is a round trip, and
        each wait for the server hands the interpreter to the event loop, which under load
        keeps it for up to the switch interval: `bench.dispatch --batch 8` on PostgreSQL,
        0.78-0.82 ms of CPU and 1.15-1.21 ms of wall time per update before, 0.44-0.51 and
        0.62-0.72 after; `bench.e2e` on PostgreSQL, ratio 1.03-1.11 after (bench/README.md)."""
        self.begin_batch()
        replies: list[list[Reply]] = []
        try:
            if len(incomings) > 1:
                self._read_ahead(incomings)
            for index, incoming in enumerate(incomings):
                try:
                    replies.append(self.handle(incoming))
                except ApplyAlone:  # `handle` rolled the batch back
                    return Together([], alone=index)
            self.commit_batch()
        except TryLater:
            self.rollback_batch()
            raise
        except (OperationalError, InterfaceError) as error:  # reading ahead
            self.rollback_batch()
            log.warning(
                "a batch of updates was not applied, the database could not take it (%s)",
                error.__class__.__name__,
            )
            raise TryLater("batch") from error
        except Exception as error:  # reading ahead or saving the states: one by one, then
            self.rollback_batch()
            log.info(
                "a batch of %d updates is applied one by one (%s)",
                len(incomings),
                error.__class__.__name__,
            )
            return Together([], alone=len(incomings) - 1)
        except BaseException:
            self.rollback_batch()
            raise
        return Together(replies)

    def _read_ahead(self, incomings: Sequence[Incoming]) -> None:
        """Record the batch's updates as applied and read their chats and who writes in them,
        in three statements whatever their number."""
        batch: _Batch = self._connections.batch
        connection = self._connection()
        keys = [_update_key(i) for i in incomings if i.update_id is not None]
        new = record_all_applied(connection, keys, self.clock())
        batch.new = {key: key in new for key in keys}
        batch.chats = read_chats(
            connection, [(_chat_key(i), i.channel, i.sender) for i in incomings]
        )

    @property
    def in_batch(self) -> bool:
        """Whether this thread's updates go into an open batch."""
        return getattr(self._connections, "batch", None) is not None

    def begin_batch(self) -> None:
        """Apply this thread's next updates in one transaction, until `commit_batch` or
        `rollback_batch`. Their replies may only be sent once `commit_batch` returned.

        A chat may have one update in a batch: its next one is applied after the replies of
        the first were sent (commit, send, then a new batch), as when updates come one by one.
        Nothing else may write to the database on this thread meanwhile (on SQLite it would
        wait for the batch's own lock).
        """
        assert not self.in_batch, "a batch is already open"
        self._connections.batch = _Batch()
        self._connection().begin()

    def commit_batch(self) -> None:
        """Store the batch's updates; TryLater (all rolled back) if the database could not."""
        connection = self._connection()
        batch: _Batch = self._connections.batch
        self._connections.batch = None
        try:
            batch.states.write(connection)
            connection.commit()
        except (OperationalError, InterfaceError) as error:
            connection.rollback()
            log.warning(
                "a batch of updates was not stored, the database could not take it (%s)",
                error.__class__.__name__,
            )
            raise TryLater("batch") from error

    def rollback_batch(self) -> None:
        """Forget the batch: nothing of it is stored (its replies must not be sent)."""
        # Its entries in `_saved` stay: none is marked delivered, since no reply of the batch
        # is sent, and applying the chat again (alone, or fetched again) writes them anew.
        self._connections.batch = None
        connection = self._connection()
        if connection.in_transaction():
            connection.rollback()

    # --- one update -----------------------------------------------------------------------

    def _connection(self) -> Connection:
        """This thread's connection, kept from one update to the next: taking one from the
        pool and giving it back costs more than most statements of an update. A connection
        the database closed (a restart) fails its update, which is delivered again;
        SQLAlchemy then opens a new one.

        On PostgreSQL the pool pings a connection at each checkout, a round trip: one per
        transaction cost x1.15 CPU and x1.12 wall time per update (`bench.dispatch`, an update
        a transaction, 6 December 2026); on SQLite x1.13 (bench/README.md)."""
        connection: Connection | None = getattr(self._connections, "kept", None)
        if connection is None:
            connection = self._connections.kept = self.engine.connect()
            with self._lock:
                self._kept.append(connection)
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction of its own on this thread's connection, or the open batch's."""
        connection = self._connection()
        if self.in_batch:
            yield connection
            return
        with connection.begin():
            yield connection

    def close(self) -> None:
        """Give back every thread's kept connection (a process stopping); an open batch is
        rolled back. The dispatcher's threads end; a later update starts them again."""
        for threads in (self._threads, self._batch_thread):
            if threads is not None:
                threads.shutdown()
        self._threads = self._batch_thread = None
        self._connections = threading.local()
        with self._lock:
            kept, self._kept = self._kept, []
        for connection in kept:
            connection.close()

    def delivered(self, incoming: Incoming, shown: str | None = None) -> None:
        """The channel sent the replies of `incoming` (replies kept in the outbox do not
        count: the person may type again before the outbox brings them), the last of them
        as the platform's message `shown` when the channel knows its id. Written down for many
        chats at once, at most REPLIED_DELAY later: a crash in between costs those chats a
        "continue where you stopped?" question, nothing more, and a reply to that message is
        then taken as any answer is (until then this process knows it, see `_bound`).
        """
        if self._note_delivered(incoming, shown):
            self.write_delivered()

    def _note_delivered(self, incoming: Incoming, shown: str | None = None) -> bool:
        """Keep the marks of `incoming`; whether the marks are due to be written."""
        key = _chat_key(incoming)
        version = self._saved.pop(key, None)
        question = self._asking.pop(key, None)
        with self._lock:
            if version is not None:
                self._replied[key] = version
            if question is not None and shown is not None:
                self._shown[(key, shown)] = question
        return time.monotonic() - self._replied_since >= self.replied_delay

    def write_delivered(self) -> None:
        """Write down the handed-over replies (also called when a channel idles or stops).

        On an event loop this runs on the batches' thread (`run_in_batch`): never beside a
        batch, whose chats' rows it would wait for while holding others the batch wants (on
        PostgreSQL a deadlock, found after a second). Called there while a batch is open, it
        leaves the marks for the next call."""
        if self.in_batch:
            return
        self._replied_since = time.monotonic()
        with self._lock:
            # In the order of the chats, as any other writer of marks takes their rows' locks.
            replied, shown = dict(sorted(self._replied.items())), dict(self._shown)
        if not replied and not shown:
            return
        try:
            with transaction(self.engine) as session:
                mark_replied(session, replied)
                record_asked(session, shown, self.clock())
        except Exception as error:  # tried again with the next ones (a courtesy, meanwhile)
            log.warning(
                "could not record %d delivered replies (%s)", len(replied), error.__class__.__name__
            )
            return
        # Kept until written: an update of the chat applied meanwhile (on another thread: a
        # batch may hold a chat's row, or lose a deadlock to this) finds them here.
        with self._lock:
            for key, version in replied.items():
                if self._replied.get(key) == version:
                    del self._replied[key]
            for message in shown:
                self._shown.pop(message, None)

    def sorry(self, incoming: Incoming) -> Reply:
        """What a person reads when their message could not be processed."""
        tr = translator(self._language_of(incoming))
        return Reply(
            tr.gettext(
                "Sorry, something went wrong and this message could not be "
                "processed. Your earlier answers are kept; please try again."
            ),
            language=tr.language,
        )

    def keep_unsent(self, incoming: Incoming, replies: list[Reply]) -> int:
        """Replies the channel could not send (after the update was committed) go to the
        outbox, so the sender delivers them with its retries; returns how many were kept.

        Only a registered person has an outbox. While the conversation waits for an answer,
        the kept replies carry the identity of the question they ask (the conversation's
        version and step): if the person writes again before the copy is due, the copy is
        cancelled, not sent (storage.outbox.drop_stale_questions), and if they already have,
        it is not kept at all.
        """
        kept = 0
        key = _chat_key(incoming)
        version = self._saved.get(key)
        self._asking.pop(key, None)  # the outbox keeps the question with its copy
        with transaction(self.engine) as session:
            chat = read_state(session, key)
            state = ChatState.load(chat.state)  # a chat without a row: waits for nothing
            question = question_of(key, chat.version, state.waiting_for(), state.flow)
            if version is not None and chat.version != version:
                log.info(
                    "update %s: %d unsent replies dropped, the conversation moved on",
                    _update_key(incoming),
                    len(replies),
                    extra={"update_id": _update_key(incoming)},
                )
                return 0
            person = find_person(session, incoming.channel, incoming.sender)
            if person is None or person.id is None:
                log.warning(
                    "update %s: %d replies could not be sent and are lost (no person)",
                    _update_key(incoming),
                    len(replies),
                    extra={"update_id": _update_key(incoming)},
                )
                return 0
            for number, reply in enumerate(replies, 1):
                kept += enqueue(
                    session,
                    person_id=person.id,
                    kind="reply",
                    dedupe_key=f"reply:{_update_key(incoming)}:{number}",
                    intent=intent_of(reply),
                    language=person.language,
                    question=question,
                    now=self.clock(),
                )
        log.warning(
            "update %s: %d replies could not be sent; they wait in the outbox",
            _update_key(incoming),
            kept,
            extra={"update_id": _update_key(incoming), "person_id": person.id},
        )
        return kept

    def _language_of(self, incoming: Incoming) -> str:
        """The person's chosen language, read afresh (the failed transaction is gone)."""
        try:
            with Session(self.engine) as session:
                person = find_person(session, incoming.channel, incoming.sender)
                if person is not None and person.language:
                    return person.language
        except Exception:  # the database itself may be what failed
            log.warning("could not read the language of %s", incoming.sender)
        return supported(incoming.language_code) or DEFAULT_LANGUAGE

    def _bound(self, connection: Connection, key: str, incoming: Incoming) -> Asked | None:
        """The question of the bot message `incoming` answers, when it names one that asked a
        question: if the chat no longer asks it, the answer is refused (handlers.router).

        Only typed text, a photo or a place that names the message it answers (a reply to it)
        is looked up: a command is no answer, and a button press is bound to its question by
        its token already (handlers.context). A message not kept (not a question, or too old)
        binds nothing: the answer is taken as any answer is."""
        if incoming.answers is None or incoming.choice is not None or incoming.command:
            return None
        asked = self._shown.get((key, incoming.answers))
        return asked if asked is not None else asked_by(connection, key, incoming.answers)

    def _first_time(self, connection: Connection, incoming: Incoming) -> bool:
        """Record the update as applied (or take what `_read_ahead` recorded); False if it
        already was (a redelivery)."""
        key = _update_key(incoming)
        batch: _Batch | None = getattr(self._connections, "batch", None)
        new = batch.new.pop(key, None) if batch is not None else None
        if new is None:
            new = record_applied(connection, key, self.clock())
        if new:
            return True
        log.info("update %s already applied", key, extra={"update_id": key})
        return False

    def _context(
        self, connection: Connection, incoming: Incoming, chat: StoredChat, found: MemberRows | None
    ) -> Context:
        state = ChatState.load(chat.state)  # validated once; Context.state is the typed copy
        if found is None:
            language = supported(incoming.language_code) or DEFAULT_LANGUAGE
            return Context(
                connection=connection,
                incoming=incoming,
                services=self.services,
                now=self.clock(),
                tr=translator(language),
                state=state,
            )
        person, organization, group = found
        if not person.reachable:  # they wrote to us, so they unblocked the bot
            person = mark_reachable(connection, person)
        person = wrote_from(connection, person, incoming.channel, incoming.sender, self.clock())
        language = person.language or supported(incoming.language_code) or group.language
        return Context(
            connection=connection,
            incoming=incoming,
            services=self.services,
            now=self.clock(),
            tr=translator(language, group.digits),
            state=state,
            person=person,
            organization=organization,
            group=group,
        )


class _Turns:
    """One chat's messages one at a time, in their order of arrival (asyncio's locks are fair);
    a chat's lock is forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def of(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _spend_pressed_buttons(incoming: Incoming, nonce: str | None, context: Context) -> None:
    """A button works once: after a press was taken, the buttons of its message (`nonce`, the
    token the chat had before this update) stop working unless the answer offered them again.
    A double tap, or a press sent again over a slow network, then gets "that button no longer
    works" instead of answering the next question."""
    pressed = (incoming.choice or "").partition(":")[0]
    if nonce and pressed == nonce and not context.offered_buttons:
        context.state.nonce = context.state.asked = None


def _update_key(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.update_id}"


def _log_applied(incoming: Incoming, context: Context) -> None:
    """One line per applied update: its id and the person's internal id, never a name."""
    person_id = context.person.id if context.person is not None else None
    log.info(
        "update %s applied (person %s)",
        _update_key(incoming),
        person_id,
        extra={"update_id": _update_key(incoming), "person_id": person_id},
    )


def _chat_key(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.chat_id}"
