"""Background work, never inside a chat handler: the monitoring tick, run every minute by
APScheduler 3, forgetting old update ids every hour, and the outbox sender. Inside `python -m
bot run` by default; in `python -m bot worker` processes when the bot runs in others.

Any number of processes may run it on PostgreSQL: all of them send (claims are SKIP LOCKED,
and a dead sender's claims go back within seconds, see outbox.sender), but only the holder of
the scheduler lease (storage.coordination) runs the scheduled jobs; when it dies another takes
the lease within seconds and runs them. Reminders and digests are keyed by their local date
and period in the outbox, so a tick run twice around a takeover enqueues nothing twice. On
SQLite one process does everything and holds the lease by being alone.

The sender sleeps until woken: by an enqueue committed in this process (outbox.wakeup) or, on
PostgreSQL, in any process (LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import Sanad
from monitoring.monitor import Monitor
from outbox.pace import Pace
from outbox.sender import Deliver, Sender
from outbox.wakeup import on_enqueue, threadsafe_waker
from storage.applied import forget_applied
from storage.asked import forget_asked
from storage.coordination import Coordination
from storage.deliveries import forget_reports

log = logging.getLogger(__name__)
TICK_SECONDS = 60
FORGET_SECONDS = 3600
JOBS = ("monitoring", "forget-applied-updates")


class Background:
    """The scheduler and the sender of one process."""

    def __init__(
        self,
        sanad: Sanad,
        deliver: Deliver,
        on_sent: Callable[[float, float], None] | None = None,
        pace: Pace | Mapping[str, Pace] | None = None,
        per_second: float = 30.0,
        burst: float = 2.0,
    ) -> None:
        self.monitor = Monitor(
            sanad.engine,
            sanad.dispatcher.services.forms,
            sanad.settings.charts_dir,
            sanad.dispatcher.clock,
        )
        self.sender = Sender(
            sanad.engine,
            deliver,
            per_second=per_second,
            burst=burst,
            clock=sanad.dispatcher.clock,
            on_sent=on_sent,
            stale_after=timedelta(seconds=sanad.settings.outbox_claim_timeout),
            pace=pace,
        )
        self.engine = sanad.engine
        self.clock = sanad.dispatcher.clock
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unlisten: Callable[[], None] | None = None
        self.holds_lease = False

    async def start(self) -> None:
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=TICK_SECONDS,
            id=JOBS[0],
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=TICK_SECONDS,
        )
        self.scheduler.add_job(
            self.forget_old_updates,
            "interval",
            seconds=FORGET_SECONDS,
            id=JOBS[1],
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )
        alone = self.engine.dialect.name == "sqlite"
        self.scheduler.start(paused=True)
        self._unlisten = on_enqueue(self.engine, threadsafe_waker(self.sender.wake))
        self._tasks.append(asyncio.create_task(self.sender.run_forever(self._stop)))
        if alone:
            await self.leased(True)
        else:
            coordination = Coordination(self.engine, self.sender.wake, self.leased)
            self._tasks.append(asyncio.create_task(coordination.run(self._stop)))
        log.info("scheduler and sender started")

    async def leased(self, held: bool) -> None:
        """The scheduler lease was taken (run the jobs now, then on schedule) or lost."""
        self.holds_lease = held
        if held:
            now = datetime.now(UTC)
            for job in JOBS:
                self.scheduler.modify_job(job, next_run_time=now)
            self.scheduler.resume()
            log.info("scheduler lease held: reminders and digests run here")
        elif self.scheduler.running:
            self.scheduler.pause()
            log.warning("scheduler lease lost: reminders and digests stop here")

    async def tick(self) -> None:
        new = await asyncio.to_thread(self.monitor.tick)
        if new:
            log.info("monitoring enqueued %d messages", new)
            self.sender.wake()

    async def forget_old_updates(self) -> None:
        """Drop the record of updates Telegram can no longer send again (storage.applied), what
        messages of the same age asked (storage.asked), and status reports that never found
        their message (storage.deliveries)."""
        forgotten = await asyncio.to_thread(forget_applied, self.engine, self.clock())
        if forgotten:
            log.info("forgot %d applied update ids", forgotten)
        asked = await asyncio.to_thread(forget_asked, self.engine, self.clock())
        if asked:
            log.info("forgot the questions of %d old messages", asked)
        reports = await asyncio.to_thread(forget_reports, self.engine, self.clock())
        if reports:
            log.info("forgot %d status reports that never found their message", reports)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self.scheduler.shutdown(wait=False)
        if self._unlisten is not None:
            self._unlisten()
        log.info("scheduler and sender stopped")
