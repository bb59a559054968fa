"""Digests: a period of a group in numbers, for its coordinators, and across groups for admins.

A daily form appears in the weekly and the monthly digests: its totals over the days of the
digest's period, and on how many of those days each association reported.

The figures are computed once (`build_digest`) and written in each reader's language
(`digest_text`); totals come from SQL aggregates over the reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from statistics import median
from typing import Any

from sqlalchemy import and_, bindparam, case, func
from sqlalchemy import select as core_select
from sqlalchemy.sql.expression import Executable
from sqlmodel import Session, col, select

from forms.display import header_label, period_label
from forms.periods import Period
from forms.schema import FieldSpec, FormSpec
from locales import Translator
from monitoring.audience import unreachable_in
from monitoring.completeness import (
    Completeness,
    DaysReported,
    completeness,
    days_reported,
    expected_organizations,
    local_midnight,
)
from monitoring.reminders import names_of
from storage.models import Group, Organization, Person, Report
from storage.schedule import Schedule

HISTORY = 8  # periods shown in the chart and used as an association's own history
MIN_HISTORY = 3  # periods an association needs before its values are judged
FAR = 3.0  # a value 3 times above or below the usual one is flagged


@dataclass(frozen=True)
class Outlier:
    organization: Organization
    field: FieldSpec
    value: float
    usual: float


@dataclass(frozen=True)
class FormDigest:
    form: FormSpec
    state: Completeness
    history: list[tuple[Period, dict[str, float]]]  # oldest first; the last is this period
    targets: dict[str, float]
    outliers: list[Outlier]
    days: DaysReported | None = None  # a daily form: the days each association reported

    @property
    def totals(self) -> dict[str, float]:
        return self.history[-1][1]

    @property
    def previous(self) -> dict[str, float] | None:
        return self.history[-2][1] if len(self.history) > 1 else None


@dataclass(frozen=True)
class Digest:
    group: Group
    kind: str
    period: Period
    today: date
    forms: list[FormDigest]
    unreachable: list[tuple[Person, Organization]]


def numeric_fields(form: FormSpec) -> list[FieldSpec]:
    return [f for f in form.fields if f.type in ("integer", "decimal")]


def in_digest(every: str, kind: str) -> bool:
    """Whether a form scheduled `every` day, week or month has a part in a digest of `kind`:
    a daily form is in both the weekly and the monthly digests."""
    return every in (kind, "day")


def build_digest(
    session: Session,
    group: Group,
    schedule: Schedule,
    forms: dict[str, FormSpec],
    kind: str,
    period: Period,
    today: date,
) -> Digest:
    """The digest of `period` (a week or a month) for `group`, as of the local date `today`."""
    parts = []
    expected: dict[tuple[str, ...], list[Organization]] = {}
    for form_id, form_schedule in schedule.forms.items():
        form = forms.get(form_id)
        if form is None or not in_digest(form_schedule.every, kind):
            continue
        kinds = tuple(form.org_kinds)
        if kinds not in expected:
            expected[kinds] = expected_organizations(session, group, form)
        targets = {k: float(v) for k, v in (group.targets.get(form.id) or {}).items()}
        if form.period == "day":
            days = days_reported(session, group, form, form_schedule, period, expected[kinds])
            history = _daily_history(session, group, form, period)
            # A target is for one period of the form: here, one day.
            targets = {k: v * days.length for k, v in targets.items()}
            outliers = _outliers(session, group, form, period)
            parts.append(FormDigest(form, days.state, history, targets, outliers, days))
            continue
        state = completeness(session, group, form, form_schedule, period, expected[kinds])
        history = _history(session, group, form, period)
        parts.append(
            FormDigest(form, state, history, targets, _outliers(session, group, form, period))
        )
    return Digest(group, kind, period, today, parts, unreachable_in(session, group))


def _periods(period: Period) -> list[Period]:
    periods = [period]
    for _ in range(HISTORY - 1):
        periods.insert(0, periods[0].previous())
    return periods


def _history(
    session: Session, group: Group, form: FormSpec, period: Period
) -> list[tuple[Period, dict[str, float]]]:
    periods = _periods(period)
    fields = numeric_fields(form)
    names = tuple(f.name for f in fields)
    if form.period != "none":
        rows = (
            session.connection()
            .execute(
                _by_period(form.id, names),
                {"group_id": group.id, "keys": [p.key for p in periods]},
            )
            .all()
        )
        by_key = {row[-1]: row[:-1] for row in rows}
    else:
        by_key = _dated_totals(session, group, form, periods, names)
    history = []
    for p in periods:
        row = by_key.get(p.key)
        totals = {"reports": float(row[0]) if row else 0.0}
        totals.update({f.name: float(row[i + 1]) if row else 0.0 for i, f in enumerate(fields)})
        history.append((p, totals))
    return history


def _daily_history(
    session: Session, group: Group, form: FormSpec, period: Period
) -> list[tuple[Period, dict[str, float]]]:
    """A daily form's totals over the days of each of the digest's periods."""
    periods = _periods(period)
    fields = numeric_fields(form)
    names = tuple(f.name for f in fields)
    rows = (
        session.connection()
        .execute(
            _by_day(form.id, names),
            {
                "group_id": group.id,
                "first": periods[0].start.isoformat(),
                "last": periods[-1].end.isoformat(),
            },
        )
        .all()
    )
    sums = {p.key: [0.0] * (len(names) + 1) for p in periods}
    for row in rows:
        day = date.fromisoformat(row[-1])
        holder = next(p for p in periods if p.start <= day <= p.end)
        for i, value in enumerate(row[:-1]):
            sums[holder.key][i] += float(value)
    history = []
    for p in periods:
        values = sums[p.key]
        totals = {"reports": values[0]}
        totals.update({name: values[i + 1] for i, name in enumerate(names)})
        history.append((p, totals))
    return history


# The statements are built once per form (building one costs more than running it), and run
# with the group and its periods as parameters. Without the caches (here and in
# monitoring.completeness) bench.digests' digests/bare SQL went from 1.99 to 2.90 on SQLite
# and from 1.51 to 2.05 on PostgreSQL (target <= 2; 6 December 2026, bench/README.md).


@lru_cache(maxsize=64)
def _by_period(form_id: str, fields: tuple[str, ...]) -> Executable:
    """Count and sums of `fields` of a group's reports, per period."""
    sums = [func.coalesce(func.sum(Report.answers[f].as_float()), 0.0) for f in fields]
    return (
        core_select(func.count(col(Report.id)), *sums, col(Report.period))
        .where(
            col(Report.group_id) == bindparam("group_id"),
            col(Report.form_id) == form_id,
            col(Report.period).in_(bindparam("keys", expanding=True)),
        )
        .group_by(col(Report.period))
    )


