"""Confirmed reports and their audit trail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.models import Report, ReportChange


@dataclass(frozen=True, slots=True)
class ReportRef:
    """A stored report's id and reference: what filling a form needs to know of one."""

    id: int
    ref: str | None


# Built once, in Core: filling a form asks for the period's report on every period answer and
# at the confirmation, and stores a report at the end; through the ORM (a session, objects
# loaded and flushed) that cost several times what the database does.
_REPORT: Table = Report.__table__  # type: ignore[attr-defined]
_PERIOD_REPORT = sa_select(_REPORT.c.id, _REPORT.c.ref).where(
    _REPORT.c.form_id == bindparam("form_id"),
    _REPORT.c.organization_id == bindparam("organization_id"),
    _REPORT.c.period == bindparam("period"),
)
_INSERT = insert(_REPORT).returning(_REPORT.c.id)
_SET_REF = (
    update(_REPORT).where(_REPORT.c.id == bindparam("report_id")).values(ref=bindparam("new_ref"))
)
_ANSWERS = sa_select(_REPORT.c.answers, _REPORT.c.ref).where(_REPORT.c.id == bindparam("report_id"))
_REPLACE = (
    update(_REPORT)
    .where(_REPORT.c.id == bindparam("report_id"))
    .values(
        answers=bindparam("new_answers"),
        person_id=bindparam("new_person_id"),
        updated_at=bindparam("now"),
    )
)
_INSERT_CHANGE = insert(ReportChange.__table__)  # type: ignore[attr-defined]


def period_report(
    runner: Session | Connection, form_id: str, organization_id: int, period: str
) -> ReportRef | None:
    row = runner.execute(
        _PERIOD_REPORT,
        {"form_id": form_id, "organization_id": organization_id, "period": period},
    ).first()
    return ReportRef(*row) if row else None


def add_report(
    runner: Session | Connection,
    *,
    form_id: str,
    prefix: str,
    group_id: int,
    organization_id: int,
    person_id: int,
    period: str | None,
    answers: dict[str, Any],
    now: datetime,
    channel: str | None = None,
) -> ReportRef:
    """Store a new report and give it its reference (the form's prefix and its number);
    `channel` is the one it was sent from."""
    report_id = runner.execute(
        _INSERT,
        {
            "form_id": form_id,
            "group_id": group_id,
            "organization_id": organization_id,
            "person_id": person_id,
            "period": period,
            "answers": answers,
            "submitted_at": now,
            "updated_at": now,
            "channel": channel,
        },
    ).scalar_one()
    ref = f"{prefix}-{report_id}"
    runner.execute(_SET_REF, {"report_id": report_id, "new_ref": ref})
    return ReportRef(report_id, ref)


def replace_answers(
    runner: Session | Connection,
    report_id: int,
    answers: dict[str, Any],
    person_id: int,
    now: datetime,
    reason: str,
    *,
    owner: int | None = None,
) -> ReportRef | None:
    """Give report `report_id` new answers, keeping every old value in the audit trail as
    changed by `person_id`, who then holds the report, unless an `owner` is given (a correction
    leaves the report its owner's). None if there is no such report. A session's copy of the
    report is out of date afterwards (expire it)."""
    row = runner.execute(_ANSWERS, {"report_id": report_id}).first()
    if row is None:
        return None
    old_answers, ref = row
    changes = [
        {
            "report_id": report_id,
            "person_id": person_id,
            "changed_at": now,
            "reason": reason,
            "field": field,
            "old_value": old,
            "new_value": new,
        }
        for field, old, new in _changes(old_answers, answers)
    ]
    if changes:
        runner.execute(_INSERT_CHANGE, changes)
    runner.execute(
        _REPLACE,
        {
            "report_id": report_id,
            "new_answers": dict(answers),
            "new_person_id": person_id if owner is None else owner,
            "now": now,
        },
    )
    return ReportRef(report_id, ref)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """Each answer that differs: its field, old and new value, in the order of the fields."""
    for field in sorted(set(old) | set(new)):
        if old.get(field) != new.get(field):
            yield field, old.get(field), new.get(field)


def recent_reports(session: Session, person_id: int, limit: int = 10) -> Sequence[Report]:
    return session.exec(
        select(Report)
        .where(Report.person_id == person_id)
        .order_by(col(Report.updated_at).desc())
        .limit(limit)
    ).all()


def report_changes(session: Session, report_id: int) -> Sequence[ReportChange]:
    return session.exec(
        select(ReportChange)
        .where(ReportChange.report_id == report_id)
        .order_by(col(ReportChange.id))
    ).all()
