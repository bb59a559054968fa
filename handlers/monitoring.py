"""On demand: /status (completeness now), /digest (the latest digest), /remind (nudge the
associations that have not reported, after a confirmation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from zoneinfo import ZoneInfo

from forms.display import period_label
from forms.periods import period_containing
from forms.schema import FormSpec
from handlers.context import Context
from handlers.state import Flow
from monitoring.completeness import Completeness, completeness, period_of
from monitoring.digest import build_digest, digest_text, in_digest
from monitoring.due import due_phrase
from monitoring.monitor import Monitor, digest_chart
from monitoring.reminders import names_of, remind
from outbox.intents import text_of
from storage.models import Group
from storage.network import NETWORK_GROUP
from storage.schedule import FormSchedule, schedule_from


def status(ctx: Context) -> None:
    """Completeness of the current and the previous period, for the person's scope."""
    assert ctx.person is not None and ctx.group is not None and ctx.organization is not None
    if ctx.person.role == "admin" or ctx.group.key == NETWORK_GROUP:
        ctx.say(_network(ctx, "week"))
        return
    group = _group(ctx)
    lines = [
        ctx._("Where reporting stands, {group}:", group=group.names.get(ctx.language, group.key))
    ]
    today = ctx.now.astimezone(ZoneInfo(group.timezone)).date()
    for state in _states(ctx, group):
        title = state.form.title.get(ctx.language)
        period = period_label(state.period, ctx.tr)
        when = text_of(due_phrase(state.due, today), ctx.tr)
        if ctx.person.role == "worker":
            mine = ctx.organization.id in state.reported
            lines.append(
                "• "
                + (
                    ctx._("{title}, {period}: sent", title=title, period=period)
                    if mine
                    else ctx._(
                        "{title}, {period}: not sent yet, {when}",
                        title=title,
                        period=period,
                        when=when,
                    )
                )
            )
            continue
        lines.append(
            "• "
            + ctx._(
                "{title}, {period}: {actual} of {expected} reported, {on_time} on time; {when}",
                title=title,
                period=period,
                actual=state.actual,
                expected=len(state.expected),
                on_time=len(state.on_time),
                when=when,
            )
        )
        if state.missing:
            lines.append(
                "  " + ctx._("No report yet: {names}", names=names_of(state.missing, ctx.language))
            )
    ctx.say("\n".join(lines))


def digest(ctx: Context) -> None:
    """The digest of the latest ended week (and month) of the coordinator's group."""
    assert ctx.person is not None and ctx.group is not None
    if ctx.person.role == "admin" or ctx.group.key == NETWORK_GROUP:
        ctx.say(_network(ctx, "week"))
        return
    group = _group(ctx)
    schedule = schedule_from(group.schedule)
    today = ctx.now.astimezone(ZoneInfo(group.timezone)).date()
    for kind in ("week", "month"):
        if not any(in_digest(s.every, kind) for s in schedule.forms.values()):
            continue
        period = period_containing(kind, today, group.week_start).previous()
        built = build_digest(ctx.session, group, schedule, ctx.services.forms, kind, period, today)
        if built.forms:
            ctx.say(
                digest_text(built, ctx.tr),
                photo=digest_chart(built, ctx.tr, ctx.services.charts_dir),
            )


def remind_late(ctx: Context) -> None:
    """Show who would be nudged, and ask before sending."""
    targets = _unreported(ctx, _group(ctx))
    if not targets:
        ctx.say(ctx._("Every association has reported for the last period. Nobody to remind."))
        return
    lang = ctx.language
    missing: dict[str, list[str]] = {}  # association -> the reports it has not sent
    for state in targets:
        report = ctx._(
            "{title} ({period})",
            title=state.form.title.get(lang),
            period=period_label(state.period, ctx.tr),
        )
        for organization in state.missing:
            missing.setdefault(organization.names.get(lang, organization.key), []).append(report)
    separator = "، " if lang == "ar" else ", "
    ctx.state.flow = Flow.REMIND
    ctx.say(
        "\n".join(
            [
                ctx.tr.ngettext(
                    "Send a reminder now to the workers of {n} association?",
                    "Send a reminder now to the workers of {n} associations?",
                    len(missing),
                )
            ]
            + [
                "• " + ctx._("{association}: {reports}", association=a, reports=separator.join(r))
                for a, r in sorted(missing.items())
            ]
        ),
        [(ctx._("Send the reminders"), "send"), (ctx._("Cancel"), "cancel")],
    )


def remind_chosen(ctx: Context) -> None:
    ctx.state.flow = None
    if ctx.choice != "send":
        ctx.go_menu(ctx._("No reminder was sent."))
        return
    group = _group(ctx)
    today = ctx.now.astimezone(ZoneInfo(group.timezone)).date().isoformat()
    sent = sum(
        remind(ctx.session, group, state, "nudge", ctx.now, key_suffix=f":{today}")
        for state in _unreported(ctx, group)
    )
    ctx.go_menu(
        ctx.tr.ngettext("{n} reminder is on its way.", "{n} reminders are on their way.", sent)
        if sent
        else ctx._("Those associations were already reminded today; nothing more was sent."),
    )


def _group(ctx: Context) -> Group:
    """The person's group as an ORM object, for the monitoring functions that take one."""
    assert ctx.group is not None
    group = ctx.session.get(Group, ctx.group.id)
    assert group is not None
    return group


def _scheduled(ctx: Context, group: Group) -> Iterator[tuple[FormSpec, FormSchedule, date]]:
    """Each scheduled form of the group that exists, with its schedule and the local date."""
    schedule = schedule_from(group.schedule)
    today = ctx.now.astimezone(ZoneInfo(group.timezone)).date()
    for form_id, form_schedule in schedule.forms.items():
        form = ctx.services.forms.get(form_id)
        if form is not None:
            yield form, form_schedule, today


def _states(ctx: Context, group: Group) -> list[Completeness]:
    """Completeness of each scheduled form for its previous and current period."""
    states = []
    for form, form_schedule, today in _scheduled(ctx, group):
        current = period_of(group, form_schedule, today)
        for period in (current.previous(), current):
            states.append(completeness(ctx.session, group, form, form_schedule, period))
    return states


def _unreported(ctx: Context, group: Group) -> list[Completeness]:
    """For each form, its last ended period, if some associations have not reported it."""
    found = []
    for form, form_schedule, today in _scheduled(ctx, group):
        period = period_of(group, form_schedule, today).previous()
        state = completeness(ctx.session, group, form, form_schedule, period)
        if state.missing:
            found.append(state)
    return found


def _network(ctx: Context, kind: str) -> str:
    monitor = Monitor(ctx.connection.engine, ctx.services.forms, ctx.services.charts_dir)
    return monitor.network_text(ctx.session, kind, ctx.now, ctx.tr)
