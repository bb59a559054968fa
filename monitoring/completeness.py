"""Completeness with DHIS2's definitions: expected, actual and on-time reports of a period.

- expected: the active organizations of the group the form applies to;
- actual: those with a report for the period (for a form without periods, such as the
  check-in, a report whose visit date falls in the period);
- on time: first submitted by the end of the period's last day plus `on_time_days`;
- late: expected, missing, and past the due date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from forms.periods import Period, period_containing
from forms.schema import FormSpec
from storage.models import Group, Organization, Report
from storage.schedule import FormSchedule


@dataclass(frozen=True)
class Completeness:
    form: FormSpec
    period: Period
    due: date
    expected: list[Organization]
    reported: dict[int, datetime]  # organization id -> first submission (UTC)
    on_time: frozenset[int]

    @property
    def actual(self) -> int:
        return len(self.reported)

    @property
    def rate(self) -> float:
        return self.actual / len(self.expected) if self.expected else 1.0

    @property
    def on_time_rate(self) -> float:
        return len(self.on_time) / len(self.expected) if self.expected else 1.0

    @property
    def missing(self) -> list[Organization]:
        return [o for o in self.expected if o.id not in self.reported]

    def late(self, today: date) -> list[Organization]:
        """Expected, missing and past the due date, as of the local date `today`."""
        return self.missing if today > self.due else []


def due_date(period: Period, schedule: FormSchedule) -> date:
    return period.end + timedelta(days=schedule.due_days)


def period_of(group: Group, schedule: FormSchedule, day: date) -> Period:
    return period_containing(schedule.every, day, group.week_start)


def expected_organizations(session: Session, group: Group, form: FormSpec) -> list[Organization]:
    return list(session.exec(select(Organization).where(
        Organization.group_id == group.id, Organization.active,
        col(Organization.kind).in_(form.org_kinds)).order_by(Organization.key)).all())


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def completeness(session: Session, group: Group, form: FormSpec, schedule: FormSchedule,
                 period: Period) -> Completeness:
    expected = expected_organizations(session, group, form)
    first: dict[int, datetime] = {}
    for organization_id, submitted in _submissions(session, group, form, period):
        if organization_id not in first or submitted < first[organization_id]:
            first[organization_id] = submitted
    deadline = local_midnight(period.end + timedelta(days=schedule.on_time + 1), group.timezone)
    on_time = frozenset(o for o, submitted in first.items() if submitted < deadline)
    expected_ids = {o.id for o in expected}
    reported = {o: s for o, s in first.items() if o in expected_ids}
    return Completeness(form, period, due_date(period, schedule), expected, reported,
                        on_time & frozenset(reported))


def _submissions(session: Session, group: Group, form: FormSpec,
                 period: Period) -> list[tuple[int, datetime]]:
    query = select(Report.organization_id, Report.submitted_at, Report.answers).where(
        Report.group_id == group.id, Report.form_id == form.id)
    if form.period != "none":
        rows = session.exec(query.where(Report.period == period.key)).all()
        return [(o, s) for o, s, _ in rows]
    # A check-in belongs to the period of its visit date (it cannot be reported before it).
    since = local_midnight(period.start, group.timezone)
    rows = session.exec(query.where(Report.submitted_at >= since)).all()
    dated = next((f.name for f in form.fields if f.type == "date"), None)
    result = []
    for organization_id, submitted, answers in rows:
        day = answers.get(dated) if dated else None
        when = date.fromisoformat(day) if day else submitted.astimezone(
            ZoneInfo(group.timezone)).date()
        if period.start <= when <= period.end:
            result.append((organization_id, submitted))
    return result
