"""How a due date reads on a given local day: due in N days, due today, or N days late.

Every monitoring message that mentions a due date (reminders, nudges, escalations,
/status) words it from the reader's local date, so a nudge sent before the due date never
says "was due". The wording is a phrase (`outbox.intents`), translated when it is sent, or
at once with `text_of` for a live reply.
"""

from __future__ import annotations

from datetime import date

from outbox import intents as say


def days_until(due: date, today: date) -> int:
    """Days from `today` to `due`: positive before it, 0 on the day, negative once late."""
    return (due - today).days


def due_phrase(due: date, today: date) -> say.Phrase:
    """ "due in 3 days, on 29 November", "due today, 29 November", "5 days late (was due on
    29 November)"."""
    days = days_until(due, today)
    when = say.day(due, "d MMMM")
    if days > 0:
        return say.ngettext("due in {n} day, on {due}", "due in {n} days, on {due}", days, due=when)
    if days == 0:
        return say.gettext("due today, {due}", due=when)
    return say.ngettext(
        "{n} day late (was due on {due})", "{n} days late (was due on {due})", -days, due=when
    )


def reminder_phrase(title: say.Phrase, period: say.Phrase, due: date, today: date) -> say.Phrase:
    """A worker's reminder, worded for where `today` stands against the due date."""
    days = days_until(due, today)
    values = {"title": title, "period": period, "due": say.day(due, "d MMMM")}
    if days > 0:
        return say.ngettext(
            "Reminder: your {title} report for {period} is due in {n} day, on {due}.",
            "Reminder: your {title} report for {period} is due in {n} days, on {due}.",
            days,
            **values,
        )
    if days == 0:
        return say.gettext(
            "Reminder: your {title} report for {period} is due today, {due}.", **values
        )
    return say.ngettext(
        "Your {title} report for {period} is {n} day late: it was due on {due}. "
        "Please send it as soon as you can.",
        "Your {title} report for {period} is {n} days late: it was due on {due}. "
        "Please send it as soon as you can.",
        -days,
        **values,
    )
