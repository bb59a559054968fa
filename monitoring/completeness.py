"""Completeness with DHIS2's definitions: expected, actual and on-time reports of a period.

- expected: the active organizations of the group the form applies to;
- actual: those with a report for the period (for a form without periods, such as the
  check-in, a report whose visit date falls in the period);
- on time: first submitted by the end of the period's last day plus `on_time_days`;
- late: expected, missing, and past the due date.

A daily form read over a longer period (a week's or a month's digest) counts, per
association, on how many of the period's days it reported (`days_reported`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, func
from sqlalchemy.sql.expression import Executable
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


@dataclass(frozen=True)
class DaysReported:
    """A daily form over a longer period: on how many of the period's days each expected
    association reported. `state` counts an association as reporting when it reported on at
    least one day, on time when each of its days was sent on time."""

    state: Completeness
    days: dict[int, int]  # organization id -> days of the period with a report

    @property
    def length(self) -> int:
        return (self.state.period.end - self.state.period.start).days + 1

    def of(self, organization: Organization) -> int:
        assert organization.id is not None
        return self.days.get(organization.id, 0)


def due_date(period: Period, schedule: FormSchedule) -> date:
    return period.end + timedelta(days=schedule.due_days)


def period_of(group: Group, schedule: FormSchedule, day: date) -> Period:
    return period_containing(schedule.every, day, group.week_start)


def expected_organizations(session: Session, group: Group, form: FormSpec) -> list[Organization]:
    return list(
        session.exec(
            select(Organization)
            .where(
                Organization.group_id == group.id,
                Organization.active,
                col(Organization.kind).in_(form.org_kinds),
            )
            .order_by(Organization.key)
        ).all()
    )


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


def completeness(
    session: Session,
    group: Group,
    form: FormSpec,
    schedule: FormSchedule,
    period: Period,
    expected: list[Organization] | None = None,
) -> Completeness:
    """`expected`: the form's expected organizations, when the caller has them already."""
    if expected is None:
        expected = expected_organizations(session, group, form)
    first = _first_submissions(session, group, form, period)
    deadline = local_midnight(period.end + timedelta(days=schedule.on_time + 1), group.timezone)
    on_time = frozenset(o for o, submitted in first.items() if submitted < deadline)
    expected_ids = {o.id for o in expected}
    reported = {o: s for o, s in first.items() if o in expected_ids}
    return Completeness(
        form, period, due_date(period, schedule), expected, reported, on_time & frozenset(reported)
    )


def days_reported(
    session: Session,
    group: Group,
    form: FormSpec,
    schedule: FormSchedule,
    period: Period,
    expected: list[Organization] | None = None,
) -> DaysReported:
    """A daily form over `period` (a week or a month): the days each association reported."""
    if expected is None:
        expected = expected_organizations(session, group, form)
    expected_ids = {o.id for o in expected}
    rows = (
        session.connection()
        .execute(
            _of_days(form.id),
            {
                "group_id": group.id,
                "first": period.start.isoformat(),
                "last": period.end.isoformat(),
            },
        )
        .all()
    )
    first: dict[int, datetime] = {}
    days: dict[int, int] = {}
    late: set[int] = set()
    for organization_id, key, submitted in rows:
        if organization_id not in expected_ids:
            continue
        days[organization_id] = days.get(organization_id, 0) + 1
        if organization_id not in first or submitted < first[organization_id]:
            first[organization_id] = submitted
        day = date.fromisoformat(key)
        if submitted >= local_midnight(day + timedelta(days=schedule.on_time + 1), group.timezone):
            late.add(organization_id)
    state = Completeness(
        form,
        period,
        due_date(period, schedule),
        expected,
        first,
        frozenset(first) - frozenset(late),
    )
    return DaysReported(state, days)


def _first_submissions(
    session: Session, group: Group, form: FormSpec, period: Period
) -> dict[int, datetime]:
    """Each organization's first submission of a report for `period` (UTC)."""
    first: dict[int, datetime] = {}
    if form.period != "none":
        rows = (
            session.connection()
            .execute(_of_period(form.id), {"group_id": group.id, "period": period.key})
            .all()
        )
        for organization_id, submitted in rows:
            if organization_id not in first or submitted < first[organization_id]:
                first[organization_id] = submitted
        return first
    # A check-in belongs to the period of its visit date (it cannot be reported before it);
    # without a date, to the local day it was sent. So the first of each organization and
    # visit date is enough, and without a date the first since the period began.
    dated = next((f.name for f in form.fields if f.type == "date"), None)
    zone = ZoneInfo(group.timezone)
    rows = (
        session.connection()
        .execute(
            _since(form.id, dated),
            {"group_id": group.id, "since": local_midnight(period.start, group.timezone)},
        )
        .all()
    )
    for organization_id, submitted, *visited in rows:
        when = (
            date.fromisoformat(visited[0])
            if visited and visited[0]
            else submitted.astimezone(zone).date()
        )
        if period.start <= when <= period.end and (
            organization_id not in first or submitted < first[organization_id]
        ):
            first[organization_id] = submitted
    return first


# Statements built once per form, run with the group and period as parameters (the cache
# pays: see monitoring.digest and bench/README.md).


@lru_cache(maxsize=64)
def _of_period(form_id: str) -> Executable:
    # No GROUP BY here: SQLite (without ANALYZE) would then walk the unique index of all
    # the form's reports, for its organization order.
    return select(Report.organization_id, Report.submitted_at).where(
        Report.group_id == bindparam("group_id"),
        Report.form_id == form_id,
        Report.period == bindparam("period"),
    )


@lru_cache(maxsize=64)
def _of_days(form_id: str) -> Executable:
    # A day's key is its ISO date, so the days of a period are a range of keys.
    return select(Report.organization_id, Report.period, Report.submitted_at).where(
        Report.group_id == bindparam("group_id"),
        Report.form_id == form_id,
        col(Report.period).between(bindparam("first"), bindparam("last")),
    )


@lru_cache(maxsize=64)
def _since(form_id: str, dated: str | None) -> Executable:
    query: Any = (
        select(Report.organization_id, func.min(Report.submitted_at))
        .where(
            Report.group_id == bindparam("group_id"),
            Report.form_id == form_id,
            Report.submitted_at >= bindparam("since"),
        )
        .group_by(col(Report.organization_id))
    )
    if dated:
        day = Report.answers[dated].as_string().label("day")
        query = query.add_columns(day).group_by(day)
    return query
