"""Where an incoming message goes: a command, or the flow the chat is in.

Order matters: a stale button is refused before anything else looks at it; commands come
before flows so that /cancel, /back and /help work anywhere; an unregistered person reaches
only registration and help; a reply to the message of a question already answered is refused
before a flow could take it for the answer to the question open now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from handlers import (
    broadcast,
    broadcast_list,
    corrections,
    export,
    help,
    language,
    menu,
    monitoring,
    myreports,
    onboarding,
    people,
    reporting,
)
from handlers.context import STALE, Context, Navigation
from handlers.permissions import UNREGISTERED, may, role_of
from handlers.state import Flow

Handler = Callable[[Context], None]
GO = "go:"


def _in_form(action: Handler, otherwise: Handler) -> Handler:
    def run(ctx: Context) -> None:
        (action if ctx.state.draft and ctx.state.flow == Flow.FORM else otherwise)(ctx)

    return run


def _open_menu(ctx: Context) -> None:
    if ctx.state.draft:
        reporting.offer_resume(ctx)
    else:
        menu.show(ctx)


def _nothing_to_go_back_to(ctx: Context) -> None:
    ctx.say(ctx._("There is nothing to go back to."))
    _open_menu(ctx)


def _nothing_to_skip(ctx: Context) -> None:
    ctx.say(ctx._("There is no question to skip."))
    _open_menu(ctx)


COMMANDS: dict[str, Handler] = {
    "start": onboarding.start,
    "help": help.show,
    "language": language.ask,
    "menu": _open_menu,
    "report": _open_menu,
    "myreports": myreports.show,
    "cancel": lambda ctx: _cancel(ctx),
    "back": _in_form(reporting.back, _nothing_to_go_back_to),
    "skip": _in_form(reporting.skip, _nothing_to_skip),
    "status": monitoring.status,
    "digest": monitoring.digest,
    "remind": monitoring.remind_late,
    "broadcast": broadcast.start,
    "broadcasts": broadcast_list.show,
    "correct": corrections.correct,
    "review": corrections.review,
    "history": corrections.history,
    "invite": people.invite,
    "people": people.people,
    "export": export.start,
}

FLOWS: dict[Flow, Handler] = {
    Flow.CODE: lambda ctx: onboarding.redeem(ctx, ctx.incoming.text or ""),
    Flow.LANGUAGE: language.chosen,
    Flow.MENU: menu.chosen,
    Flow.FORM: reporting.answer,
    Flow.RESUME: reporting.resume_chosen,
    Flow.REMIND: monitoring.remind_chosen,
    Flow.BROADCAST: broadcast.answer,
    Flow.BROADCASTS: broadcast_list.chosen,
    Flow.CORRECT: corrections.correct_step,
    Flow.REVIEW: corrections.review_step,
    Flow.INVITE: people.invite_chosen,
    Flow.PEOPLE: people.people_chosen,
    Flow.EXPORT: export.chosen,
}


def _cancel(ctx: Context) -> None:
    """/cancel stops whatever the chat is in: a form (its draft is discarded) or another flow."""
    flow = ctx.state.flow
    if flow in FLOWS and flow not in (Flow.FORM, Flow.RESUME, Flow.MENU):
        ctx.state.flow = None
        ctx.say(ctx._("Stopped. Nothing was changed."))
        menu.show(ctx)
    else:
        reporting.cancel(ctx)


def route(ctx: Context) -> None:
    """Handle the message, then tell the channel if the person's commands changed."""
    ctx.navigation = NAVIGATION
    _route(ctx)
    _sync_commands(ctx)


def _sync_commands(ctx: Context) -> None:
    """The person's commands follow their role, language and forms: when those differ from
    what this chat was last given (registration, /language, a role changed by an admin, a
    new form), the last reply carries the new list for the channel's command menu."""
    if not ctx.replies:
        return
    commands = help.commands_for(ctx.person, ctx.organization, ctx.services.forms, ctx.tr)
    signature = help.signature(commands)
    if ctx.state.commands != signature:
        ctx.state.commands = signature
        ctx.replies[-1] = replace(ctx.replies[-1], commands=commands)


def _route(ctx: Context) -> None:
    choice = ctx.incoming.choice or ""
    if choice.startswith(GO):
        # A button on a message sent outside the conversation (a reminder): it runs a
        # command, so it needs no token, and the command checks who may run it.
        ctx.incoming = replace(ctx.incoming, text="/" + choice[len(GO) :], choice=None)
    if ctx.choice == STALE:
        ctx.say(ctx._("That button belongs to an earlier message and no longer works."))
        _show_where(ctx)
        return
    command = ctx.incoming.command
    if command is not None:
        _command(ctx, command)
        return
    flow = ctx.state.flow
    if ctx.person is None or not ctx.person.active:
        if flow == Flow.CODE and ctx.incoming.text:
            onboarding.redeem(ctx, ctx.incoming.text)
        else:
            onboarding.not_registered(ctx)
        return
    if ctx.answers_earlier:
        ctx.say(ctx._("That question was already answered — here is where you are."))
        _show_where(ctx)
        return
    handler = FLOWS.get(flow) if flow is not None else None
    if handler is not None:
        handler(ctx)
    elif ctx.state.draft:
        reporting.offer_resume(ctx)
    else:
        menu.show(ctx, ctx._("I did not understand that. What would you like to do?"))


def _command(ctx: Context, command: str) -> None:
    forms = {form.command: form.id for form in ctx.services.forms.values()}
    if command in forms:
        if may(ctx.person, "report"):
            reporting.start(ctx, forms[command])
        else:
            onboarding.not_registered(ctx)
        return
    handler = COMMANDS.get(command)
    if handler is None:
        ctx.say(
            ctx._(
                "I do not know the command /{command}. Send /help to see what I can do.",
                command=command,
            )
        )
        return
    if not may(ctx.person, command):
        if role_of(ctx.person) == UNREGISTERED:
            onboarding.not_registered(ctx)
        else:
            ctx.say(ctx._("The command /{command} is not for your role.", command=command))
        return
    handler(ctx)


NAVIGATION = Navigation(
    home=_open_menu,
    menu=menu.show,
    language=language.ask,
    command=_command,
    corrections=corrections.offer_after_list,
)


def _show_where(ctx: Context) -> None:
    """After a refused button or answer, show again what the chat is waiting for."""
    flow = ctx.state.flow
    if flow == Flow.FORM and ctx.state.draft:
        reporting.show_current_after_refusal(ctx)
    elif flow == Flow.RESUME and ctx.state.draft:
        reporting.offer_resume(ctx, then=ctx.state.resume.then if ctx.state.resume else None)
    elif flow == Flow.LANGUAGE:
        language.ask(ctx)
    elif flow == Flow.BROADCAST and ctx.state.broadcast:
        broadcast.show_current(ctx)
    elif flow == Flow.BROADCASTS:
        broadcast_list.show(ctx)
    elif flow in (Flow.CORRECT, Flow.REVIEW):
        corrections.show_where(ctx)
    elif ctx.person is not None and ctx.person.active:
        menu.show(ctx)
