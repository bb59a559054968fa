"""The reports of one form as a table: fixed columns, then every field of the form in order.

The channel column is the channel a report was sent from (Telegram, WhatsApp); for a report
stored before that was kept, the channels its sender is reached on.

Values keep their type (int, float, date, datetime) so that each writer can format them its
own way; None is an empty cell. Times are converted to the time zone of the report's group,
since that is the day and hour the field worker lived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from forms.display import period_label, short_label
from forms.periods import Period, period_from_key
from forms.schema import FieldSpec, FormSpec
from locales import FSI, PDI, Translator
from locales.channel_names import CHANNEL_NAMES
from storage.models import Group, Organization, Person, PersonAddress, Report

KINDS = ("text", "integer", "decimal", "date", "datetime")


@dataclass(frozen=True)
class Column:
    key: str  # fixed columns: "reference", "group", ...; fields: "answers.<field name>"
    header: str
    kind: str  # one of KINDS


@dataclass(frozen=True)
class Table:
    form_id: str
    title: str
    columns: list[Column]
    rows: list[list[object]]


def report_table(
    session: Session,
    form: FormSpec,
    tr: Translator,
    *,
    group_key: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Table:
    """One row per report of `form`, oldest first (by submitted time, then id).

    `date_from` and `date_to` are inclusive dates, read in each report's own group zone and
    applied to the submitted time; `group_key` keeps one group's reports.
    """
    has_period = form.period != "none"
    has_money = any(spec.money for spec in form.fields)
    columns = _fixed_columns(tr, has_period, has_money) + [
        _field_column(spec, tr) for spec in form.fields
    ]
    statement = (
        select(Report, Group, Organization, Person)
        .join(Group, col(Group.id) == col(Report.group_id))
        .join(Organization, col(Organization.id) == col(Report.organization_id))
        .join(Person, col(Person.id) == col(Report.person_id))
        .where(Report.form_id == form.id)
        .order_by(col(Report.submitted_at), col(Report.id))
    )
    if group_key is not None:
        statement = statement.where(Group.key == group_key)
    # A day in any zone lies within a day either side of the same UTC day: narrow in SQL,
    # decide exactly below with each group's zone.
    if date_from is not None:
        since = datetime.combine(date_from - timedelta(days=1), time.min, UTC)
        statement = statement.where(col(Report.submitted_at) >= since)
    if date_to is not None:
        until = datetime.combine(date_to + timedelta(days=2), time.min, UTC)
        statement = statement.where(col(Report.submitted_at) < until)
    found = session.exec(statement).all()
    reached = _channels_of(session, {person.id for _, _, _, person in found if person.id})
    rows: list[list[object]] = []
    for report, group, organization, person in found:
        zone = ZoneInfo(group.timezone)  # ZoneInfo caches its instances
        submitted = report.submitted_at.astimezone(zone)
        if date_from is not None and submitted.date() < date_from:
            continue
        if date_to is not None and submitted.date() > date_to:
            continue
        period = _period(form, report, group)
        row: list[object] = [
            report.ref,
            _name(group.names, tr.language, group.key),
            *([group.currency] if has_money else []),
            _name(organization.names, tr.language, organization.key),
            _person(person),
            _channel(report, reached.get(person.id or 0, []), tr),
        ]
        if has_period:
            row += [report.period, period.start if period else None]
        row += [submitted, report.updated_at.astimezone(zone)]
        row += [cell_value(spec, report.answers.get(spec.name), tr, period) for spec in form.fields]
        rows.append(row)
    return Table(form_id=form.id, title=form.title.get(tr.language), columns=columns, rows=rows)


def _fixed_columns(tr: Translator, has_period: bool, has_money: bool) -> list[Column]:
    """The columns every row has; "currency" (the group's, an ISO code such as BHD) when the
    form has money fields, so that amounts of several groups are never read as one."""
    columns = [
        Column("reference", tr.gettext("Reference"), "text"),
        Column("group", tr.gettext("Group"), "text"),
        *([Column("currency", tr.gettext("Currency"), "text")] if has_money else []),
        Column("association", tr.gettext("Association"), "text"),
        Column("person", tr.gettext("Person"), "text"),
        Column("channel", tr.gettext("Channel"), "text"),
    ]
    if has_period:
        columns += [
            Column("period", tr.gettext("Period"), "text"),
            Column("period_start", tr.gettext("Period start"), "date"),
        ]
    return columns + [
        Column("submitted_at", tr.gettext("Submitted at"), "datetime"),
        Column("updated_at", tr.gettext("Updated at"), "datetime"),
    ]


FIELD_KINDS = {"integer": "integer", "decimal": "decimal", "date": "date"}


def _field_column(spec: FieldSpec, tr: Translator) -> Column:
    header = short_label(spec, tr.language)
    if spec.unit is not None:
        unit = spec.unit.get(tr.language)
        if unit not in header:  # "Paper collected (kg)" already says it
            header = f"{header} ({unit})"
    return Column(f"answers.{spec.name}", header, FIELD_KINDS.get(spec.type, "text"))


def cell_value(spec: FieldSpec, value: Any, tr: Translator, period: Period | None = None) -> object:
    """One stored answer as a spreadsheet value; None (skipped or not asked) stays None."""
    if value is None:
        return None
    kind = spec.type
    try:
        if kind == "integer":
            return int(value)
        if kind == "decimal":
            return float(value)
        if kind == "date":
            return date.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)  # an odd stored value is shown, not dropped
    lang = tr.language
    if kind == "yesno":
        return tr.gettext("Yes") if value else tr.gettext("No")
    if kind == "choice":
        return next((c.label.get(lang) for c in spec.choices or [] if c.value == value), str(value))
    if kind == "multichoice":
        chosen = value if isinstance(value, list) else [value]
        known = {c.value: c.label.get(lang) for c in spec.choices or []}
        labels = [known[v] for v in known if v in chosen]
        labels += [str(v) for v in chosen if v not in known]
        return ", ".join(labels)
    if kind == "location":
        if isinstance(value, dict) and "text" in value:
            return str(value["text"])
        if isinstance(value, dict) and "lat" in value and "lon" in value:
            return f"{value['lat']},{value['lon']}"
        return str(value)
    if kind == "photo":
        photos = value if isinstance(value, list) else [value]
        names = [
            str(p.get("file_id") or p.get("path") or "") if isinstance(p, dict) else str(p)
            for p in photos
        ]
        return " ".join([f"{len(photos)}:", *(n for n in names if n)])
    if kind == "period":
        if period is None:
            return str(value)
        return period_label(period, tr).replace(FSI, "").replace(PDI, "")
    return str(value)


def _period(form: FormSpec, report: Report, group: Group) -> Period | None:
    if form.period == "none" or not report.period:
        return None
    try:
        return period_from_key(form.period, report.period, group.week_start)
    except ValueError:
        return None


def _name(names: dict[str, str], language: str, fallback: str) -> str:
    return names.get(language) or names.get("ar") or next(iter(names.values()), fallback)


def _channels_of(session: Session, person_ids: set[int]) -> dict[int, list[str]]:
    """Person id -> the channels they are reached on, the first registered first."""
    reached: dict[int, list[str]] = {}
    if not person_ids:
        return reached
    addresses = session.exec(
        select(PersonAddress.person_id, PersonAddress.channel)
        .where(col(PersonAddress.person_id).in_(person_ids))
        .order_by(col(PersonAddress.id))
    ).all()
    for person_id, channel in addresses:
        reached.setdefault(person_id, []).append(channel)
    return reached


def _channel(report: Report, reached: list[str], tr: Translator) -> str:
    """The channel the report was sent from; for reports stored before that was kept, the
    channels its sender is reached on."""
    channels = [report.channel] if report.channel else reached
    return ", ".join(tr.gettext(CHANNEL_NAMES[c]) if c in CHANNEL_NAMES else c for c in channels)


def _person(person: Person) -> str:
    """The name and internal id; never the phone number or chat address."""
    name = person.display_name.strip()
    return f"{name} (#{person.id})" if name else f"#{person.id}"
