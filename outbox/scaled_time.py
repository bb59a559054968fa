"""Time that runs `factor` times faster than the wall clock, for tests and benchmarks.

Give `now` to the Sender as its clock, `sleep` as its sleep, and `timestamp` to the fake Bot
API's `limits(clock=...)`: both then count the same accelerated seconds, so "30 messages a
second" is checked in seconds of this clock while the run takes 1/factor of the time.
Real work (Python, the database) is accelerated too: at a factor of 20, 1 ms of real work
counts as 20 ms. Keep factor x rate well below what the machine can do.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class ScaledTime:
    """A clock starting at `start` and running `factor` times faster than the wall."""

    def __init__(self, factor: float, start: datetime | None = None) -> None:
        self.factor = factor
        self.start = start or datetime.now(UTC)
        self._origin = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of this clock since it was made."""
        return (time.perf_counter() - self._origin) * self.factor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed())

    def timestamp(self) -> float:
        return self.start.timestamp() + self.elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)
