"""The sender: takes messages from the outbox and delivers them within the platform's limits.

Limits (Telegram: about 30 messages a second per bot, 1 a second per chat; WhatsApp: the
number's throughput) are kept by an `outbox.pace.Pace` per channel, shared with the channel's
direct replies when the channel passes one in; a flood wait (`RetryAfter`) pauses the whole
pace of that channel (the platform's limit is per bot, or per number), not the others: while
one channel waits, its messages wait in the outbox and the others' go on.

Outcomes: `RetryAfter` -> the message is tried again after the wait, not counted as an
attempt; `Transient` (5xx, network, anything unexpected) -> retried after 1 s, 2 s, 4 s ...
(at most `max_backoff`), "failed" after `max_attempts`; the platform may have taken the
message before its answer was lost, so such a retry counts in the row's `resent` (it may
reach the person twice); `Unreachable` -> "blocked" and the person unreachable; `Rejected`
-> "failed" at once.

Claims carry this sender's holder id; on PostgreSQL `run_forever` writes its heartbeat every
few seconds and puts back the claims of holders gone silent (storage.holders), so a killed
worker's messages go out within seconds. The sender sleeps until the next message is due or
`wake()` is called: on enqueue in this process (`outbox.wakeup`) and, on PostgreSQL, on an
enqueue anywhere (LISTEN/NOTIFY, see bot.background).

Each outcome is committed as soon as it is known, so a crash repeats only the messages that
were in flight to the platform (at most `concurrency`); see storage.outbox for recovery.

Time comes from `clock` (aware datetimes) and passes through `sleep`: tests and benchmarks
replace both to move time by hand or run it faster. Several senders (processes) may drain one
PostgreSQL outbox, each with its share of the rate (`per_second` = 30 / number of senders).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from handlers.state import waiting_for
from outbox.pace import Pace, Sleep
from storage import holders
from storage import outbox as store
from storage.asked import Asked, record_asked
from storage.db import transaction
from storage.deliveries import took
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)

FINISHED = ("sent", "blocked", "failed")
FLOOD_WAITS_IN_PLACE = 3  # then the message goes back to the outbox
IDLE_SECONDS = 60.0  # longest sleep with nothing due: a safety net for a missed wake-up
# The longest round trip to a platform the sender keeps its rate through: a message holds its
# slot for a round trip, so the rate needs rate x round trip slots. On 127.0.0.1 a round trip
# is a few ms; to Meta's Graph API from the field, a few hundred (8 slots would cap WhatsApp's
# 80/s at 20-40/s). The paces, not the slots, keep each platform's limits.
ROUND_TRIP_SECONDS = 0.25
MIN_CONCURRENCY = 8


def concurrency_for(rates: Iterable[float]) -> int:
    """Messages in flight at once for channels sending at these rates (per second): 8 for
    Telegram's 30, 28 beside WhatsApp's 80."""
    return max(MIN_CONCURRENCY, math.ceil(sum(rates) * ROUND_TRIP_SECONDS))


@dataclass(frozen=True)
class Address:
    """Where a person is reached: the channel and the address on it (Telegram: the chat id),
    with their language and when they last wrote from it (for WhatsApp's 24-hour window)."""

    channel: str
    address: str
    language: str | None = None
    last_inbound_at: datetime | None = None


class RetryAfter(Exception):
    """The platform asks to wait `seconds` before sending anything more (a flood limit)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"flood wait of {seconds:g} s")
        self.seconds = seconds


class Unreachable(Exception):
    """The person cannot be reached: blocked the bot, deleted the account."""


class Transient(Exception):
    """Worth trying again later: a server error, a timeout, the network."""


class Rejected(Exception):
    """The platform refused this message for good (malformed, missing photo): not retried."""


#: Sends one outbox row to its address; returns the platform's id of the (last) message that
#: carried it, when the platform gives one: recorded with the row's "sent" (with the status
#: reports that came before it, storage.deliveries), and a row that asks a question is then
#: kept as the message of that question (storage.asked), so that a reply to it is bound to its
#: question.
Deliver = Callable[[Address, OutboxMessage], Awaitable[str | None]]


@dataclass(frozen=True)
class Delivered:
    """What became of one message in a run: sent, blocked, failed, or pending (later)."""

    message_id: int
    person_id: int
    status: str
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _still_running(tasks: set[asyncio.Task[Delivered]]) -> set[asyncio.Task[Delivered]]:
    """The tasks not done yet; a done one that failed is logged (its row stays claimed and
    goes back when this sender stops or dies)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("outbox: delivering a message failed", exc_info=task.exception())
    return {task for task in tasks if not task.done()}


class Sender:
    """Drains the outbox through `deliver`; one instance per process."""

    def __init__(
        self,
        engine: Engine,
        deliver: Deliver,
        *,
        per_second: float = 30.0,
        per_chat_seconds: float = 1.0,
        concurrency: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 8,
        max_backoff: float = 300.0,
        burst: float = 2.0,
        batch: int | None = None,
        stale_after: timedelta = timedelta(minutes=10),
        idle_seconds: float = IDLE_SECONDS,
        on_sent: Callable[[float, float], None] | None = None,
        pace: Pace | Mapping[str, Pace] | None = None,
        holder: str | None = None,
        silent_after: timedelta = holders.SILENT_AFTER,
    ) -> None:
        self.engine = engine
        self.deliver = deliver
        self.clock = clock
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.stale_after = stale_after  # claims without a holder (made before holders were)
        self.silent_after = silent_after
        self.idle_seconds = idle_seconds
        # One pace per channel when given per channel (each platform has its own limits);
        # `limiter` serves a channel without its own.
        self.paces: dict[str, Pace] = dict(pace) if isinstance(pace, Mapping) else {}
        given = pace if isinstance(pace, Pace) else None
        self.limiter = given or Pace(
            per_second, per_chat_seconds, lambda: clock().timestamp(), sleep, burst
        )
        # Messages in flight at once: enough for every channel's rate at a slow round trip.
        rates = [p.rate for p in self.paces.values()] or [self.limiter.rate]
        self.concurrency = concurrency or concurrency_for(rates)
        # A claim is at most what can be in flight at once: after a crash every claim left
        # counts as "may have been sent" (resent), so claiming more would overstate it.
        self.batch = batch or self.concurrency
        self.holder = holder or holders.new_holder()
        self.stats: Counter[str] = Counter()
        self.on_sent = on_sent  # told (seconds of the call, seconds since enqueued) per send
        self._wake = asyncio.Event()

    # --- running ----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim a batch, deliver it within the limits, record each outcome; return how many
        messages were finished (sent, blocked or failed)."""
        results = await self._run_batch()
        return sum(1 for result in results if result.finished)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set.

        On SQLite one process sends, so at start every claim left is a dead sender's. On
        PostgreSQL other senders may be at work: this one heartbeats, and puts back the claims
        of holders gone silent (`release_dead`), regularly.
        """
        shared = self.engine.dialect.name != "sqlite"
        # The database work runs off the event loop: on SQLite a transaction of the channel's
        # (a batch of updates, on the dispatcher's thread) may hold the write lock meanwhile.
        if shared:
            await asyncio.to_thread(self.beat)
            await asyncio.to_thread(self.release_dead)
        else:
            await asyncio.to_thread(self.recover, timedelta(0))
        beating = asyncio.create_task(self._beat_forever(stop)) if shared else None
        in_flight: set[asyncio.Task[Delivered]] = set()
        refill = max(1, self.concurrency // 2)
        try:
            while not stop.is_set():
                # Keep `concurrency` messages on their way: claim as soon as half of them are
                # done, rather than batch after batch (a batch waits for its slowest message)
                # or one by one (a claim costs a transaction).
                in_flight = _still_running(in_flight)
                claimed = 0
                free = self.concurrency - len(in_flight)
                if free >= refill:
                    try:
                        if not self.paces:  # one platform: nothing to send while it waits
                            await self.limiter.wait_pause()
                        batch = await asyncio.to_thread(self._claim, free)
                    except Exception:
                        log.exception("outbox: a claim failed; trying again shortly")
                        batch = []
                    claimed = len(batch)
                    slots = asyncio.Semaphore(self.concurrency)
                    for address, message in batch:
                        in_flight.add(asyncio.create_task(self._one(address, message, slots)))
                if in_flight and (claimed or free < refill):
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                elif not claimed:
                    await self._idle(stop, in_flight)
            if in_flight:
                await asyncio.wait(in_flight)
        finally:
            for task in in_flight:  # cancelled (the process dies): they die with it
                task.cancel()
            if beating is not None:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)
                await asyncio.to_thread(self._forget)

    def pace_of(self, channel: str) -> Pace:
        """The pace of `channel`'s messages."""
        return self.paces.get(channel, self.limiter)

    def wake(self) -> None:
        """Something was enqueued: end the idle wait now."""
        self._wake.set()

    def recover(self, older_than: timedelta | None = None) -> int:
        """Put claims older than `older_than` (default `stale_after`) back; returns how many."""
        with transaction(self.engine) as session:
            count = store.recover(
                session, self.clock(), self.stale_after if older_than is None else older_than
            )
        self._recovered(count)
        return count

    def beat(self) -> None:
        """This sender is alive (its claims are not to be taken back)."""
        with transaction(self.engine) as session:
            holders.beat(session, self.holder, utcnow())

    def release_dead(self) -> int:
        """Put back the claims of holders silent for `silent_after`; returns how many."""
        alive_since = utcnow() - self.silent_after  # heartbeats count wall-clock time
        with transaction(self.engine) as session:
            count = store.release_dead_claims(session, alive_since, self.clock(), self.stale_after)
            holders.forget_silent(session, alive_since - self.silent_after * 5)
        self._recovered(count)
        return count

    def _recovered(self, count: int) -> None:
        if count:
            self.stats["recovered"] += count
            log.warning(
                "outbox: %d claimed messages of a stopped sender go out again; those "
                "that were in flight at the stop reach their person twice",
                count,
            )

    async def _beat_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(holders.BEAT_SECONDS)  # wall-clock time, as the heartbeats
            try:
                await asyncio.to_thread(self.beat)
                if await asyncio.to_thread(self.release_dead):
                    self.wake()
            except Exception as error:  # the database is away: the next beat tries again
                log.warning("outbox: heartbeat failed (%s)", error.__class__.__name__)

    def _forget(self) -> None:
        try:
            with transaction(self.engine) as session:
                holders.forget(session, self.holder)
        except Exception as error:
            log.warning("outbox: could not forget this sender (%s)", error.__class__.__name__)

    # --- one batch --------------------------------------------------------------------------

    async def _run_batch(self) -> list[Delivered]:
        if not self.paces:
            await self.limiter.wait_pause()
        batch = await asyncio.to_thread(self._claim)
        if not batch:
            return []
        slots = asyncio.Semaphore(self.concurrency)
        return list(
            await asyncio.gather(
                *(self._one(address, message, slots) for address, message in batch)
            )
        )

    def _claim(self, limit: int | None = None) -> list[tuple[Address, OutboxMessage]]:
        with transaction(self.engine) as session:
            messages = store.claim(session, self.clock(), limit or self.batch, self.holder)
            if not messages:
                return []
            messages = store.drop_stale_questions(session, messages, waiting_for)
            people = store.recipients(session, {m.person_id for m in messages})
        addresses = {
            pid: Address(r.channel, r.address, r.language, r.last_inbound_at)
            for pid, r in people.items()
        }
        return [(addresses[m.person_id], m) for m in messages]

    async def _one(
        self, address: Address, message: OutboxMessage, slots: asyncio.Semaphore
    ) -> Delivered:
        assert message.id is not None
        chat = (address.channel, address.address)
        pace = self.pace_of(address.channel)
        for _ in range(FLOOD_WAITS_IN_PLACE):
            if self.paces and (left := pace.paused_for()) > 0:
                # Its channel waits out a flood wait: the row waits in the outbox, not in a
                # slot that another channel's messages need meanwhile.
                return await asyncio.to_thread(
                    self._record, message, "released", at=timedelta(seconds=left)
                )
            await pace.wait_chat(chat)
            granted = False
            try:
                async with slots:
                    await pace.acquire()
                    granted = True
                    started = time.perf_counter()
                    platform_id = await self.deliver(address, message)
            except RetryAfter as flood:
                self.stats["flood_waits"] += 1
                log.warning("outbox: %s flood wait of %g s", address.channel, flood.seconds)
                pace.pause(flood.seconds)
                continue
            except Unreachable as error:
                return await asyncio.to_thread(
                    self._record, message, "blocked", error, address.channel
                )
            except Rejected as error:
                return await asyncio.to_thread(
                    self._record, message, "failed", error, address.channel
                )
            except Exception as error:  # Transient, and anything unexpected
                if not isinstance(error, Transient):
                    log.exception("outbox: unexpected error delivering message %d", message.id)
                return await asyncio.to_thread(
                    self._record, message, "retry", error, address.channel
                )
            finally:
                pace.done(chat, granted=granted)
            if self.on_sent is not None:
                self.on_sent(
                    time.perf_counter() - started,
                    (self.clock() - message.created_at).total_seconds(),
                )
            chat_key = f"{address.channel}:{address.address}"
            return await asyncio.to_thread(
                self._record,
                message,
                "sent",
                channel=address.channel,
                shown=(chat_key, platform_id) if platform_id else None,
            )
        return await asyncio.to_thread(self._record, message, "released")

    def _record(
        self,
        message: OutboxMessage,
        outcome: str,
        error: BaseException | None = None,
        channel: str | None = None,
        at: timedelta = timedelta(0),
        shown: tuple[str, str] | None = None,
    ) -> Delivered:
        """Commit what became of `message`, now (on `channel`, the recipient's); `shown`: the
        chat and the platform's message id it was sent as (recorded, with the status reports
        that came before it); a released message is due again `at` from now."""
        assert message.id is not None
        now = self.clock()
        detail = f"{type(error).__name__}: {error}" if error is not None else None
        attempts = message.attempts + 1
        if outcome == "retry" and attempts >= self.max_attempts:
            outcome = "failed"
        with transaction(self.engine) as session:
            if outcome == "sent":
                store.mark_sent(session, message.id, now, channel)
                if shown is not None:
                    took(session, message.id, shown[1], now)
                if message.question and shown is not None:
                    record_asked(session, {shown: Asked.of(message.question)}, now)
            elif outcome == "blocked":
                store.mark_blocked(session, message.id, message.person_id, detail or "", channel)
            elif outcome == "failed":
                store.mark_failed(session, message.id, detail or "", channel)
            elif outcome == "retry":
                again = now + timedelta(seconds=self.backoff(attempts))
                # The platform may have taken it before the answer was lost: a repeat, maybe.
                store.mark_retry(session, message.id, again, detail or "", doubtful=True)
                self.stats["doubtful"] += 1
            else:
                store.release(session, message.id, now + at)
        status = outcome if outcome in FINISHED else "pending"
        self.stats[outcome] += 1
        if outcome in ("blocked", "failed"):
            log.info("outbox: message %d %s: %s", message.id, outcome, detail)
        return Delivered(message.id, message.person_id, status, detail)

    def _next_due(self) -> datetime | None:
        with transaction(self.engine) as session:
            return store.next_due(session)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` tries: 1, 2, 4 ... `max_backoff`."""
        return min(self.max_backoff, 2.0 ** (attempts - 1))

    async def _idle(
        self, stop: asyncio.Event, in_flight: set[asyncio.Task[Delivered]] | None = None
    ) -> None:
        """Wait until the next message is due (at most `idle_seconds`), a wake-up, a message
        in flight is done, or stop."""
        if not self._wake.is_set():
            due = await asyncio.to_thread(self._next_due)
            wait = self.idle_seconds
            if due is not None:
                wait = min(wait, (due - self.clock()).total_seconds())
            fastest = max(p.rate for p in (self.limiter, *self.paces.values()))
            wait = max(wait, 1 / fastest)  # due, but another sender has it: no spin
            waiters = [
                asyncio.ensure_future(self.sleep(wait)),
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wake.wait()),
                *(in_flight or ()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters[:3]:
                    waiter.cancel()
        self._wake.clear()
