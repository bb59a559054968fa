"""Who holds outbox claims, and whether they are alive.

Every sending process has a holder id; its claims carry it (`outbox.claimed_by`) and it writes
a heartbeat (`sender_heartbeat.seen_at`) every `BEAT_SECONDS`. A holder silent for longer than
`SILENT_AFTER` is taken for dead: `storage.outbox.release_dead_claims` puts its claims back, so
a killed worker's messages go out within seconds instead of after OUTBOX_CLAIM_TIMEOUT.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session

from storage.models import SenderHeartbeat

BEAT_SECONDS = 2.0
SILENT_AFTER = timedelta(seconds=10)  # five missed beats: a loaded machine is not a dead one


def new_holder() -> str:
    """A holder id that names the process (for the operator) and is never reused."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def beat(session: Session, holder: str, now: datetime) -> None:
    """`holder` is alive at `now`."""
    row = session.get(SenderHeartbeat, holder)
    if row is None:
        session.add(SenderHeartbeat(holder=holder, seen_at=now))
    else:
        row.seen_at = now
        session.add(row)


def forget(session: Session, holder: str) -> None:
    """`holder` stopped cleanly (its claims were finished or released)."""
    session.execute(delete(SenderHeartbeat).where(SenderHeartbeat.holder == holder))  # type: ignore[arg-type]


def forget_silent(session: Session, before: datetime) -> int:
    """Drop the heartbeats of holders silent since `before` (their claims went back)."""
    statement = delete(SenderHeartbeat).where(SenderHeartbeat.seen_at < before)  # type: ignore[arg-type]
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
