"""A person's recent reports with their reference numbers."""

from __future__ import annotations

from forms.display import period_label
from forms.periods import period_from_key
from handlers.context import Context
from storage.reports import recent_reports


def show(ctx: Context) -> None:
    assert ctx.person is not None and ctx.person.id is not None and ctx.group is not None
    reports = recent_reports(ctx.session, ctx.person.id)
    if not reports:
        ctx.go_menu(ctx._("You have not sent any report yet."))
        return
    lines = [ctx.tr.ngettext("Your last report:", "Your last {n} reports:", len(reports))]
    for report in reports:
        form = ctx.services.forms.get(report.form_id)
        title = form.title.get(ctx.language) if form else report.form_id
        when = ctx.tr.datetime(report.updated_at, ctx.group.timezone)
        if form is not None and form.period != "none" and report.period:
            period = period_label(
                period_from_key(form.period, report.period, ctx.group.week_start), ctx.tr
            )
            lines.append(f"{report.ref} · {title} · {period} · {when}")
        else:
            lines.append(f"{report.ref} · {title} · {when}")
    ctx.offer_corrections("\n".join(lines))
