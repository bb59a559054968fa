"""Waking the sender when a message is enqueued in this process, instead of polling.

`on_enqueue(engine, callback)` calls `callback` (from whichever thread committed) after each
commit of a transaction that inserted into the outbox. Enqueues in other processes reach the
sender through PostgreSQL's LISTEN/NOTIFY (migration 0007's trigger, bot.background).

The callback runs as the commit begins: a sender woken on another thread may look before the
rows are visible, so `threadsafe_waker` hands the wake-up to the event loop, which runs it
after a commit made on the loop's own thread has finished. (Work committed from a worker
thread, the monitoring tick, wakes the sender itself when it is done.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.sql.dml import Insert

TABLE = "outbox"
_MARK = "outbox_enqueued"


def on_enqueue(engine: Engine, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after each commit that enqueued; returns what stops it."""

    def noticed(connection: Connection, clause: Any, *_: Any) -> None:
        if isinstance(clause, Insert) and getattr(clause.table, "name", None) == TABLE:
            connection.info[_MARK] = True

    def committed(connection: Connection) -> None:
        if connection.info.pop(_MARK, False):
            callback()

    def rolled_back(connection: Connection) -> None:
        connection.info.pop(_MARK, None)

    listeners = (
        ("before_execute", noticed),
        ("commit", committed),
        ("rollback", rolled_back),
    )
    for name, listener in listeners:
        event.listen(engine, name, listener)

    def stop() -> None:
        for name, listener in listeners:
            event.remove(engine, name, listener)

    return stop


def threadsafe_waker(wake: Callable[[], None]) -> Callable[[], None]:
    """`wake`, callable from any thread: run by the current event loop at its next turn."""
    loop = asyncio.get_running_loop()

    def waker() -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(wake)

    return waker
