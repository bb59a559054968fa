"""What platforms tell back about messages, and when a person last wrote from an address
outside a conversation (a template's button, a sticker: the Dispatcher records the others).

Status reports (sent, delivered, read, failed) arrive in any order and more than once: a row's
`delivery` only moves forward (sent < delivered < read), except to "failed", which is final.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Table, bindparam, or_, update
from sqlmodel import Session, select

from storage.models import OutboxMessage, Person, PersonAddress
from storage.outbox import ERROR_LIMIT

RANK = {None: 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}

_SEEN: Table = PersonAddress.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_PEOPLE: Table = Person.__table__  # type: ignore[attr-defined]
_TOUCH = (
    update(_SEEN)
    .where(_SEEN.c.channel == bindparam("c"), _SEEN.c.address == bindparam("a"))
    .where(or_(_SEEN.c.last_inbound_at.is_(None), _SEEN.c.last_inbound_at < bindparam("at")))
    .values(last_inbound_at=bindparam("at"))
)


def seen_inbound(runner: Connection | Session, channel: str, address: str, at: datetime) -> None:
    """`address` wrote at `at` (an earlier time, reported late, changes nothing)."""
    runner.execute(_TOUCH, {"c": channel, "a": address, "at": at})


def find_by_platform_id(session: Session, platform_id: str) -> OutboxMessage | None:
    statement = select(OutboxMessage).where(OutboxMessage.platform_message_id == platform_id)
    return session.exec(statement).first()


def advance_delivery(session: Session, message: OutboxMessage, status: str) -> bool:
    """Move the row's delivery status forward to `status`; False if it is not a step forward."""
    if RANK.get(status, 0) <= RANK.get(message.delivery, 0):
        return False
    message.delivery = status
    session.add(message)
    return True


def reported_failed(
    session: Session, message: OutboxMessage, error: str, *, unreachable: bool = False
) -> None:
    """The platform took the row, then reported it failed: "failed", or "blocked" and the person
    unreachable when they cannot be reached there."""
    assert message.id is not None
    status = "blocked" if unreachable else "failed"
    session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == message.id)
        .values(status=status, delivery="failed", error=error[:ERROR_LIMIT])
    )
    if unreachable:
        session.execute(
            update(_PEOPLE).where(_PEOPLE.c.id == message.person_id).values(reachable=False)
        )


def send_again(session: Session, message_id: int, now: datetime, note: str | None) -> None:
    """Put a row that was sent back in line (it is to go out again, another way)."""
    session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == message_id)
        .values(status="pending", next_attempt_at=now, error=note, delivery=None)
    )
