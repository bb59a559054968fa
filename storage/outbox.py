"""The outbox: messages that are not direct replies wait here until a sender delivers them.

A row moves pending -> sending (claimed) -> sent | blocked | failed, or back to pending for a
retry. Rows are claimed in id order, one at a time per person: a row waits while an earlier
row to the same person is still pending or sending, so each person gets their messages in the
order they were enqueued, also with several senders (PostgreSQL, SKIP LOCKED).

One row is one platform message: a long text is split into several rows at enqueue time
(`TEXT_LIMIT`), and a photo whose text does not fit a caption (`CAPTION_LIMIT`) goes alone,
followed by its text. The extra rows have keys `<dedupe_key>#2`, `#3`, ...

Crash: a row claimed by a sender that died stays "sending", with the sender's holder id in
`claimed_by`; `release_dead_claims` puts it back to pending as soon as the holder's heartbeat
is silent (storage.holders), and `recover` puts back every claim older than a given age (at
start on SQLite, where one process sends). Either way the row counts in `resent` and is sent
again: it may already have reached the person if it was in flight at the instant of the crash
(at most the sender's concurrency per crash). A retry after a transient failure counts in
`resent` too: the platform may have taken the message and its answer been lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from storage.db import insert_new
from storage.models import OUTBOX_STATUSES, OutboxMessage, Person, SenderHeartbeat

TEXT_LIMIT = 4000  # Telegram takes 4096 characters a message; WhatsApp 4096
CAPTION_LIMIT = 1024  # Telegram and WhatsApp take 1024 characters a caption
ERROR_LIMIT = 200
WAITING = ("pending", "sending")
FILE_ID = "file-id:"  # photo_path prefix of a photo the platform keeps: its file id

_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


def enqueue(
    session: Session,
    *,
    person_id: int,
    kind: str,
    dedupe_key: str,
    text: str,
    options: Iterable[Sequence[str]] = (),
    photo_path: str | None = None,
    now: datetime,
    broadcast_id: int | None = None,
) -> bool:
    """Add a message for `person_id`; False (and nothing added) if `dedupe_key` exists.

    Race-safe on SQLite and PostgreSQL: INSERT ... ON CONFLICT DO NOTHING. (A SAVEPOINT
    would not do on SQLite: pysqlite opens no transaction before the first write, so the
    savepoint becomes the transaction and RELEASE commits it, outside the caller's.)
    """
    if not text and not photo_path:
        raise ValueError("an outbox message needs a text or a photo")
    pairs = [[str(label), str(value)] for label, value in options]
    for number, (part, part_options, part_photo) in enumerate(_rows(text, pairs, photo_path), 1):
        key = dedupe_key if number == 1 else f"{dedupe_key}#{number}"
        values = {
            "person_id": person_id,
            "kind": kind,
            "dedupe_key": key,
            "text": part,
            "options": part_options,
            "photo_path": part_photo,
            "status": "pending",
            "attempts": 0,
            "resent": 0,
            "next_attempt_at": now,
            "created_at": now,
            "claimed_at": None,
            "sent_at": None,
            "error": None,
            "broadcast_id": broadcast_id,
        }
        if not insert_new(session, _TABLE, values, ["dedupe_key"]):
            if number == 1:
                return False
            raise RuntimeError(f"outbox key {key!r} is taken but {dedupe_key!r} was free")
    return True


def _rows(
    text: str, options: list[list[str]], photo_path: str | None
) -> list[tuple[str, list[list[str]], str | None]]:
    """(text, options, photo) of each platform message; options go on the last one."""
    if photo_path and len(text) <= CAPTION_LIMIT:
        return [(text, options, photo_path)]
    parts = split_text(text) if text else []
    rows: list[tuple[str, list[list[str]], str | None]] = []
    if photo_path:
        rows.append(("", [] if parts else options, photo_path))
    rows += [(part, options if n == len(parts) else [], None) for n, part in enumerate(parts, 1)]
    return rows


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in parts of at most `limit` characters, cut at line ends where possible."""
    if len(text) <= limit:
        return [text]
    parts, current = [], ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return parts


def claim(
    session: Session, now: datetime, limit: int, holder: str | None = None
) -> list[OutboxMessage]:
    """Mark up to `limit` due rows "sending" by `holder` and return them, oldest first.

    A row is due when pending, its next_attempt_at has come, and no earlier row to the same
    person is pending or sending. One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
    LOCKED) ... RETURNING: several senders on PostgreSQL never claim the same row; SQLite
    ignores FOR UPDATE and runs the statement under its single write lock.
    """
    candidate = aliased(OutboxMessage, name="candidate")
    due = (
        select(candidate.id)
        .where(_ready(candidate), candidate.next_attempt_at <= now)
        .order_by(candidate.id)  # type: ignore[arg-type]
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due))  # type: ignore[union-attr]
        .values(status="sending", claimed_at=now, claimed_by=holder)
        .returning(OutboxMessage)
    )
    rows = session.scalars(statement, execution_options={"synchronize_session": False}).all()
    return sorted(rows, key=lambda row: row.id or 0)


def _ready(candidate: type[OutboxMessage]) -> Any:
    """`candidate` is pending and no earlier row to the same person is pending or sending."""
    earlier = aliased(OutboxMessage, name="earlier")
    waits_for_earlier = (
        select(earlier.id)
        .where(
            earlier.person_id == candidate.person_id,
            earlier.id < candidate.id,
            earlier.status.in_(WAITING),
        )  # type: ignore[attr-defined]
        .exists()
    )
    return and_(candidate.status == "pending", ~waits_for_earlier)


