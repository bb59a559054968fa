"""Confirmed reports and their audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from storage.models import Report, ReportChange

_PERIOD_REPORT = select(Report).where(
    Report.form_id == bindparam("form_id"), Report.organization_id == bindparam("organization_id"),
    Report.period == bindparam("period"))  # built once: asked on every period answer


def period_report(session: Session, form_id: str, organization_id: int,
                  period: str) -> Report | None:
    return session.exec(_PERIOD_REPORT, params={  # type: ignore[call-overload]
        "form_id": form_id, "organization_id": organization_id, "period": period}).first()


def add_report(session: Session, *, form_id: str, prefix: str, group_id: int,
               organization_id: int, person_id: int, period: str | None,
               answers: dict[str, Any], now: datetime) -> Report:
    """Store a new report and give it its reference (the form's prefix and its number)."""
    report = Report(form_id=form_id, group_id=group_id, organization_id=organization_id,
                    person_id=person_id, period=period, answers=answers, submitted_at=now,
                    updated_at=now)
    session.add(report)
    session.flush()
    report.ref = f"{prefix}-{report.id}"
    session.add(report)
    return report


def change_report(session: Session, report: Report, answers: dict[str, Any], person_id: int,
                  now: datetime, reason: str) -> int:
    """Give `report` new answers, keeping every old value in the audit trail. Returns changes."""
    assert report.id is not None
    changed = 0
    for field in sorted(set(report.answers) | set(answers)):
        old, new = report.answers.get(field), answers.get(field)
        if old != new:
            session.add(ReportChange(report_id=report.id, person_id=person_id, changed_at=now,
                                     reason=reason, field=field, old_value=old, new_value=new))
            changed += 1
    report.answers = dict(answers)
    report.person_id = person_id
    report.updated_at = now
    session.add(report)
    return changed


def recent_reports(session: Session, person_id: int, limit: int = 10) -> Sequence[Report]:
    return session.exec(select(Report).where(Report.person_id == person_id)
                        .order_by(col(Report.updated_at).desc()).limit(limit)).all()


def report_changes(session: Session, report_id: int) -> Sequence[ReportChange]:
    return session.exec(select(ReportChange).where(ReportChange.report_id == report_id)
                        .order_by(col(ReportChange.id))).all()
