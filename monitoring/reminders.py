"""Reminders before and after the due date, then an escalation to the coordinators.

Each message is keyed by form, period, stage and person in the outbox, so nobody gets the
same one twice, whatever restarts or daylight-saving changes happen. A stage fires at its
local time on its day, or later within a day if the process was down then, but never in the
group's quiet hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from forms.display import period_label
from forms.periods import Period
from forms.schema import FormSpec
from monitoring.audience import coordinators_of, workers_of
from monitoring.completeness import Completeness, completeness, due_date, period_of
from outbox import intents as say
from outbox.intents import Intent
from storage.models import Group, Organization
from storage.outbox import enqueue
from storage.schedule import FormSchedule, Schedule

WINDOW = timedelta(hours=24)
STAGES = ("before", "after", "escalate")


@dataclass(frozen=True)
class Moment:
    stage: str
    period: Period
    at: datetime  # aware


def moments(
    group: Group, schedule: Schedule, form_schedule: FormSchedule, now: datetime
) -> Iterator[Moment]:
    """The reminder moments of the current period and the two before it."""
    zone = ZoneInfo(group.timezone)
    period = period_of(group, form_schedule, now.astimezone(zone).date())
    for _ in range(3):
        due = due_date(period, form_schedule)
        days = {
            "before": due - timedelta(days=form_schedule.remind_before_days),
            "after": due + timedelta(days=form_schedule.remind_after_days),
            "escalate": due + timedelta(days=form_schedule.escalate_after_days),
        }
        for stage in STAGES:
            at = datetime.combine(days[stage], schedule.reminder_time, tzinfo=zone)
            yield Moment(stage, period, at)
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
    """Remind the workers of every association still missing the report."""
    missing = [o.id for o in state.missing if o.id is not None]
    form, period = state.form, state.period
    values = {
        "title": say.localized(form.title.model_dump()),
        "period": say.per_language(lambda tr: period_label(period, tr)),
        "due": say.day(state.due, "d MMMM"),
    }
    if stage == "before":
        text = say.gettext("Reminder: your {title} report for {period} is due on {due}.", **values)
    else:
        text = say.gettext(
            "Your {title} report for {period} was due on {due} and has not "
            "arrived yet. Please send it as soon as you can.",
            **values,
        )
    intent = Intent.of(text, options=((say.gettext("Fill it now"), f"go:{form.command}"),))
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
            intent=Intent.of(late_phrase(state, late)),
            language=person.language or group.language,
            now=now,
        )
    return count


def late_phrase(state: Completeness, late: list[Organization]) -> say.Phrase:
    """Which associations are late, as a phrase translated when it is sent."""
    return say.ngettext(
        "{n} association has not sent {title} for {period} (due {due}): {names}.",
        "{n} associations have not sent {title} for {period} (due {due}): {names}.",
        len(late),
        title=say.localized(state.form.title.model_dump()),
        period=say.per_language(lambda tr: period_label(state.period, tr)),
        due=say.day(state.due, "d MMMM"),
        names=say.per_language(lambda tr: names_of(late, tr.language)),
    )


def names_of(organizations: list[Organization], language: str) -> str:
    separator = "، " if language == "ar" else ", "
    return separator.join(o.names.get(language, o.key) for o in organizations)
