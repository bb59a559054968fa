"""What the bot can do for this person."""

from __future__ import annotations

from handlers.context import Context
from handlers.permissions import may, may_fill
from locales import N_

#: One line per command that not everyone has, shown to those the permissions table allows.
COMMAND_HELP = (
    ("status", N_("/status: who has reported this period")),
    ("digest", N_("/digest: the latest digest of your group")),
    ("remind", N_("/remind: remind the associations that have not reported")),
    ("broadcast", N_("/broadcast: send an announcement to a chosen audience")),
    ("broadcasts", N_("/broadcasts: recent broadcasts, their delivery; cancel one")),
    ("invite", N_("/invite: invite someone to register")),
    ("people", N_("/people: the people of your group; deactivate a worker")),
    ("export", N_("/export: the reports as a spreadsheet file")),
    ("review", N_("/review: check a report of your group, or query it")),
)


def show(ctx: Context) -> None:
    if ctx.person is None:
        ctx.say(
            ctx._(
                "Sanad collects the field reports of your association. To start, open the "
                "invitation link your coordinator sent you, or send /start followed by "
                "your invitation code."
            )
        )
        return
    lines = [ctx._("What I understand:"), ctx._("/report: choose a report to fill in")]
    for form in ctx.services.forms.values():
        if may_fill(ctx.person, ctx.organization, form):
            lines.append(f"/{form.command}: {form.title.get(ctx.language)}")
    lines += [ctx._(line) for action, line in COMMAND_HELP if may(ctx.person, action)]
    lines += [
        ctx._("/myreports: your recent reports"),
        ctx._("/correct: correct one of your reports"),
        ctx._("/history: the changes of a report, for example /history REC-12"),
        ctx._("/language: change the language"),
        ctx._("/back: go back to the previous question"),
        ctx._("/cancel: stop the current report without saving"),
    ]
    ctx.say("\n".join(lines))