@lru_cache(maxsize=64)
def _by_day(form_id: str, fields: tuple[str, ...]) -> Executable:
    """Count and sums of `fields` of a group's daily reports, per day, over a range of days
    (a day's key is its ISO date, so the range is one of keys)."""
    sums = [func.coalesce(func.sum(Report.answers[f].as_float()), 0.0) for f in fields]
    return (
        core_select(func.count(col(Report.id)), *sums, col(Report.period))
        .where(
            col(Report.group_id) == bindparam("group_id"),
            col(Report.form_id) == form_id,
            col(Report.period).between(bindparam("first"), bindparam("last")),
        )
        .group_by(col(Report.period))
    )


def _dated_totals(
    session: Session, group: Group, form: FormSpec, periods: list[Period], fields: tuple[str, ...]
) -> dict[str, tuple[Any, ...]]:
    """Totals of a form without periods, by the period its date (or submission) falls in.

    A row counts in a period when it was submitted since the period began and is dated in it
    (or, for a form without a date field, was submitted before it ended).
    """
    dated = next((f.name for f in form.fields if f.type == "date"), None)
    params: dict[str, Any] = {"group_id": group.id}
    for i, p in enumerate(periods):
        params[f"since{i}"] = local_midnight(p.start, group.timezone)
        params[f"until{i}"] = local_midnight(p.end + timedelta(days=1), group.timezone)
        params[f"first{i}"], params[f"last{i}"] = p.start.isoformat(), p.end.isoformat()
    params["since"], params["until"] = params["since0"], params[f"until{len(periods) - 1}"]
    rows = (
        session.connection().execute(_by_date(form.id, fields, dated, len(periods)), params).all()
    )
    return {periods[row[0]].key: tuple(row[1:]) for row in rows}


