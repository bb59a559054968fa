"""The record of updates already applied: one row per update, written in the transaction that
stores its effect, so that a redelivery is recognised and ignored.

Telegram keeps an update for at most 24 hours, so after that nothing can deliver it again and
its row only takes room (one per message anyone ever sent). Rows are forgotten after
REMEMBERED_FOR, which leaves a wide margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Table, delete, select

from storage.db import insert_new, insert_new_returning
from storage.models import ProcessedUpdate

REMEMBERED_FOR = timedelta(days=7)
FORGET_BATCH = 5_000  # rows deleted per transaction: a short lock, even after a long time

_TABLE: Table = ProcessedUpdate.__table__  # type: ignore[attr-defined]


def record_applied(connection: Connection, key: str, now: datetime) -> bool:
    """Record the update `key` as applied; False if it already was (a redelivery)."""
    return insert_new(connection, _TABLE, {"key": key, "processed_at": now}, ["key"])


def record_all_applied(connection: Connection, keys: Sequence[str], now: datetime) -> set[str]:
    """`record_applied` of several updates in one statement: the keys not applied before."""
    if not keys:
        return set()
    statement = insert_new_returning(connection.dialect.name, _TABLE, ("key",))
    rows = connection.execute(statement, [{"key": key, "processed_at": now} for key in keys])
    return set(rows.scalars())


def forget_applied(engine: Engine, now: datetime) -> int:
    """Delete the rows of updates applied more than REMEMBERED_FOR before `now`, a batch per
    transaction; returns how many."""
    oldest_kept = now - REMEMBERED_FOR
    old = (
        select(_TABLE.c.key)
        .where(_TABLE.c.processed_at < oldest_kept)
        .limit(FORGET_BATCH)
        .scalar_subquery()
    )
    forgotten = 0
    while True:
        with engine.begin() as connection:
            deleted = connection.execute(delete(_TABLE).where(_TABLE.c.key.in_(old))).rowcount
        forgotten += deleted
        if deleted < FORGET_BATCH:
            return forgotten