def _update(*, only_if_sending: bool = True, count_attempt: bool = True, **values: Any) -> Any:
    """UPDATE of the row :message_id, built once (statements are cached by identity)."""
    statement = update(_TABLE).where(_TABLE.c.id == bindparam("message_id"))
    if only_if_sending:
        statement = statement.where(_TABLE.c.status == "sending")
    if count_attempt:
        values["attempts"] = _TABLE.c.attempts + 1
    return statement.values(**values)


_SENT = _update(only_if_sending=False, status="sent", sent_at=bindparam("now_"), error=None)
_RETRY = _update(status="pending", next_attempt_at=bindparam("at_"), error=bindparam("error_"))
_RETRY_DOUBTFUL = _update(
    status="pending",
    next_attempt_at=bindparam("at_"),
    error=bindparam("error_"),
    resent=_TABLE.c.resent + 1,
)
_RELEASE = _update(count_attempt=False, status="pending", next_attempt_at=bindparam("at_"))
_BLOCKED = _update(status="blocked", error=bindparam("error_"))
_FAILED = _update(status="failed", error=bindparam("error_"))
_UNREACHABLE = (
    update(Person.__table__)  # type: ignore[attr-defined]
    .where(Person.__table__.c.id == bindparam("person_id_"))  # type: ignore
    .values(reachable=False)
)


def mark_sent(session: Session, message_id: int, now: datetime) -> None:
    """The platform accepted the message. Recorded even if the claim was recovered meanwhile."""
    session.execute(_SENT, {"message_id": message_id, "now_": now})


def mark_retry(
    session: Session, message_id: int, at: datetime, error: str, doubtful: bool = False
) -> None:
    """A transient failure: try again at `at`. `doubtful`: the platform may have taken the
    message (its answer was lost), so the retry may be a repeat and counts in `resent`."""
    statement = _RETRY_DOUBTFUL if doubtful else _RETRY
    session.execute(statement, {"message_id": message_id, "at_": at, "error_": error[:ERROR_LIMIT]})


def release(session: Session, message_id: int, at: datetime) -> None:
    """Back to pending without counting an attempt (the platform asked us to wait)."""
    session.execute(_RELEASE, {"message_id": message_id, "at_": at})


def mark_blocked(session: Session, message_id: int, person_id: int, error: str) -> None:
    """The person cannot be reached (blocked the bot, left the platform): so is the person."""
    session.execute(_BLOCKED, {"message_id": message_id, "error_": error[:ERROR_LIMIT]})
    session.execute(_UNREACHABLE, {"person_id_": person_id})


def mark_failed(session: Session, message_id: int, error: str) -> None:
    """Given up: refused by the platform, or out of attempts."""
    session.execute(_FAILED, {"message_id": message_id, "error_": error[:ERROR_LIMIT]})


def recover(session: Session, now: datetime, older_than: timedelta) -> int:
    """Put rows claimed before `now - older_than` and never finished back to pending.

    Their sender died. Each is counted in `resent`, and will be sent again.
    """
    statement = (
        update(OutboxMessage)
        .where(
            OutboxMessage.status == "sending",  # type: ignore[arg-type]
            OutboxMessage.claimed_at <= now - older_than,
        )  # type: ignore[operator]
        .values(status="pending", claimed_at=None, claimed_by=None, resent=OutboxMessage.resent + 1)
    )
    return session.execute(statement).rowcount  # type: ignore[attr-defined]


def release_dead_claims(
    session: Session, alive_since: datetime, now: datetime, unowned_older_than: timedelta
) -> int:
    """Put back the claims of holders whose last heartbeat came before `alive_since` (or who
    have none), and claims without a holder made before `now - unowned_older_than`; returns
    how many. (Heartbeats count wall-clock time; claims the sender's clock.)

    Each counts in `resent`: it is sent again and may already have reached its person.
    """
    alive = select(SenderHeartbeat.holder).where(SenderHeartbeat.seen_at >= alive_since)
    claimed_by = OutboxMessage.claimed_by
    dead = or_(
        and_(claimed_by.is_not(None), claimed_by.not_in(alive)),  # type: ignore[union-attr]
        and_(claimed_by.is_(None), OutboxMessage.claimed_at <= now - unowned_older_than),  # type: ignore[union-attr,operator]
    )
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", dead)  # type: ignore[arg-type]
        .values(status="pending", claimed_at=None, claimed_by=None, resent=OutboxMessage.resent + 1)
    )
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def depth(session: Session) -> int:
    """How many messages wait to be sent."""
    statement = select(func.count()).where(OutboxMessage.status == "pending")
    return int(session.exec(statement).one())


def next_due(session: Session) -> datetime | None:
    """When the earliest message that `claim` could take is due; None if there is none."""
    candidate = aliased(OutboxMessage, name="candidate")
    statement = select(func.min(candidate.next_attempt_at)).where(_ready(candidate))
    return session.exec(statement).one()


def counts_by_status(
    session: Session, kind: str | None = None, broadcast_id: int | None = None
) -> dict[str, int]:
    """Rows per status (every status present, 0 if none), optionally of one kind or broadcast."""
    statement = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    if broadcast_id is not None:
        statement = statement.where(OutboxMessage.broadcast_id == broadcast_id)
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    counts.update({status: int(count) for status, count in session.exec(statement).all()})
    return counts


def resent_total(session: Session) -> int:
    """How many times rows were put back after a sender died (each may be a repeat)."""
    return int(session.exec(select(func.coalesce(func.sum(OutboxMessage.resent), 0))).one())
