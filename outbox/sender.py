"""The sender: takes messages from the outbox and delivers them within the platform's limits.

Limits (Telegram: about 30 messages a second per bot, 1 a second per chat):

* overall, a token bucket of `per_second` with a small burst (`burst`, 5): sends are evenly
  spaced, a timer that wakes late is made up for, and Telegram's own allowance (about a
  second's worth) keeps room for requests that reach it late or out of order;
* per chat, the next message may go `per_chat_seconds` after the platform *answered* the
  previous one to that chat (so it arrives at least that long after it);
* a flood wait (`RetryAfter`) pauses the whole sender: the platform's limit is per bot.

Outcomes: `RetryAfter` -> the message is tried again after the wait, not counted as an
attempt; `Transient` (5xx, network, anything unexpected) -> retried after 1 s, 2 s, 4 s ...
(at most `max_backoff`), "failed" after `max_attempts`; `Unreachable` -> "blocked" and the
person unreachable; `Rejected` -> "failed" at once.

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
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from storage import outbox as store
from storage.db import transaction
from storage.models import OutboxMessage
from storage.types import utcnow

log = logging.getLogger(__name__)

FINISHED = ("sent", "blocked", "failed")
SAFETY = 0.001  # seconds added to waits the platform counts to the second
RESOLUTION = 1e-6  # datetimes count microseconds: a shorter wait is no wait
FLOOD_WAITS_IN_PLACE = 3  # then the message goes back to the outbox


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


Deliver = Callable[[Address, OutboxMessage], Awaitable[None]]
Sleep = Callable[[float], Awaitable[object]]


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


class RateLimiter:
    """The overall token bucket, spacing per chat, and the bot-wide pause after a flood wait."""

    def __init__(
        self,
        per_second: float,
        per_chat_seconds: float,
        clock: Callable[[], float],
        sleep: Sleep,
        burst: float = 1.0,
    ) -> None:
        self.rate = per_second
        self.burst = max(1.0, burst)
        self.per_chat_seconds = per_chat_seconds
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._paused_until = -math.inf
        self._chat_free: dict[Hashable, float] = {}
        self._lock = asyncio.Lock()

    async def wait_chat(self, chat: Hashable) -> None:
        """Wait until `chat` may get its next message."""
        while (wait := self._chat_free.get(chat, -math.inf) - self._clock()) > RESOLUTION:
            await self._sleep(wait)

    async def acquire(self) -> None:
        """Wait for a token and take it; grants go one at a time, in order of arrival."""
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                wait = max(
                    self._paused_until - now,
                    0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate,
                )
                if wait <= RESOLUTION:
                    self._tokens -= 1
                    return
                await self._sleep(wait)

    async def wait_pause(self) -> None:
        while (wait := self._paused_until - self._clock()) > RESOLUTION:
            await self._sleep(wait)

    def done(self, chat: Hashable) -> None:
        """The platform answered a message to `chat`: space the next one from now."""
        now = self._clock()
        if len(self._chat_free) > 1000:
            self._chat_free = {c: t for c, t in self._chat_free.items() if t > now}
        self._chat_free[chat] = now + self.per_chat_seconds + SAFETY

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (a flood wait applies to the whole bot)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds + SAFETY)


class Sender:
    """Drains the outbox through `deliver`; one instance per process."""

    def __init__(
        self,
        engine: Engine,
        deliver: Deliver,
        *,
        per_second: float = 30.0,
        per_chat_seconds: float = 1.0,
        concurrency: int = 8,
        clock: Callable[[], datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 8,
        max_backoff: float = 300.0,
        burst: float = 5.0,
        batch: int | None = None,
        stale_after: timedelta = timedelta(minutes=10),
        idle_seconds: float = 1.0,
        on_sent: Callable[[float, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.deliver = deliver
        self.clock = clock
        self.sleep = sleep
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        # A claim is at most what can be in flight at once: after a crash every claim left
        # counts as "may have been sent" (resent), so claiming more would overstate it.
        self.batch = batch or concurrency
        self.stale_after = stale_after
        self.idle_seconds = idle_seconds
        self.limiter = RateLimiter(
            per_second, per_chat_seconds, lambda: clock().timestamp(), sleep, burst
        )
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
        """Deliver until `stop` is set; recover dead senders' claims at start and regularly.

        On SQLite one process sends, so at start every claim left is a dead sender's; on
        PostgreSQL other senders may be at work: only claims older than `stale_after` go back.
        """
        self.recover(timedelta(0) if self.engine.dialect.name == "sqlite" else None)
        last_recovery = self.clock()
        while not stop.is_set():
            try:
                claimed = len(await self._run_batch())
            except Exception:
                log.exception("outbox: a batch failed; trying again shortly")
                claimed = 0
            if self.clock() - last_recovery >= self.stale_after / 2:
                self.recover()
                last_recovery = self.clock()
            if not claimed:
                await self._idle(stop)

    def wake(self) -> None:
        """Something was enqueued: end the idle wait now."""
        self._wake.set()

    def recover(self, older_than: timedelta | None = None) -> int:
        """Put claims older than `older_than` (default `stale_after`) back; returns how many."""
        with transaction(self.engine) as session:
            count = store.recover(
                session, self.clock(), self.stale_after if older_than is None else older_than
            )
        if count:
            self.stats["recovered"] += count
            log.warning(
                "outbox: %d claimed messages of a stopped sender go out again; those "
                "that were in flight at the stop reach their person twice",
                count,
            )
        return count

    # --- one batch --------------------------------------------------------------------------

    async def _run_batch(self) -> list[Delivered]:
        await self.limiter.wait_pause()
        batch = self._claim()
        if not batch:
            return []
        slots = asyncio.Semaphore(self.concurrency)
        return list(
            await asyncio.gather(
                *(self._one(address, message, slots) for address, message in batch)
            )
        )

    def _claim(self) -> list[tuple[Address, OutboxMessage]]:
        with transaction(self.engine) as session:
            messages = store.claim(session, self.clock(), self.batch)
            if not messages:
                return []
            messages = store.drop_stale_questions(session, messages)
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
        await self.limiter.wait_chat(chat)
        async with slots:
            for _ in range(FLOOD_WAITS_IN_PLACE):
                await self.limiter.acquire()
                started = time.perf_counter()
                try:
                    await self.deliver(address, message)
                except RetryAfter as flood:
                    self.stats["flood_waits"] += 1
                    log.warning("outbox: flood wait of %g s", flood.seconds)
                    self.limiter.pause(flood.seconds)
                    continue
                except Unreachable as error:
                    return self._record(message, "blocked", error)
                except Rejected as error:
                    return self._record(message, "failed", error)
                except Exception as error:  # Transient, and anything unexpected
                    if not isinstance(error, Transient):
                        log.exception("outbox: unexpected error delivering message %d", message.id)
                    return self._record(message, "retry", error)
                finally:
                    self.limiter.done(chat)
                if self.on_sent is not None:
                    self.on_sent(
                        time.perf_counter() - started,
                        (self.clock() - message.created_at).total_seconds(),
                    )
                return self._record(message, "sent")
            return self._record(message, "released")

    def _record(
        self, message: OutboxMessage, outcome: str, error: BaseException | None = None
    ) -> Delivered:
        """Commit what became of `message`, now."""
        assert message.id is not None
        now = self.clock()
        detail = f"{type(error).__name__}: {error}" if error is not None else None
        attempts = message.attempts + 1
        if outcome == "retry" and attempts >= self.max_attempts:
            outcome = "failed"
        with transaction(self.engine) as session:
            if outcome == "sent":
                store.mark_sent(session, message.id, now)
            elif outcome == "blocked":
                store.mark_blocked(session, message.id, message.person_id, detail or "")
            elif outcome == "failed":
                store.mark_failed(session, message.id, detail or "")
            elif outcome == "retry":
                at = now + timedelta(seconds=self.backoff(attempts))
                store.mark_retry(session, message.id, at, detail or "")
            else:
                store.release(session, message.id, now)
        status = outcome if outcome in FINISHED else "pending"
        self.stats[outcome] += 1
        if outcome in ("blocked", "failed"):
            log.info("outbox: message %d %s: %s", message.id, outcome, detail)
        return Delivered(message.id, message.person_id, status, detail)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` tries: 1, 2, 4 ... `max_backoff`."""
        return min(self.max_backoff, 2.0 ** (attempts - 1))

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait until the next message is due (at most `idle_seconds`), a wake-up, or stop."""
        if not self._wake.is_set():
            with transaction(self.engine) as session:
                due = store.next_due(session)
            wait = self.idle_seconds
            if due is not None:
                wait = min(wait, (due - self.clock()).total_seconds())
            wait = max(wait, 1 / self.limiter.rate)  # due, but another sender has it: no spin
            waiters = [
                asyncio.ensure_future(self.sleep(wait)),
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wake.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self._wake.clear()
