"""What platforms tell back about messages, and when a person last wrote from an address
outside a conversation (a template's button, a sticker: the Dispatcher records the others).

Status reports (sent, delivered, read, failed) arrive in any order and more than once: a row's
`delivery` only moves forward (sent < delivered < read), except to "failed", which is final.

A report may even come before the row records the platform's id of its message (the platform's
webhook is faster than our write of its answer). The channel then keeps it (`keep`), and it is
applied in the transaction that records the id (`took`, with the row marked sent); one that
never finds its row is forgotten after a day (`forget_reports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Table, bindparam, delete, or_, update
from sqlmodel import Session, col, select

from storage.models import DeliveryReport, OutboxMessage, Person, PersonAddress
from storage.outbox import ERROR_LIMIT

RANK = {None: 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
#: How long a report waits for its message's id: the platform's answer comes within seconds,
#: or the sender retries and the message gets another id.
REPORT_KEPT_FOR = timedelta(days=1)

_SEEN: Table = PersonAddress.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_PEOPLE: Table = Person.__table__  # type: ignore[attr-defined]
_REPORTS: Table = DeliveryReport.__table__  # type: ignore[attr-defined]
_TOUCH = (
    update(_SEEN)
    .where(_SEEN.c.channel == bindparam("c"), _SEEN.c.address == bindparam("a"))
    .where(or_(_SEEN.c.last_inbound_at.is_(None), _SEEN.c.last_inbound_at < bindparam("at")))
    .values(last_inbound_at=bindparam("at"))
)


def seen_inbound(runner: Connection | Session, channel: str, address: str, at: datetime) -> None:
    """`address` wrote at `at` (an earlier time, reported late, changes nothing)."""
    runner.execute(_TOUCH, {"c": channel, "a": address, "at": at})


@dataclass(frozen=True)
class Report:
    """What the platform says became of a message, in neutral terms: its status (sent,
    delivered, read, failed), and for a failure its error and what it means: send the row
    again another way, once (`resend_note`, noted on the row), or the person cannot be reached
    there (`unreachable`)."""

    status: str
    error: str = ""
    resend_note: str | None = None
    unreachable: bool = False


def took(session: Session, message_id: int, platform_id: str, now: datetime) -> None:
    """The platform took outbox row `message_id` under `platform_id`: recorded, and the reports
    that came before are applied (in the caller's transaction, which marks the row sent)."""
    session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == message_id)
        .values(platform_message_id=platform_id, delivery=None)
    )
    kept = session.exec(
        select(DeliveryReport)
        .where(DeliveryReport.platform_message_id == platform_id)
        .order_by(col(DeliveryReport.id))
    ).all()
    for report in kept:
        found = Report(report.status, report.error or "", report.resend_note, report.unreachable)
        apply_report(session, message_id, found, now)
    if kept:
        session.execute(delete(_REPORTS).where(_REPORTS.c.platform_message_id == platform_id))


def keep(session: Session, platform_id: str, report: Report, now: datetime) -> None:
    """A report on a message whose id is not recorded yet: kept for `took`."""
    session.add(
        DeliveryReport(
            platform_message_id=platform_id,
            status=report.status,
            error=report.error[:ERROR_LIMIT] or None,
            resend_note=report.resend_note,
            unreachable=report.unreachable,
            received_at=now,
        )
    )
    session.flush()


def forget_reports(engine: Engine, now: datetime) -> int:
    """Forget the kept reports that never found their message; returns how many."""
    old = delete(_REPORTS).where(_REPORTS.c.received_at < now - REPORT_KEPT_FOR)
    with engine.begin() as connection:
        return int(connection.execute(old).rowcount)


def find_by_platform_id(session: Session, platform_id: str) -> OutboxMessage | None:
    statement = select(OutboxMessage).where(OutboxMessage.platform_message_id == platform_id)
    return session.exec(statement).first()


def lock_row(session: Session, message_id: int) -> None:
    """Hold outbox row `message_id` until the transaction ends (PostgreSQL; SQLite has one
    writer anyway): a report and the recording of its message's id then come one after the
    other, so that the report is either applied at once or seen by `took`."""
    session.execute(select(_OUTBOX.c.id).where(_OUTBOX.c.id == message_id).with_for_update())


def apply_report(session: Session, message_id: int, report: Report, now: datetime) -> None:
    """What `report` means for outbox row `message_id`."""
    if report.status != "failed":
        lower = [status for status, rank in RANK.items() if rank < RANK.get(report.status, 0)]
        session.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id == message_id)
            .where(or_(_OUTBOX.c.delivery.is_(None), _OUTBOX.c.delivery.in_(lower)))
            .values(delivery=report.status)
        )
        return
    note = report.resend_note
    if note is not None:
        error = session.execute(
            select(_OUTBOX.c.error).where(_OUTBOX.c.id == message_id)
        ).scalar_one_or_none()
        if not (error or "").startswith(note):  # sent again another way only once
            send_again(session, message_id, now, f"{note}: {report.error}"[:ERROR_LIMIT])
            return
    reported_failed(session, message_id, report.error or "failed", unreachable=report.unreachable)


def reported_failed(
    session: Session, message_id: int, error: str, *, unreachable: bool = False
) -> None:
    """The platform took the row, then reported it failed: "failed", or "blocked" and the person
    unreachable when they cannot be reached there."""
    status = "blocked" if unreachable else "failed"
    session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == message_id)
        .values(status=status, delivery="failed", error=error[:ERROR_LIMIT])
    )
    if unreachable:
        person = select(_OUTBOX.c.person_id).where(_OUTBOX.c.id == message_id).scalar_subquery()
        session.execute(update(_PEOPLE).where(_PEOPLE.c.id == person).values(reachable=False))


def send_again(session: Session, message_id: int, now: datetime, note: str | None) -> None:
    """Put a row that was sent back in line (it is to go out again, another way). Reports on
    the message that went before no longer concern it: its id is forgotten."""
    session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == message_id)
        .values(
            status="pending",
            next_attempt_at=now,
            error=note,
            delivery=None,
            platform_message_id=None,
        )
    )
