"""What the bot can do for this person."""

from __future__ import annotations

from handlers.context import Context
from handlers.permissions import may, may_fill


def show(ctx: Context) -> None:
    if ctx.person is None:
        ctx.say(ctx._("Sanad collects the field reports of your association. To start, open the "
                      "invitation link your coordinator sent you, or send /start followed by "
                      "your invitation code."))
        return
    lines = [ctx._("What I understand:"), ctx._("/report: choose a report to fill in")]
    for form in ctx.services.forms.values():
        if may_fill(ctx.person, ctx.organization, form):
            lines.append(f"/{form.command}: {form.title.get(ctx.language)}")
    lines.append(ctx._("/status: who has reported this period"))
    if may(ctx.person, "digest"):
        lines.append(ctx._("/digest: the latest digest of your group"))
    if may(ctx.person, "remind"):
        lines.append(ctx._("/remind: remind the associations that have not reported"))
    if may(ctx.person, "broadcast"):
        lines.append(ctx._("/broadcast: send an announcement to a chosen audience"))
        lines.append(ctx._("/broadcasts: recent broadcasts, their delivery; cancel one"))
    if may(ctx.person, "invite"):
        lines.append(ctx._("/invite: invite someone to register"))
    if may(ctx.person, "people"):
        lines.append(ctx._("/people: the people of your group; deactivate a worker"))
    if may(ctx.person, "export"):
        lines.append(ctx._("/export: the reports as a spreadsheet file"))
    if may(ctx.person, "review"):
        lines.append(ctx._("/review: check a report of your group, or query it"))
    lines += [ctx._("/myreports: your recent reports"),
              ctx._("/correct: correct one of your reports"),
              ctx._("/history: the changes of a report, for example /history REC-12"),
              ctx._("/language: change the language"),
              ctx._("/back: go back to the previous question"),
              ctx._("/cancel: stop the current report without saving")]
    ctx.say("\n".join(lines))
