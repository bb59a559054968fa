"""Registration: an invitation code (deep link, /start CODE, or typed after /start)."""

from __future__ import annotations

from handlers.context import Context
from handlers.permissions import role_name
from handlers.state import Flow
from locales import translator
from storage.invites import InviteProblem, redeem_invite
from storage.models import Organization
from storage.people import member_by_id


def start(ctx: Context) -> None:
    code = ctx.incoming.argument
    if ctx.person is not None and not ctx.person.active:
        ctx.say(
            ctx._(
                "Your access to Sanad has been deactivated. Ask your coordinator if this "
                "is a mistake."
            )
        )
        return
    if ctx.person is not None:
        if code:
            ctx.say(ctx._("You are already registered."))
        ctx.go_menu(ctx._("Welcome back, {name}.", name=ctx.person.display_name))
        return
    if code:
        redeem(ctx, code)
        return
    ctx.state.flow = Flow.CODE
    ctx.say(ctx._("Welcome to Sanad. Please send the invitation code your coordinator gave you."))


def redeem(ctx: Context, code: str) -> None:
    incoming = ctx.incoming
    result = redeem_invite(
        ctx.session, code, ctx.now, incoming.channel, incoming.sender, incoming.sender_name
    )
    if isinstance(result, InviteProblem):
        ctx.state.flow = Flow.CODE
        ctx.say(_problem(ctx, result))
        return
    person = result.person
    assert person.id is not None  # redeem_invite flushed the new person
    ctx.person, ctx.organization, ctx.group = member_by_id(ctx.session, person.id)
    if result.added_address:
        ctx.state.flow = None
        if person.language:
            ctx.tr = translator(person.language, ctx.group.digits if ctx.group else None)
        ctx.go_menu(
            ctx._(
                "Welcome back, {name}. You can use Sanad here too: your reports, role and "
                "language are the same as before.",
                name=person.display_name,
            )
        )
        return
    organization = ctx.session.get(Organization, person.organization_id)
    assert organization is not None
    ctx.say(
        ctx._(
            "Welcome to Sanad, {name}! You are registered as {role} of {organization}.",
            name=person.display_name or "",
            role=role_name(ctx, person.role),
            organization=organization.names.get(ctx.language, organization.key),
        )
    )
    ctx.ask_language()


def not_registered(ctx: Context) -> None:
    ctx.say(
        ctx._(
            "You are not registered yet. Open the invitation link your coordinator sent "
            "you, or send /start followed by your invitation code. /help explains more."
        )
    )


def _problem(ctx: Context, problem: InviteProblem) -> str:
    reason = problem.reason
    minutes = max(1, -(-int(problem.wait.total_seconds()) // 60))  # rounded up
    if reason == "too_many":
        return ctx.tr.ngettext(
            "Too many codes that do not work were sent from this chat. Please wait {n} "
            "minute, then send your code again.",
            "Too many codes that do not work were sent from this chat. Please wait {n} "
            "minutes, then send your code again.",
            minutes,
        )
    if reason == "busy":
        return ctx.tr.ngettext(
            "Registration is paused for {n} minute because of too many wrong codes. "
            "Please send your code again after that.",
            "Registration is paused for {n} minutes because of too many wrong codes. "
            "Please send your code again after that.",
            minutes,
        )
    if reason == "revoked":
        return ctx._("This invitation code was withdrawn. Ask your coordinator for a new one.")
    if reason == "used":
        return ctx._(
            "This invitation code has already been used. Ask your coordinator for a new one."
        )
    if reason == "expired":
        return ctx._("This invitation code has expired. Ask your coordinator for a new one.")
    return ctx._(
        "This invitation code is not valid. Check it and send it again, or ask your "
        "coordinator for a new one."
    )
