"""The main menu, each role its own: a field worker's reports to fill in; a coordinator's
group at a glance (reported, late, still to report) and the coordinator's tools; an admin's
network at a glance (per group, how many associations reported of how many) and the network
tools. A choice runs the command it stands for, with the command's permission check."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

from sqlmodel import select

from forms.display import period_label
from forms.schema import FormSpec
from handlers.context import Context
from handlers.permissions import may, may_fill
from handlers.state import Flow
from locales import N_
from monitoring.completeness import Completeness, completeness, period_of
from monitoring.reminders import names_of
from storage.models import Group
from storage.network import NETWORK_GROUP
from storage.schedule import schedule_from

FORM = "form:"

#: command -> its label in the menu
LABELS: dict[str, str] = {
    "status": N_("Who has reported"),
    "remind": N_("Remind the late ones"),
    "review": N_("Check a report"),
    "digest": N_("Digest"),
    "broadcast": N_("Send an announcement"),
    "broadcasts": N_("Announcements sent"),
    "invite": N_("Invite someone"),
    "people": N_("People"),
    "export": N_("Export to a spreadsheet"),
    "myreports": N_("My reports"),
    "language": N_("Language"),
}

#: How the admin's overview names a form's period just ended and the one under way.
WHEN: dict[str, tuple[str, str]] = {
    "day": (N_("yesterday"), N_("today")),
    "week": (N_("last week"), N_("this week")),
    "month": (N_("last month"), N_("this month")),
}

#: Each role's menu after the forms the person may fill.
MENUS: dict[str, tuple[str, ...]] = {
    "worker": ("myreports", "language"),
    "coordinator": (
        "status",
        "remind",
        "review",
        "digest",
        "broadcast",
        "invite",
        "people",
        "export",
        "language",
    ),
    "admin": (
        "status",
        "digest",
        "broadcast",
        "broadcasts",
        "invite",
        "people",
        "export",
        "language",
    ),
}


def _options(ctx: Context) -> list[tuple[str, str]]:
    assert ctx.person is not None
    options = [
        (form.title.get(ctx.language), FORM + form.id)
        for form in ctx.services.forms.values()
        if may_fill(ctx.person, ctx.organization, form)
    ]
    options += [
        (ctx._(LABELS[command]), command)
        for command in MENUS.get(ctx.person.role, MENUS["worker"])
        if may(ctx.person, command)
    ]
    return options


def show(ctx: Context, intro: str | None = None) -> None:
    assert ctx.person is not None
    lines = [intro or ctx._("What would you like to do?")]
    if ctx.person.role == "coordinator" and ctx.group is not None:
        lines[:0] = _group_at_a_glance(ctx)
    elif ctx.person.role == "admin":
        lines[:0] = _network_at_a_glance(ctx)
    ctx.state.flow = Flow.MENU
    ctx.say("\n\n".join(lines), _options(ctx))


def chosen(ctx: Context) -> None:
    choice = ctx.choice or ""
    offered = {value for _, value in _options(ctx)}
    if choice not in offered:
        show(ctx, ctx._("Please choose one of the options."))
    elif choice.startswith(FORM):
        ctx.run_command(ctx.services.forms[choice[len(FORM) :]].command)
    else:
        ctx.run_command(choice)


def _group_at_a_glance(ctx: Context) -> list[str]:
    """Per scheduled form: the period just ended (how many reported; who is late, or who has
    still to report before it is due) and the period under way (how many reported so far)."""
    assert ctx.group is not None
    if ctx.group.key == NETWORK_GROUP:
        return []
    group = ctx.session.get(Group, ctx.group.id)
    assert group is not None
    today = ctx.now.astimezone(ZoneInfo(group.timezone)).date()
    lines = [ctx._("{group} at a glance:", group=group.names.get(ctx.language, group.key))]
    for form, ended, now in _ended_and_current(ctx, group):
        lines.append("• " + form.title.get(ctx.language))
        for state in (ended, now):
            line = ctx._(
                "{period}: {actual} of {expected} reported",
                period=period_label(state.period, ctx.tr),
                actual=state.actual,
                expected=len(state.expected),
            )
            if state is ended and state.late(today):
                line += " · " + ctx._("Late: {names}", names=names_of(state.missing, ctx.language))
            elif state is ended and state.missing:
                line += " · " + ctx._(
                    "Still to report: {names}", names=names_of(state.missing, ctx.language)
                )
            lines.append("  " + line)
    return ["\n".join(lines)] if len(lines) > 1 else []


def _ended_and_current(
    ctx: Context, group: Group
) -> Iterator[tuple[FormSpec, Completeness, Completeness]]:
    """Each scheduled form of `group`: completeness of the period just ended and of the one
    under way, in the group's time zone and week."""
    today = ctx.now.astimezone(ZoneInfo(group.timezone)).date()
    for form_id, schedule in schedule_from(group.schedule).forms.items():
        form = ctx.services.forms.get(form_id)
        if form is None:
            continue
        current = period_of(group, schedule, today)
        ended = completeness(ctx.session, group, form, schedule, current.previous())
        now = completeness(ctx.session, group, form, schedule, current, ended.expected)
        yield form, ended, now


def _network_at_a_glance(ctx: Context) -> list[str]:
    """Per active group and scheduled form: how many associations reported of how many, for
    the period just ended and the one under way."""
    groups = ctx.session.exec(
        select(Group).where(Group.active, Group.key != NETWORK_GROUP).order_by(Group.key)
    ).all()
    lines = [ctx._("The network at a glance (associations that reported, of those expected):")]
    for group in groups:
        lines.append("• " + group.names.get(ctx.language, group.key))
        for form, ended, now in _ended_and_current(ctx, group):
            figures = " · ".join(
                ctx._(
                    "{when}: {actual} of {expected}",
                    when=ctx._(when),
                    actual=state.actual,
                    expected=len(state.expected),
                )
                for state, when in zip((ended, now), WHEN[ended.period.kind], strict=True)
            )
            lines.append(
                "  "
                + ctx._("{title}: {figures}", title=form.title.get(ctx.language), figures=figures)
            )
    return ["\n".join(lines)] if groups else []
