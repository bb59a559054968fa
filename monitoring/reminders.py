"""Reminders before and after the due date, then an escalation to the coordinators.

Each message is keyed by form, period, stage and person in the outbox, so nobody gets the
same one twice, whatever restarts or daylight-saving changes happen. A stage fires at its
local time on its day, or later within a day if the process was down then, but never in the
group's quiet hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from forms.display import period_label
from forms.periods import Period
from forms.schema import FormSpec
from monitoring.audience import coordinators_of, workers_of
from monitoring.completeness import Completeness, completeness, due_date, period_of
from monitoring.due import due_phrase, reminder_phrase
from outbox import intents as say
from outbox.intents import Intent
from storage.models import Group, Organization
from storage.outbox import enqueue
from storage.schedule import FormSchedule, Schedule

WINDOW = timedelta(hours=24)
STAGES = ("before", "after", "escalate")
MAX_PERIODS_BACK = 100  # a period's last moment is at most 60 + 30 days after it ends


@dataclass(frozen=True)
class Moment:
    stage: str
    period: Period
    at: datetime  # aware


def moments(
    group: Group, schedule: Schedule, form_schedule: FormSchedule, now: datetime
) -> Iterator[Moment]:
    """The reminder moments of the current period and of the earlier ones whose last moment
    is not yet a window behind `now` (three weeks or months; for daily forms, as many days
    as the escalation waits). Each moment is a local date and time, so its period (a local
    date) names it: a daylight-saving change moves it by an hour, never to another day."""
    zone = ZoneInfo(group.timezone)
    period = period_of(group, form_schedule, now.astimezone(zone).date())
    for _ in range(MAX_PERIODS_BACK):
        due = due_date(period, form_schedule)
        days = {
            "before": due - timedelta(days=form_schedule.remind_before_days),
            "after": due + timedelta(days=form_schedule.remind_after_days),
            "escalate": due + timedelta(days=form_schedule.escalate_after_days),
        }
        found = [
            Moment(stage, period, datetime.combine(days[stage], schedule.reminder_time, zone))
            for stage in STAGES
        ]
        yield from found
        if all(m.at + WINDOW <= now for m in found):
            return  # the earlier periods' moments are older still
        period = period.previous()


def send_reminders(
    session: Session, group: Group, schedule: Schedule, forms: dict[str, FormSpec], now: datetime
) -> int:
    """Enqueue the reminders and escalations due at `now`; returns how many were new."""
    if schedule.is_quiet(now.astimezone(ZoneInfo(group.timezone)).time()):
        return 0
    count = 0
    for form_id, form_schedule in schedule.forms.items():
        form = forms.get(form_id)
        if form is None:
            continue
        for moment in moments(group, schedule, form_schedule, now):
            if not moment.at <= now < moment.at + WINDOW:
                continue
            state = completeness(session, group, form, form_schedule, moment.period)
            if moment.stage == "escalate":
                count += escalate(session, group, state, now)
            else:
                count += remind(session, group, state, moment.stage, now)
    return count


def remind(
    session: Session,
    group: Group,
    state: Completeness,
    stage: str,
    now: datetime,
    key_suffix: str = "",
) -> int:
    """Remind the workers of every association still missing the report, in words that fit
    the day: due soon, due today, or late by so many days."""
    missing = [o.id for o in state.missing if o.id is not None]
    form, period = state.form, state.period
    today = now.astimezone(ZoneInfo(group.timezone)).date()
    text = reminder_phrase(
        say.localized(form.title.model_dump()),
        say.per_language(lambda tr: period_label(period, tr), group.digits),
        state.due,
        today,
    )
    intent = Intent.of(
        text,
        options=((say.gettext("Fill it now"), f"go:{form.command}"),),
        digits=group.digits,
    )
    count = 0
    for person in workers_of(session, missing):
        assert person.id is not None
        key = f"reminder:{stage}:{form.id}:{group.key}:{period.key}:{person.id}{key_suffix}"
        count += enqueue(
            session,
            person_id=person.id,
            kind="reminder",
            dedupe_key=key,
            intent=intent,
            language=person.language or group.language,
            now=now,
        )
    return count


def escalate(session: Session, group: Group, state: Completeness, now: datetime) -> int:
    """Tell the group's coordinators which associations are late."""
    today = now.astimezone(ZoneInfo(group.timezone)).date()
    late = state.late(today)
    if not late:
        return 0
    count = 0
    for person in coordinators_of(session, group):
        assert person.id is not None
        key = f"escalation:{state.form.id}:{group.key}:{state.period.key}:{person.id}"
        count += enqueue(
            session,
            person_id=person.id,
            kind="escalation",
            dedupe_key=key,
            intent=Intent.of(late_phrase(state, late, today, group.digits), digits=group.digits),
            language=person.language or group.language,
            now=now,
        )
    return count


def late_phrase(
    state: Completeness, late: list[Organization], today: date, digits: str = "latn"
) -> say.Phrase:
    """Which associations are late and by how long, as a phrase translated when it is sent."""
    return say.ngettext(
        "{n} association has not sent {title} for {period}, {when}: {names}.",
        "{n} associations have not sent {title} for {period}, {when}: {names}.",
        len(late),
        title=say.localized(state.form.title.model_dump()),
        period=say.per_language(lambda tr: period_label(state.period, tr), digits),
        when=due_phrase(state.due, today),
        names=say.per_language(lambda tr: names_of(late, tr.language)),
    )


def names_of(organizations: list[Organization], language: str) -> str:
    separator = "، " if language == "ar" else ", "
    return separator.join(o.names.get(language, o.key) for o in organizations)