@lru_cache(maxsize=64)
def _by_date(form_id: str, fields: tuple[str, ...], dated: str | None, periods: int) -> Executable:
    """One statement for all the periods: the rows submitted since the first began, each JSON
    value read once (MATERIALIZED: SQLite would read it again for each mention in the
    buckets), then summed by the period whose conditions they meet."""
    rows = select(
        Report.submitted_at,
        *(Report.answers[f].as_float().label(f"v{i}") for i, f in enumerate(fields)),
    )
    if dated:
        rows = rows.add_columns(Report.answers[dated].as_string().label("day"))
    else:
        rows = rows.where(Report.submitted_at < bindparam("until"))
    found = (
        rows.where(
            Report.group_id == bindparam("group_id"),
            Report.form_id == form_id,
            Report.submitted_at >= bindparam("since"),
        )
        .cte("found")
        .prefix_with("MATERIALIZED")
    )

    def within(i: int) -> Any:
        # The test that fails for most rows first: each row is tested against the periods
        # in turn until one holds it.
        since = found.c.submitted_at >= bindparam(f"since{i}")
        if dated:
            return and_(found.c.day.between(bindparam(f"first{i}"), bindparam(f"last{i}")), since)
        return and_(found.c.submitted_at < bindparam(f"until{i}"), since)

    bucket = case(*((within(i), i) for i in range(periods)), else_=None)
    bucketed = select(
        bucket.label("bucket"), *(found.c[f"v{i}"] for i in range(len(fields)))
    ).subquery()
    sums = [func.coalesce(func.sum(bucketed.c[f"v{i}"]), 0.0) for i in range(len(fields))]
    return (
        select(bucketed.c.bucket, func.count(), *sums)
        .where(bucketed.c.bucket.is_not(None))
        .group_by(bucketed.c.bucket)
    )


def _outliers(session: Session, group: Group, form: FormSpec, period: Period) -> list[Outlier]:
    """Values of this period far outside the same association's own earlier values (for a
    daily form, its totals over the days of each period)."""
    if form.period == "none":
        return []
    fields = numeric_fields(form)
    periods = _periods(period)
    query = select(Report.organization_id, Report.period, Report.answers).where(
        Report.group_id == group.id, Report.form_id == form.id
    )
    if form.period == "day":
        first, last = periods[0].start.isoformat(), periods[-1].end.isoformat()
        query = query.where(col(Report.period).between(first, last))
    else:
        query = query.where(col(Report.period).in_([p.key for p in periods]))
    by_org: dict[int, dict[str, dict[str, float]]] = {}
    for organization_id, key, answers in session.exec(query).all():
        if form.period == "day":
            day = date.fromisoformat(key or "")
            key = next(p for p in periods if p.start <= day <= p.end).key
        sums = by_org.setdefault(organization_id, {}).setdefault(key or "", {})
        for spec in fields:
            if answers.get(spec.name) is not None:
                sums[spec.name] = sums.get(spec.name, 0.0) + float(answers[spec.name])
    found = []
    for organization_id, totals in sorted(by_org.items()):
        current = totals.get(period.key)
        if current is None:
            continue
        earlier = [a for k, a in totals.items() if k != period.key]
        for spec in fields:
            value = current.get(spec.name)
            past = [a[spec.name] for a in earlier if a.get(spec.name) is not None]
            if value is None or len(past) < MIN_HISTORY:
                continue
            usual = median(past)
            if _far(value, usual):
                organization = session.get(Organization, organization_id)
                assert organization is not None
                found.append(Outlier(organization, spec, value, usual))
    return found


def _far(value: float, usual: float) -> bool:
    if usual <= 0:
        return value >= 10
    return value >= usual * FAR or value <= usual / FAR


# --- writing it down ----------------------------------------------------------------------


def digest_text(digest: Digest, tr: Translator) -> str:
    lang = tr.language
    group_name = digest.group.names.get(lang, digest.group.key)
    title = (
        tr.gettext("Weekly digest: {group}", group=group_name)
        if digest.kind == "week"
        else tr.gettext("Monthly digest: {group}", group=group_name)
    )
    lines = [title, period_label(digest.period, tr)]
    for part in digest.forms:
        lines.append("")
        lines += _form_lines(part, digest, tr)
    if digest.unreachable:
        lines.append("")
        lines.append(
            tr.gettext(
                "Unreachable (they blocked the bot or left Telegram): {names}",
                names=", ".join(
                    f"{p.display_name} ({o.names.get(lang, o.key)})" for p, o in digest.unreachable
                ),
            )
        )
    return "\n".join(lines)


def _form_lines(part: FormDigest, digest: Digest, tr: Translator) -> list[str]:
    lang = tr.language
    state = part.state
    lines = _daily_lines(part.days, part, tr) if part.days else _period_lines(part, digest, tr)
    fields = numeric_fields(part.form)
    if state.actual and fields:
        lines.append(tr.gettext("Totals, and change from the period before:"))
        for spec in fields:
            lines.append("• " + _total_line(spec, part, digest.group, tr))
    progress = [(spec, part.targets[spec.name]) for spec in fields if spec.name in part.targets]
    if progress:
        lines.append(tr.gettext("Progress against targets:"))
        for spec, target in progress:
            done = part.totals.get(spec.name, 0.0)
            lines.append(
                "• "
                + tr.gettext(
                    "{field}: {done} of {target} ({rate})",
                    field=_label(spec, lang),
                    done=amount(spec, done, digest.group, tr),
                    target=amount(spec, target, digest.group, tr),
                    rate=_percent(done / target if target else 0, tr),
                )
            )
    for outlier in part.outliers:
        lines.append(
            tr.gettext(
                "To check: {association}, {field}: {value}, usually about {usual}.",
                association=outlier.organization.names.get(lang, outlier.organization.key),
                field=_label(outlier.field, lang),
                value=amount(outlier.field, outlier.value, digest.group, tr),
                usual=amount(outlier.field, outlier.usual, digest.group, tr),
            )
        )
    return lines


