"""How a due date reads on a given local day: due in N days, due today, or N days late.

Every monitoring message that mentions a due date (reminders, nudges, escalations,
/status) words it from the reader's local date, so a nudge sent before the due date never
says "was due".
"""

from __future__ import annotations

from datetime import date

from locales import Translator


def days_until(due: date, today: date) -> int:
    """Days from `today` to `due`: positive before it, 0 on the day, negative once late."""
    return (due - today).days


def due_phrase(tr: Translator, due: date, today: date) -> str:
    """ "due in 3 days, on 29 November", "due today, 29 November", "5 days late (due on …)"."""
    days = days_until(due, today)
    when = tr.date(due, "d MMMM")
    if days > 0:
        return tr.ngettext("due in {n} day, on {due}", "due in {n} days, on {due}", days, due=when)
    if days == 0:
        return tr.gettext("due today, {due}", due=when)
    return tr.ngettext(
        "{n} day late (was due on {due})", "{n} days late (was due on {due})", -days, due=when
    )


def reminder_text(tr: Translator, title: str, period: str, due: date, today: date) -> str:
    """A worker's reminder, worded for where `today` stands against the due date."""
    days = days_until(due, today)
    when = tr.date(due, "d MMMM")
    if days > 0:
        return tr.ngettext(
            "Reminder: your {title} report for {period} is due in {n} day, on {due}.",
            "Reminder: your {title} report for {period} is due in {n} days, on {due}.",
            days,
            title=title,
            period=period,
            due=when,
        )
    if days == 0:
        return tr.gettext(
            "Reminder: your {title} report for {period} is due today, {due}.",
            title=title,
            period=period,
            due=when,
        )
    return tr.ngettext(
        "Your {title} report for {period} is {n} day late: it was due on {due}. "
        "Please send it as soon as you can.",
        "Your {title} report for {period} is {n} days late: it was due on {due}. "
        "Please send it as soon as you can.",
        -days,
        title=title,
        period=period,
        due=when,
    )
