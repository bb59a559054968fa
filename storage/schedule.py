"""A group's monitoring schedule: when reports are due, when reminders, escalations and
digests go out, and the quiet hours. Set under `schedule:` in the network file; every key
has a sensible default."""

from __future__ import annotations

from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FormSchedule(BaseModel):
    """When one form is due, and when its reminders and escalation go out.

    Days count from the last day of the period: a weekly form with `due_days: 2` is due by
    the end of the second day after the week ends; a daily one with `due_days: 0` by the end
    of its day (give it `remind_before_days: 0` for a reminder on the day itself).
    `on_time_days` (DHIS2's "on time") counts the same way and defaults to `due_days`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: Literal["day", "week", "month"]
    due_days: int = Field(ge=0, le=60)
    on_time_days: int | None = Field(default=None, ge=0, le=60)
    remind_before_days: int = Field(default=1, ge=0, le=30)
    remind_after_days: int = Field(default=1, ge=1, le=30)
    escalate_after_days: int = Field(default=3, ge=1, le=30)

    @property
    def on_time(self) -> int:
        return self.due_days if self.on_time_days is None else self.on_time_days


DEFAULT_FORMS: dict[str, FormSchedule] = {
    "recycling": FormSchedule(every="week", due_days=2),
    "checkin": FormSchedule(every="week", due_days=1, remind_before_days=1),
    "beneficiaries": FormSchedule(every="month", due_days=5, escalate_after_days=3),
}


class Schedule(BaseModel):
    """A group's whole schedule; local times are in the group's time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reminder_time: time = time(10, 0)
    digest_time: time = time(9, 0)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    weekly_digest_days: int = Field(default=3, ge=1, le=6)
    monthly_digest_days: int = Field(default=7, ge=1, le=27)
    correction_days: int = Field(default=7, ge=0, le=366)  # a worker corrects their own report
    forms: dict[str, FormSchedule] = Field(default_factory=lambda: dict(DEFAULT_FORMS))

    def is_quiet(self, moment: time) -> bool:
        """Whether a local time of day falls in the quiet hours (which may span midnight)."""
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= moment < self.quiet_end
        return moment >= self.quiet_start or moment < self.quiet_end


def schedule_from(data: dict[str, Any]) -> Schedule:
    """The schedule of a group: its own settings over the defaults (forms merged by id)."""
    forms = dict(DEFAULT_FORMS)
    for form_id, settings in (data.get("forms") or {}).items():
        base = forms.get(form_id)
        merged = {**(base.model_dump() if base else {}), **settings}
        forms[form_id] = FormSchedule.model_validate(merged)
    return Schedule.model_validate({**data, "forms": forms})