def _period_lines(part: FormDigest, digest: Digest, tr: Translator) -> list[str]:
    """A weekly or monthly form: how many associations reported, on time, late."""
    lang = tr.language
    state = part.state
    lines = [
        tr.gettext(
            "{title}: {actual} of {expected} associations reported ({rate}), {on_time} on time "
            "({on_time_rate}).",
            title=part.form.title.get(lang),
            actual=state.actual,
            expected=len(state.expected),
            rate=_percent(state.rate, tr),
            on_time=len(state.on_time),
            on_time_rate=_percent(state.on_time_rate, tr),
        )
    ]
    if not state.actual:
        lines.append(tr.gettext("No reports yet this period."))
    late = state.late(digest.today)
    if late:
        lines.append(tr.gettext("Late: {names}.", names=names_of(late, lang)))
    elif state.missing:
        lines.append(tr.gettext("Not yet due: {names}.", names=names_of(state.missing, lang)))
    return lines


def _daily_lines(days: DaysReported, part: FormDigest, tr: Translator) -> list[str]:
    """A daily form: its reports over the period, and each association's days ("5 of 7 days")."""
    lang = tr.language
    reports = int(part.totals.get("reports", 0))
    lines = [
        tr.ngettext(
            "{title}, reported daily: {n} report from {actual} of {expected} associations.",
            "{title}, reported daily: {n} reports from {actual} of {expected} associations.",
            reports,
            title=part.form.title.get(lang),
            actual=days.state.actual,
            expected=len(days.state.expected),
        )
    ]
    if not reports:
        lines.append(tr.gettext("No reports yet this period."))
    if days.state.expected:
        lines.append(tr.gettext("Days reported:"))
    for organization in days.state.expected:
        lines.append(
            "• "
            + tr.ngettext(
                "{association}: {days} of {n} day",
                "{association}: {days} of {n} days",
                days.length,
                association=organization.names.get(lang, organization.key),
                days=days.of(organization),
            )
        )
    return lines


def _total_line(spec: FieldSpec, part: FormDigest, group: Group, tr: Translator) -> str:
    total = part.totals.get(spec.name, 0.0)
    previous = part.previous.get(spec.name) if part.previous else None
    if previous:
        change = (total - previous) / previous
        sign = "+" if change >= 0 else "−"
        return tr.gettext(
            "{field}: {total} ({change})",
            field=_label(spec, tr.language),
            total=amount(spec, total, group, tr),
            change=sign + _percent(abs(change), tr),
        )
    return tr.gettext(
        "{field}: {total}", field=_label(spec, tr.language), total=amount(spec, total, group, tr)
    )


def _label(spec: FieldSpec, language: str) -> str:
    return header_label(spec, language)


def _number(value: float) -> Decimal:
    return Decimal(str(round(value, 2))).normalize() + Decimal(0)


def amount(spec: FieldSpec, value: float, group: Group, tr: Translator) -> str:
    """A total as a reader sees it: with the group's currency for a money field."""
    if spec.money:
        return tr.money(_number(value), group.currency)
    return tr.number(_number(value))


def _percent(ratio: float, tr: Translator) -> str:
    return tr.percent(ratio)


def has_reports(part: FormDigest) -> bool:
    """Whether any period of the digest's history has a report of the form."""
    return any(values.get("reports") for _, values in part.history)


def money_totals(
    session: Session, group: Group, form: FormSpec, period: Period
) -> dict[str, float]:
    """The sums of the money fields of `form` over the group's reports of `period` (empty
    when the group has no report of that period)."""
    fields = [f for f in numeric_fields(form) if f.money]
    if not fields or form.period == "none":
        return {}
    names = tuple(f.name for f in fields)
    if form.period == "day":  # over the days of `period`
        params = {"group_id": group.id, "first": period.start.isoformat()}
        rows = (
            session.connection()
            .execute(_by_day(form.id, names), {**params, "last": period.end.isoformat()})
            .all()
        )
        sums = {name: sum(float(r[i + 1]) for r in rows) for i, name in enumerate(names)}
        return sums if rows else {}
    row = (
        session.connection()
        .execute(_by_period(form.id, names), {"group_id": group.id, "keys": [period.key]})
        .first()
    )
    return {name: float(row[i + 1]) for i, name in enumerate(names)} if row else {}
