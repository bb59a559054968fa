"""The main menu: the forms a person may fill, their reports, their language."""

from __future__ import annotations

from handlers.context import Context
from handlers.permissions import may_fill


def show(ctx: Context, intro: str | None = None) -> None:
    options = [
        (form.title.get(ctx.language), f"form:{form.id}")
        for form in ctx.services.forms.values()
        if may_fill(ctx.person, ctx.organization, form)
    ]
    options += [(ctx._("My reports"), "myreports"), (ctx._("Language"), "language")]
    ctx.state["flow"] = "menu"
    ctx.say(intro or ctx._("What would you like to do?"), options)


def chosen(ctx: Context) -> None:
    from handlers import language, myreports, reporting

    choice = ctx.choice or ""
    if choice.startswith("form:") and choice[5:] in ctx.services.forms:
        reporting.start(ctx, choice[5:])
    elif choice == "myreports":
        myreports.show(ctx)
    elif choice == "language":
        language.ask(ctx)
    else:
        show(ctx, ctx._("Please choose one of the options."))
