"""Work shared between processes on PostgreSQL, over one dedicated connection of each process:

* the scheduler lease: a session-level advisory lock, held while the connection lives. Exactly
  one process holds it; when that process dies, PostgreSQL ends its connection and frees the
  lock, and another process takes it at its next try (every `CHECK_SECONDS`);
* enqueue notifications: migration 0007 makes every insert into the outbox `NOTIFY
  sanad_outbox` (at commit); each process LISTENs and wakes its sender.

The lock key and the notification carry the schema, so that several Sanads (tests) can share
one database without sharing a lease or waking one another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

from sqlalchemy import Engine

log = logging.getLogger(__name__)

# The channel migration 0007's trigger notifies; literal SQL (a name of ours, never a value).
LISTEN = "LISTEN sanad_outbox"
CHECK_SECONDS = 2.0  # how often the lease is tried for, or the connection checked
RETRY_SECONDS = 2.0  # after the connection failed
LEASE = "sanad-scheduler"


def libpq_url(engine: Engine) -> str:
    """The engine's database as a libpq URL (psycopg's own), with its options."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class Coordination:
    """The lease and the notifications of one process (PostgreSQL only)."""

    def __init__(
        self,
        engine: Engine,
        on_notified: Callable[[], None],
        on_lease: Callable[[bool], Awaitable[None]],
        *,
        want_lease: bool = True,
    ) -> None:
        self.url = libpq_url(engine)
        self.on_notified = on_notified
        self.on_lease = on_lease
        self.want_lease = want_lease
        self.holds_lease = False

    async def run(self, stop: asyncio.Event) -> None:
        """Listen, and hold or try for the lease, until `stop` is set; reconnect on failure."""
        import psycopg  # here: a process on SQLite never needs it (10 MB of memory)

        while not stop.is_set():
            try:
                await self._connected(stop)
            except (psycopg.Error, OSError) as error:
                log.warning("coordination: connection lost (%s)", error.__class__.__name__)
            finally:
                await self._lost()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)

    async def _connected(self, stop: asyncio.Event) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as connection:
            schema = (
                await (await connection.execute("SELECT current_schema()")).fetchone() or [""]
            )[0]
            await connection.execute(LISTEN)
            self.on_notified()  # what was enqueued while nobody listened
            while not stop.is_set():
                if self.want_lease and not self.holds_lease:
                    cursor = await connection.execute(
                        "SELECT pg_try_advisory_lock(hashtext(%s))", (f"{LEASE}:{schema}",)
                    )
                    row = await cursor.fetchone()
                    if row is not None and row[0]:
                        self.holds_lease = True
                        log.info("coordination: this process holds the scheduler lease")
                        await self.on_lease(True)
                else:
                    await connection.execute("SELECT 1")  # the lease's connection still lives
                async for notice in connection.notifies(timeout=CHECK_SECONDS, stop_after=1):
                    if notice.payload == schema:
                        self.on_notified()
            if self.holds_lease:
                await connection.execute(
                    "SELECT pg_advisory_unlock(hashtext(%s))", (f"{LEASE}:{schema}",)
                )

    async def _lost(self) -> None:
        if self.holds_lease:
            self.holds_lease = False
            log.warning("coordination: the scheduler lease is given up")
            await self.on_lease(False)
