"""/export: the reports as a spreadsheet, sent back in the chat.

Coordinators export their own group; admins the whole network or one group. The person
chooses the form (or all forms), the period and the format; the file is written by
`exports.export` (typed cells, headers in the person's language, right-to-left in Arabic).
"""

from __future__ import annotations

import secrets
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from exports import export as write_export
from handlers.context import Context
from handlers.state import ExportChoice, ExportStep, Flow
from storage.models import Group
from storage.network import NETWORK_GROUP

ALL = "*"
NETWORK_ZONE = "Africa/Cairo"
STALE_EXPORT_SECONDS = 24 * 3600  # longer than the outbox retries an unsent one
PERIODS = ("this_month", "last_month", "last_3_months", "everything")


def start(ctx: Context) -> None:
    assert ctx.person is not None and ctx.group is not None
    ctx.state.flow = Flow.EXPORT
    if ctx.person.role == "admin":
        ctx.state.export = ExportChoice(step=ExportStep.GROUP)
        groups = ctx.session.exec(
            select(Group)
            .where(col(Group.active).is_(True), Group.key != NETWORK_GROUP)
            .order_by(col(Group.id))
        ).all()
        ctx.say(
            ctx._("Export the reports of which group?"),
            [(ctx._("All groups"), f"g:{ALL}")]
            + [(g.names.get(ctx.language) or g.key, f"g:{g.id}") for g in groups]
            + [(ctx._("Cancel"), "cancel:")],
        )
        return
    ctx.state.export = ExportChoice(step=ExportStep.FORM, group=ctx.group.id)
    _ask_form(ctx)


def chosen(ctx: Context) -> None:
    assert ctx.person is not None
    kind, _, value = (ctx.choice or "").partition(":")
    chosen = ctx.state.export
    if chosen is None or kind == "cancel":
        _finish(ctx, ctx._("Nothing was exported."))
    elif kind == "g" and ctx.person.role == "admin" and (value == ALL or _group(ctx, value)):
        chosen.group = None if value == ALL else int(value)
        chosen.step = ExportStep.FORM
        _ask_form(ctx)
    elif (
        kind == "f"
        and chosen.step != ExportStep.GROUP
        and (value == ALL or value in ctx.services.forms)
    ):
        chosen.form, chosen.step = value, ExportStep.PERIOD
        ctx.say(
            ctx._("Which period?"),
            [
                (ctx._("This month"), "p:this_month"),
                (ctx._("Last month"), "p:last_month"),
                (ctx._("Last 3 months"), "p:last_3_months"),
                (ctx._("Everything"), "p:everything"),
                (ctx._("Cancel"), "cancel:"),
            ],
        )
    elif kind == "p" and chosen.form is not None and value in PERIODS:
        chosen.period, chosen.step = value, ExportStep.FORMAT
        formats = [("XLSX (Excel)", "x:xlsx")]
        if chosen.form != ALL:
            formats.append(("CSV", "x:csv"))
        ctx.say(ctx._("Which file format?"), formats + [(ctx._("Cancel"), "cancel:")])
    elif (
        kind == "x"
        and chosen.period is not None
        and value in ("xlsx", "csv")
        and not (value == "csv" and chosen.form == ALL)
    ):
        _send(ctx, chosen, value)
    else:
        _finish(ctx, ctx._("Please choose one of the options. Send /export to start again."))


def _ask_form(ctx: Context) -> None:
    ctx.say(
        ctx._("Export which form?"),
        [(form.title.get(ctx.language), f"f:{form.id}") for form in ctx.services.forms.values()]
        + [(ctx._("All forms"), f"f:{ALL}"), (ctx._("Cancel"), "cancel:")],
    )


def _send(ctx: Context, chosen: ExportChoice, fmt: str) -> None:
    assert ctx.person is not None and ctx.group is not None
    group_id = chosen.group
    if ctx.person.role != "admin":
        group_id = ctx.group.id  # a coordinator's export never leaves their group
    group = _group(ctx, str(group_id)) if group_id is not None else None
    if group_id is not None and group is None:
        _finish(ctx, ctx._("Please choose one of the options. Send /export to start again."))
        return
    zone = group.timezone if group is not None else NETWORK_ZONE
    today = ctx.now.astimezone(ZoneInfo(zone)).date()
    date_from, date_to = period_dates(str(chosen.period), today)
    form_id = None if chosen.form == ALL else str(chosen.form)
    folder = ctx.services.charts_dir.parent / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _forget_stale_exports(folder)
    name = "-".join(
        [
            form_id or "all-forms",
            group.key if group else "all-groups",
            today.isoformat(),
            secrets.token_hex(3),
        ]
    )
    path = folder / f"{name}.{fmt}"
    count = write_export(
        ctx.session,
        ctx.services.forms,
        form_id,
        ctx.language,
        fmt,
        path,
        group_key=group.key if group else None,
        date_from=date_from,
        date_to=date_to,
    )
    _finish(ctx, None)
    ctx.say(
        ctx.tr.ngettext("{n} report in this file.", "{n} reports in this file.", count),
        document=path,
    )
    ctx.go_menu()


def _forget_stale_exports(folder: Path) -> None:
    """The channel deletes an export once sent; one left behind goes after a day (file
    times are the system's: not the dispatcher's clock)."""
    now = time.time()
    for path in folder.iterdir():
        try:
            if path.is_file() and now - path.stat().st_mtime > STALE_EXPORT_SECONDS:
                path.unlink()
        except OSError:  # another process removed it first
            continue


def period_dates(period: str, today: date) -> tuple[date | None, date | None]:
    """Inclusive first and last day of a period named in PERIODS, as seen on `today`."""
    first_of_month = today.replace(day=1)
    if period == "this_month":
        return first_of_month, today
    if period == "last_month":
        last_day = first_of_month - timedelta(days=1)
        return last_day.replace(day=1), last_day
    if period == "last_3_months":
        start = first_of_month
        for _ in range(2):
            start = (start - timedelta(days=1)).replace(day=1)
        return start, today
    return None, None


def _group(ctx: Context, value: str) -> Group | None:
    group = ctx.session.get(Group, int(value)) if value.isdigit() else None
    return group if group is not None and group.active else None


def _finish(ctx: Context, text: str | None) -> None:
    ctx.state.flow = None
    ctx.state.export = None
    if text:
        ctx.go_menu(text)
