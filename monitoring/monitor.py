"""The monitoring tick: run every minute by the scheduler (or by tests with their own clock).

Each tick enqueues, per group, the reminders, escalations and digests whose moment has come,
and the network digest for admins. Every message carries an idempotency key in the outbox,
so ticks can run as often as wanted, be missed, or repeat after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, select

from forms.display import period_label, short_label
from forms.periods import Period, period_containing
from forms.schema import FormSpec
from locales import Translator, translator
from monitoring.audience import admins, coordinators_of
from monitoring.broadcasts import report_broadcasts
from monitoring.completeness import completeness, days_reported
from monitoring.digest import (
    Digest,
    build_digest,
    digest_text,
    has_reports,
    in_digest,
    money_totals,
    numeric_fields,
)
from monitoring.drawing import Series, draw_chart
from monitoring.reminders import WINDOW, send_reminders
from outbox import intents as say
from outbox.intents import Intent
from storage.db import transaction
from storage.models import Group
from storage.network import NETWORK_GROUP
from storage.outbox import enqueue
from storage.schedule import Schedule, schedule_from
from storage.types import utcnow

log = logging.getLogger(__name__)
KINDS = ("week", "month")


class Monitor:
    """Everything scheduled: reminders, escalations, digests."""

    def __init__(
        self,
        engine: Engine,
        forms: dict[str, FormSpec],
        charts_dir: Path,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.forms = forms
        self.charts_dir = charts_dir
        self.clock = clock

    def tick(self) -> int:
        """Enqueue whatever is due now; returns how many new messages."""
        now = self.clock()
        count = 0
        with Session(self.engine) as session:
            keys = [g.key for g in session.exec(select(Group).where(Group.active)).all()]
        for key in keys:
            try:
                with transaction(self.engine) as session:
                    group = session.exec(select(Group).where(Group.key == key)).one()
                    if key == NETWORK_GROUP:
                        count += self._network_digests(session, group, now)
                        continue
                    schedule = schedule_from(group.schedule)
                    count += send_reminders(session, group, schedule, self.forms, now)
                    count += self._digests(session, group, schedule, now)
            except Exception:
                log.exception("monitoring of group %s failed this tick", key)
        try:
            with transaction(self.engine) as session:
                count += report_broadcasts(session, now)
        except Exception:
            log.exception("broadcast reports failed this tick")
        return count

    # --- group digests ------------------------------------------------------------------

    def _digests(self, session: Session, group: Group, schedule: Schedule, now: datetime) -> int:
        zone = ZoneInfo(group.timezone)
        local = now.astimezone(zone)
        if schedule.is_quiet(local.time()):
            return 0
        count = 0
        for kind in KINDS:
            if not any(in_digest(s.every, kind) for s in schedule.forms.values()):
                continue
            days = schedule.weekly_digest_days if kind == "week" else schedule.monthly_digest_days
            latest = period_containing(kind, local.date(), group.week_start).previous()
            for period in (latest, latest.previous()):
                at = datetime.combine(
                    period.end + timedelta(days=days), schedule.digest_time, tzinfo=zone
                )
                if at <= now < at + WINDOW:
                    digest = build_digest(
                        session, group, schedule, self.forms, kind, period, local.date()
                    )
                    count += self.deliver_digest(session, digest, now)
        return count

    def deliver_digest(
        self, session: Session, digest: Digest, now: datetime, key_suffix: str = ""
    ) -> int:
        """Enqueue `digest` to each coordinator of its group, in their own language."""
        count = 0
        digits = digest.group.digits
        text = say.per_language(lambda tr: digest_text(digest, tr), digits)
        charts: dict[str, Path | None] = {}  # drawn once per language a coordinator reads
        for person in coordinators_of(session, digest.group):
            assert person.id is not None
            language = translator(person.language or digest.group.language).language
            if language not in charts:
                charts[language] = digest_chart(
                    digest, translator(language, digits), self.charts_dir
                )
            chart = charts[language]
            key = f"digest:{digest.kind}:{digest.group.key}:{digest.period.key}:{person.id}"
            count += enqueue(
                session,
                person_id=person.id,
                kind="digest",
                dedupe_key=key + key_suffix,
                intent=Intent.of(text, photo=str(chart) if chart else None, digits=digits),
                language=language,
                now=now,
            )
        return count

    # --- network digest -----------------------------------------------------------------

    def _network_digests(self, session: Session, network: Group, now: datetime) -> int:
        schedule = schedule_from(network.schedule)
        zone = ZoneInfo(network.timezone)
        local = now.astimezone(zone)
        if schedule.is_quiet(local.time()):
            return 0
        count = 0
        for kind in KINDS:
            days = schedule.weekly_digest_days if kind == "week" else schedule.monthly_digest_days
            period = period_containing(kind, local.date(), network.week_start).previous()
            at = datetime.combine(
                period.end + timedelta(days=days), schedule.digest_time, tzinfo=zone
            )
            if not at <= now < at + WINDOW:
                continue
            text = say.per_language(partial(self.network_text, session, kind, now), network.digits)
            for person in admins(session):
                assert person.id is not None
                count += enqueue(
                    session,
                    person_id=person.id,
                    kind="digest",
                    dedupe_key=f"network-digest:{kind}:{period.key}:{person.id}",
                    intent=Intent.of(text, digits=network.digits),
                    language=person.language or network.language,
                    now=now,
                )
        return count

    def network_text(self, session: Session, kind: str, now: datetime, tr: Translator) -> str:
        """Each group's latest ended period: reporting and on-time rates, late associations;
        then the money reported, totalled per currency (never across currencies)."""
        lang = tr.language
        money: dict[tuple[str, str], dict[str, float]] = {}  # (form, field) -> currency -> sum
        lines = [
            tr.gettext("Weekly network digest, all groups")
            if kind == "week"
            else tr.gettext("Monthly network digest, all groups")
        ]
        groups = session.exec(
            select(Group).where(Group.active, Group.key != NETWORK_GROUP).order_by(Group.key)
        ).all()
        for group in groups:
            schedule = schedule_from(group.schedule)
            today = now.astimezone(ZoneInfo(group.timezone)).date()
            lines.append("")
            lines.append(group.names.get(lang, group.key))
            for form_id, form_schedule in schedule.forms.items():
                form = self.forms.get(form_id)
                if form is None or not in_digest(form_schedule.every, kind):
                    continue
                period = _latest(kind, today, group)
                state = (
                    days_reported(session, group, form, form_schedule, period).state
                    if form.period == "day"
                    else completeness(session, group, form, form_schedule, period)
                )
                lines.append(
                    "• "
                    + tr.ngettext(
                        "{title}, {period}: {rate} reported, {on_time_rate} on time, "
                        "{n} association late",
                        "{title}, {period}: {rate} reported, {on_time_rate} on time, "
                        "{n} associations late",
                        len(state.late(today)),
                        title=form.title.get(lang),
                        period=period_label(period, tr),
                        rate=tr.percent(state.rate),
                        on_time_rate=tr.percent(state.on_time_rate),
                    )
                )
                for field, total in money_totals(session, group, form, period).items():
                    by_currency = money.setdefault((form_id, field), {})
                    by_currency[group.currency] = by_currency.get(group.currency, 0.0) + total
        if money:
            lines.append("")
            lines.append(tr.gettext("Money reported, per currency:"))
            for (form_id, field), by_currency in money.items():
                spec = next(f for f in self.forms[form_id].fields if f.name == field)
                amounts = " · ".join(
                    tr.money(Decimal(str(round(total, 3))), currency)
                    for currency, total in sorted(by_currency.items())
                )
                lines.append(
                    "• "
                    + tr.gettext(
                        "{field}: {amounts}", field=short_label(spec, lang), amounts=amounts
                    )
                )
        return "\n".join(lines)


def _latest(kind: str, today: date, group: Group) -> Period:
    return period_containing(kind, today, group.week_start).previous()


def digest_chart(digest: Digest, tr: Translator, charts_dir: Path) -> Path | None:
    """The digest's chart in `tr`'s language: the last periods of its main form, in one
    unit (the first numeric field's unit, or its currency); None when there is nothing to
    draw (no report in any of those periods): the digest text says so instead."""
    part = next((p for p in digest.forms if p.form.period != "none"), None) or digest.forms[0]
    fields = numeric_fields(part.form)
    if not fields or not has_reports(part):
        return None
    lang = tr.language
    first = fields[0]
    shown = [f for f in fields if f.unit == first.unit and f.money == first.money]
    if first.money:
        y_label = digest.group.currency
    elif first.unit:
        y_label = first.unit.get(lang)
    else:
        y_label = tr.gettext("Number")
    labels = [
        tr.date(p.start, "d MMM") if p.kind != "month" else tr.date(p.start, "MMM y")
        for p, _ in part.history
    ]
    series = [
        Series(short_label(f, lang), [values.get(f.name) for _, values in part.history])
        for f in shown
    ]
    path = charts_dir / f"{digest.group.key}-{digest.kind}-{digest.period.key}-{lang}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"{part.form.title.get(lang)} · {digest.group.names.get(lang, digest.group.key)}"
    return draw_chart(
        title, labels, series, language=lang, path=path, y_label=y_label, digits=tr.digits
    )
