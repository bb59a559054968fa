"""Reporting periods (days, weeks and months) in a group's own time zone and week.

A period is a span of local calendar dates; it never depends on the hour, so a change of
daylight-saving time can neither skip nor double a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    """A day, a week or a month; `key` is what reports store: "2026-11" for a month, the first
    (or only) day for a week or a day."""

    kind: str
    start: date
    end: date  # inclusive

    @property
    def key(self) -> str:
        return self.start.strftime("%Y-%m") if self.kind == "month" else self.start.isoformat()

    def previous(self) -> Period:
        return period_containing(
            self.kind,
            self.start - timedelta(days=1),
            self.start.weekday() if self.kind == "week" else 0,
        )

    def next(self) -> Period:
        return period_containing(
            self.kind,
            self.end + timedelta(days=1),
            self.start.weekday() if self.kind == "week" else 0,
        )


def local_today(now: datetime, timezone: str) -> date:
    """The date it is now in `timezone` (zone data from the tzdata package when installed)."""
    return now.astimezone(ZoneInfo(timezone)).date()


KINDS = ("day", "week", "month")


def period_containing(kind: str, day: date, week_start: int = 0) -> Period:
    """The day, week (starting on weekday `week_start`, 0 = Monday) or month of `day`."""
    if kind == "day":
        return Period("day", day, day)
    if kind == "month":
        start = day.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return Period("month", start, following - timedelta(days=1))
    if kind == "week":
        start = day - timedelta(days=(day.weekday() - week_start) % 7)
        return Period("week", start, start + timedelta(days=6))
    raise ValueError(f"no period of kind {kind!r}")


def period_from_key(kind: str, key: str, week_start: int = 0) -> Period:
    """The period a stored key names."""
    if kind == "month":
        return period_containing("month", date.fromisoformat(key + "-01"))
    return period_containing(kind, date.fromisoformat(key), week_start)
