"""Background work, never inside a chat handler: the monitoring tick, run every minute by
APScheduler 3, forgetting old update ids every hour, and the outbox sender. Inside `python -m
bot run` by default; alone in `python -m bot worker` when the bot runs in other processes
(APScheduler 3 cannot share a job store between processes, so exactly one process may run
it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import Sanad
from monitoring.monitor import Monitor
from outbox.sender import Deliver, Sender
from storage.applied import forget_applied

log = logging.getLogger(__name__)
TICK_SECONDS = 60
FORGET_SECONDS = 3600


class Background:
    """The scheduler and the sender of one process."""

    def __init__(
        self,
        sanad: Sanad,
        deliver: Deliver,
        on_sent: Callable[[float, float], None] | None = None,
        per_second: float = 30.0,
        burst: float = 5.0,
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
        )
        self.engine = sanad.engine
        self.clock = sanad.dispatcher.clock
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._stop = asyncio.Event()
        self._sending: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=TICK_SECONDS,
            id="monitoring",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=TICK_SECONDS,
        )
        self.scheduler.add_job(
            self.forget_old_updates,
            "interval",
            seconds=FORGET_SECONDS,
            id="forget-applied-updates",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()
        self._sending = asyncio.create_task(self.sender.run_forever(self._stop))
        log.info("scheduler and sender started")

    async def tick(self) -> None:
        new = await asyncio.to_thread(self.monitor.tick)
        if new:
            log.info("monitoring enqueued %d messages", new)
            self.sender.wake()

    async def forget_old_updates(self) -> None:
        """Drop the record of updates Telegram can no longer send again (storage.applied)."""
        forgotten = await asyncio.to_thread(forget_applied, self.engine, self.clock())
        if forgotten:
            log.info("forgot %d applied update ids", forgotten)

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        self._stop.set()
        if self._sending is not None:
            await self._sending
        log.info("scheduler and sender stopped")
