"""/broadcasts: the recent broadcasts of the person's scope with their figures, and a Cancel
button on each one still sending. Admins see every broadcast; a coordinator those made in
their group."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers.context import Context
from handlers.state import Flow
from monitoring.broadcasts import channel_lines
from outbox.intents import text_of
from storage import broadcasts
from storage.broadcasts import COMMON
from storage.models import Broadcast

SNIPPET = 40


def show(ctx: Context, intro: str | None = None) -> None:
    assert ctx.group is not None
    found = broadcasts.recent(ctx.session, _scope(ctx))
    lines = [intro] if intro else []
    if not found:
        ctx.state.flow = None
        lines.append(ctx._("No broadcast yet. Send /broadcast to make one."))
        ctx.say("\n".join(lines))
        return
    lines.append(ctx._("Recent broadcasts:"))
    options = []
    for broadcast in found:
        assert broadcast.id is not None
        figures = broadcasts.figures(ctx.session, broadcast.id)
        lines += ["", _line(ctx, broadcast, figures)]
        if broadcast.status == "sending" and figures.waiting:
            options.append((ctx._("Cancel #{id}", id=broadcast.id), f"cancel:{broadcast.id}"))
    ctx.state.flow = Flow.BROADCASTS if options else None
    ctx.say("\n".join(lines), options or None)


def chosen(ctx: Context) -> None:
    action, _, value = (ctx.choice or "").partition(":")
    broadcast = ctx.session.get(Broadcast, int(value)) if value.isdigit() else None
    if (
        action != "cancel"
        or broadcast is None
        or not broadcasts.in_scope(ctx.session, broadcast, _scope(ctx))
    ):
        ctx.state.flow = None
        ctx.go_menu(ctx._("That choice is not open to you."))
        return
    if broadcast.status != "sending":
        show(ctx, ctx._("Broadcast #{id} is no longer sending.", id=broadcast.id))
        return
    stopped = broadcasts.cancel(ctx.session, broadcast, ctx.now)
    show(
        ctx,
        ctx.tr.ngettext(
            "Broadcast #{id} is cancelled: {n} message will not be sent.",
            "Broadcast #{id} is cancelled: {n} messages will not be sent.",
            stopped,
            id=broadcast.id,
        ),
    )


def _scope(ctx: Context) -> int | None:
    assert ctx.person is not None and ctx.group is not None
    return None if ctx.person.role == "admin" else ctx.group.id


def _line(ctx: Context, broadcast: Broadcast, figures: broadcasts.Figures) -> str:
    assert broadcast.id is not None
    text = broadcasts.text_for(broadcast.texts, ctx.language) or broadcast.texts.get(COMMON, "")
    snippet = text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
    zone = ZoneInfo(ctx.group.timezone if ctx.group else "UTC")
    when = ctx.tr.datetime(broadcast.created_at, zone.key)
    head = f"#{ctx.tr.digits_of(str(broadcast.id))} · {when} · {snippet}"
    if broadcast.status == "cancelled":
        head += " · " + ctx._("cancelled")
    maybe_twice = (
        "\n"
        + ctx.tr.ngettext(
            "{n} message sent again after a lost answer or a restart: it may have arrived twice",
            "{n} messages sent again after a lost answer or a restart: they may have arrived twice",
            figures.resent,
        )
        if figures.resent
        else ""
    )
    return (
        head
        + "\n"
        + ctx.tr.ngettext(
            "{n} recipient: {delivered} delivered, {blocked} blocked, {failed} failed, "
            "{waiting} waiting",
            "{n} recipients: {delivered} delivered, {blocked} blocked, {failed} failed, "
            "{waiting} waiting",
            broadcast.recipients,
            delivered=figures.delivered,
            blocked=figures.blocked,
            failed=figures.failed,
            waiting=figures.waiting,
        )
        + maybe_twice
        + "".join(
            "\n" + text_of(line, ctx.tr)
            for line in channel_lines(broadcasts.figures_by_channel(ctx.session, broadcast.id))
        )
    )
