"""Corrections, review and history of confirmed reports, in the chat.

A worker corrects their own report within the group's correction window (or while a
coordinator's query is open); a coordinator corrects any report of their group and marks it
"checked" or queries it with a comment that the worker receives through the outbox, with a
button to correct it. /history REF shows every change and review mark.

State: `flow` is CORRECT or REVIEW; `correct` / `review` hold the report id and the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import col, select

from forms.answers import Accepted, Given, Rejected, Which, accept_number
from forms.display import how_to_answer, period_label, short_label
from forms.kinds import check, correctable, fixed_buttons, show_value
from forms.periods import Period, local_today, period_from_key
from forms.schema import FieldSpec, FormSpec, expected_input
from forms.summary import answer_line, show_answer, summary_lines
from forms.text import clean_text
from forms.validate import report_problems, visible_fields
from handlers.context import Context
from handlers.state import Correction, CorrectionStep, Flow, Review, ReviewStep
from outbox import intents as say
from outbox.intents import Intent
from storage.models import Group, Person, Report, ReportChange
from storage.outbox import enqueue
from storage.people import PersonRow, group_of
from storage.reports import change_report, recent_reports, report_changes
from storage.schedule import schedule_from

CORRECTED = "corrected"
REVIEWED = "reviewed"
REVIEW_FIELD = "_review"
LISTED = 10


# --- who may do what with a report ---------------------------------------------------------


def may_see(ctx: Context, report: Report) -> bool:
    """Workers see their own reports, coordinators their group's, admins any."""
    person = ctx.person
    if person is None or not person.active:
        return False
    if person.role == "admin":
        return True
    if person.role == "coordinator":
        return ctx.group is not None and report.group_id == ctx.group.id
    return report.person_id == person.id


def _window_problem(ctx: Context, report: Report) -> str | None:
    """Why this person may not correct `report` now, or None if they may."""
    assert ctx.person is not None
    if ctx.person.role != "worker" or report.review == "query":
        return None  # coordinators have no window; an open query may always be answered
    group = ctx.session.get(Group, report.group_id)
    assert group is not None
    days = schedule_from(group.schedule).correction_days
    if ctx.now <= report.submitted_at + timedelta(days=days):
        return None
    return ctx.tr.ngettext(
        "Report {reference} was sent on {date}. A report can be corrected for {n} day after it "
        "is sent; please ask your coordinator to correct it.",
        "Report {reference} was sent on {date}. A report can be corrected for {n} days after it "
        "is sent; please ask your coordinator to correct it.",
        days,
        reference=report.ref,
        date=ctx.tr.datetime(report.submitted_at, group.timezone),
    )


def _find(ctx: Context, reference: str) -> Report | None:
    """The report `reference` if this person may see it; else says so and gives None."""
    typed = reference.strip().upper()
    report = ctx.session.exec(select(Report).where(Report.ref == typed)).first() if typed else None
    if report is None or not may_see(ctx, report):
        ctx.say(
            ctx._(
                "I found no report {reference} among the reports you can see.",
                reference=typed or "?",
            )
        )
        return None
    return report


def _report(ctx: Context, data: Correction | Review | None) -> Report | None:
    report = ctx.session.get(Report, data.report) if data is not None and data.report else None
    if report is None or not may_see(ctx, report):
        return None
    return report


# --- /correct -----------------------------------------------------------------------------


def correct(ctx: Context) -> None:
    """/correct [REF]: choose a report (buttons) or go straight to its fields."""
    if ctx.incoming.argument:
        report = _find(ctx, ctx.incoming.argument)
        if report is not None:
            _open(ctx, report)
        return
    choose_report(ctx)


def offer_after_list(ctx: Context, text: str) -> None:
    """The list of /myreports with a button to correct one of them."""
    ctx.state.flow = Flow.CORRECT
    ctx.state.correct = Correction(step=CorrectionStep.START)
    ctx.say(text, [(ctx._("Correct a report"), "correct"), (ctx._("Menu"), "menu")])


def choose_report(ctx: Context) -> None:
    reports = [r for r in _correctable(ctx) if _window_problem(ctx, r) is None]
    if not reports:
        _leave(ctx, ctx._("There is no report you can correct now."))
        return
    ctx.state.flow = Flow.CORRECT
    ctx.state.correct = Correction(step=CorrectionStep.REPORT)
    ctx.say(
        ctx._("Which report do you want to correct?"),
        [(_report_label(ctx, r), str(r.id)) for r in reports] + [(ctx._("Cancel"), "cancel")],
    )


def _correctable(ctx: Context) -> Sequence[Report]:
    assert ctx.person is not None and ctx.person.id is not None
    if ctx.person.role == "worker":
        return recent_reports(ctx.session, ctx.person.id, LISTED)
    return _recent_visible(ctx)


def correct_step(ctx: Context) -> None:
    """The FLOWS entry of a correction: wherever it stands, take what the person sent."""
    data = ctx.state.correct
    step = data.step if data is not None else None
    choice = ctx.choice
    if choice == "cancel" or (step == CorrectionStep.START and choice == "menu"):
        _leave(ctx, ctx._("Nothing was changed.") if step != CorrectionStep.START else None)
        return
    if step == CorrectionStep.START:
        if choice == "correct":
            choose_report(ctx)
        else:
            _leave(ctx)
        return
    if step == CorrectionStep.REPORT:
        chosen = ctx.session.get(Report, _an_id(choice)) if _an_id(choice) else None
        if chosen is None or not may_see(ctx, chosen):
            choose_report(ctx)
        else:
            _open(ctx, chosen)
        return
    report = _report(ctx, data)
    if report is None:
        _leave(ctx, ctx._("That report is no longer available."))
        return
    if step == CorrectionStep.FIELD:
        _field_chosen(ctx, report)
    elif step == CorrectionStep.WHICH:
        _which_chosen(ctx, report)
    elif step == CorrectionStep.CONFIRM:
        _confirm_chosen(ctx, report)
    else:
        _value_given(ctx, report)


def _open(ctx: Context, report: Report) -> None:
    problem = _window_problem(ctx, report)
    if problem is not None:
        _leave(ctx, problem)
        return
    ctx.state.flow = Flow.CORRECT
    ctx.state.correct = Correction(step=CorrectionStep.FIELD, report=report.id)
    _ask_field(ctx, report)


def _ask_field(ctx: Context, report: Report, problem: str | None = None) -> None:
    form = _form(ctx, report)
    period = _period(ctx, report, report.period)
    answers = _corrected(ctx, report)
    options = [
        (
            answer_line(spec, answers.get(spec.name), ctx.tr, period, _currency(ctx, report), None),
            spec.name,
        )
        for spec in _visible(form, answers)
    ]
    lines = [problem] if problem else []
    lines.append(
        ctx._(
            "{reference}, {title}. Which answer do you want to correct?",
            reference=report.ref,
            title=form.title.get(ctx.language),
        )
    )
    _correction(ctx).step = CorrectionStep.FIELD
    ctx.say("\n".join(lines), options + [(ctx._("Cancel"), "cancel")])


def _field_chosen(ctx: Context, report: Report) -> None:
    form = _form(ctx, report)
    names = {spec.name: spec for spec in _visible(form, _corrected(ctx, report))}
    spec = names.get(ctx.choice or "")
    if spec is None:
        _ask_field(ctx, report, ctx._("Please choose an answer with the buttons."))
        return
    label = short_label(spec, ctx.language)
    if spec.type == "period":
        _ask_field(
            ctx,
            report,
            ctx._(
                "The period of a report cannot be corrected. Send a new "
                "report for the right period instead."
            ),
        )
    elif spec.type == "photo":
        _ask_field(ctx, report, ctx._("Photos cannot be corrected."))
    elif not correctable(spec) or _decides_others(form, spec):
        _ask_field(
            ctx,
            report,
            ctx._(
                "“{question}” decides which other questions are asked, "
                "so it cannot be corrected on its own.",
                question=label,
            )
            if _decides_others(form, spec)
            else ctx._("“{question}” cannot be corrected here.", question=label),
        )
    else:
        data = _correction(ctx)
        data.step, data.field = CorrectionStep.VALUE, spec.name
        _ask_value(ctx, report, spec)


def _ask_value(ctx: Context, report: Report, spec: FieldSpec, problem: str | None = None) -> None:
    _correction(ctx).step = CorrectionStep.VALUE
    currency = _currency(ctx, report)
    current = show_value(
        spec, report.answers.get(spec.name), ctx.tr, _period(ctx, report, report.period), currency
    )
    lines = [problem] if problem else []
    lines.append(
        ctx._(
            "{question}\nCurrent answer: {answer}\nSend the correct answer.",
            question=spec.label.get(ctx.language),
            answer=current,
        )
    )
    how = how_to_answer(spec, ctx.tr, currency)
    if how:
        lines.append(how)
    options = fixed_buttons(spec, ctx.tr)
    if not spec.required and report.answers.get(spec.name) is not None:
        options.append((ctx._("Remove the answer"), "remove"))
    options.append((ctx._("Cancel"), "cancel"))
    expect = expected_input(spec.type)
    ctx.say("\n".join(lines), options, expect=expect, columns=2 if len(options) > 3 else 1)


def _value_given(ctx: Context, report: Report) -> None:
    spec = _field(ctx, report)
    if spec is None:
        _ask_field(ctx, report)
        return
    choice = ctx.choice
    if choice == "remove" and not spec.required:
        _ask_confirm(ctx, report, spec, None)
        return
    if ctx.incoming.photo is not None:
        _ask_value(ctx, report, spec, ctx._("A photo is not expected here."))
        return
    location = ctx.incoming.location
    given = Given(
        text=ctx.incoming.text,
        choice=choice,
        location=(location.latitude, location.longitude) if location else None,
    )
    result = check(spec, given, ctx.tr, _today(ctx, report), _currency(ctx, report))
    if isinstance(result, Accepted):
        _ask_confirm(ctx, report, spec, result.value, result.typed)
    elif isinstance(result, Which):
        data = _correction(ctx)
        data.step = CorrectionStep.WHICH
        data.candidates, data.unit = [str(c) for c in result.candidates], result.unit
        _ask_which(ctx)
    else:
        _ask_value(ctx, report, spec, result.message)


def _ask_which(ctx: Context) -> None:
    first, second = (Decimal(c) for c in _correction(ctx).candidates or ())
    ctx.say(
        ctx._("Did you mean {first} or {second}?", first=first, second=second),
        [(ctx.tr.number(first), "0"), (ctx.tr.number(second), "1")],
    )


def _which_chosen(ctx: Context, report: Report) -> None:
    data = _correction(ctx)
    spec = _field(ctx, report)
    choice = ctx.choice
    if spec is None:
        _ask_field(ctx, report)
        return
    if choice not in ("0", "1") or not data.candidates:
        if ctx.incoming.text and ctx.incoming.choice is None:  # a new number: a new answer
            data.step = CorrectionStep.VALUE
            _value_given(ctx, report)
        else:
            _ask_which(ctx)
        return
    value = Decimal(data.candidates[int(choice)])
    unit, data.candidates, data.unit = data.unit, None, None
    result = accept_number(spec, value, unit, ctx.tr, _currency(ctx, report))
    if isinstance(result, Rejected):
        _ask_value(ctx, report, spec, result.message)
    elif isinstance(result, Accepted):
        _ask_confirm(ctx, report, spec, result.value, result.typed)


def _ask_confirm(
    ctx: Context, report: Report, spec: FieldSpec, value: Any, typed: str | None = None
) -> None:
    """Keep `value` as a pending correction of `spec`, then show every pending one."""
    data = _correction(ctx)
    data.pending[spec.name] = value
    if typed:
        data.typed[spec.name] = typed
    else:
        data.typed.pop(spec.name, None)
    _show_pending(ctx, report)


def _show_pending(ctx: Context, report: Report) -> None:
    """The corrections not saved yet, old → new, and what the whole report would break: a
    hard rule is fixed by correcting another answer before saving, a soft one is shown."""
    data = _correction(ctx)
    data.step = CorrectionStep.CONFIRM
    form = _form(ctx, report)
    period = _period(ctx, report, report.period)
    currency = _currency(ctx, report)
    pending = data.pending
    lines = [
        ctx._(
            "Correct {reference}, {question}\nfrom: {old}\nto: {new}?",
            reference=report.ref,
            question=short_label(spec, ctx.language),
            old=show_value(spec, report.answers.get(spec.name), ctx.tr, period, currency),
            new=show_answer(
                spec,
                pending[spec.name],
                ctx.tr,
                period,
                currency,
                data.typed.get(spec.name),
            ),
        )
        for spec in form.fields
        if spec.name in pending
    ]
    problems = report_problems(form, _corrected(ctx, report))
    lines += [f"⚠️ {message}" for message in problems.messages(ctx.tr)]
    options = [] if problems.blocking else [(ctx._("Save the correction"), "save")]
    if problems.blocking:
        lines.append(ctx._("Please correct another answer too, so that the report holds."))
    options += [(ctx._("Correct another answer"), "more"), (ctx._("Cancel"), "cancel")]
    ctx.say("\n".join(lines), options)


def _confirm_chosen(ctx: Context, report: Report) -> None:
    pending = _correction(ctx).pending
    if ctx.choice == "more":
        _ask_field(ctx, report)
        return
    form = _form(ctx, report)
    answers = _corrected(ctx, report)
    if not pending or ctx.choice != "save" or report_problems(form, answers).blocking:
        if pending:
            _show_pending(ctx, report)
        else:
            _ask_field(ctx, report)
        return
    problem = _window_problem(ctx, report)  # the window may have closed since the question
    if problem is not None:
        _leave(ctx, problem)
        return
    assert ctx.person is not None and ctx.person.id is not None
    owner = report.person_id
    period = _period(ctx, report, report.period)
    currency = _currency(ctx, report)
    changed = [spec for spec in form.fields if spec.name in pending]
    change_report(ctx.session, report, answers, ctx.person.id, ctx.now, reason=CORRECTED)
    report.person_id = owner  # a correction does not make the report the corrector's
    ctx.session.add(report)
    if report.review == "query" and changed:
        _tell_querier(ctx, report, changed[0])
    _leave(
        ctx,
        "\n".join(
            ctx._(
                "Corrected. {reference}: {question} is now {answer}.",
                reference=report.ref,
                question=short_label(spec, ctx.language),
                answer=show_value(spec, answers.get(spec.name), ctx.tr, period, currency),
            )
            for spec in changed
        ),
    )


def _corrected(ctx: Context, report: Report) -> dict[str, Any]:
    """The report's answers with the pending corrections."""
    answers = dict(report.answers)
    if ctx.state.correct is not None:
        answers.update(ctx.state.correct.pending)
    return answers


def _currency(ctx: Context, report: Report) -> str | None:
    group = ctx.session.get(Group, report.group_id)
    return group.currency if group is not None else None


def show_where(ctx: Context) -> None:
    """After a refused button, show again what the correction or review waits for."""
    flow = ctx.state.flow
    correction, reviewing = ctx.state.correct, ctx.state.review
    if flow == Flow.CORRECT and correction is not None and (report := _report(ctx, correction)):
        spec = _field(ctx, report)
        step = correction.step
        if step == CorrectionStep.WHICH:
            _ask_which(ctx)
        elif step == CorrectionStep.CONFIRM and correction.pending:
            _show_pending(ctx, report)
        elif step in (CorrectionStep.VALUE, CorrectionStep.CONFIRM) and spec is not None:
            _ask_value(ctx, report, spec)
        else:
            _ask_field(ctx, report)
    elif flow == Flow.CORRECT:
        choose_report(ctx)
    elif flow == Flow.REVIEW and reviewing is not None and (report := _report(ctx, reviewing)):
        if reviewing.step == ReviewStep.COMMENT:
            _ask_comment(ctx, report)
        else:
            _show_review(ctx, report)
    elif flow == Flow.REVIEW:
        review(ctx)
    else:
        _leave(ctx)


# --- /review ------------------------------------------------------------------------------


def review(ctx: Context) -> None:
    """/review [REF]: recent reports of the group, newest first, or straight to one report."""
    if ctx.incoming.argument:
        report = _find(ctx, ctx.incoming.argument)
        if report is not None:
            _show_review(ctx, report)
        return
    reports = _recent_visible(ctx)
    if not reports:
        _leave(ctx, ctx._("Your group has no report yet."))
        return
    ctx.state.flow = Flow.REVIEW
    ctx.state.review = Review(step=ReviewStep.REPORT)
    ctx.say(
        ctx._("Which report do you want to review?"),
        [(_report_label(ctx, r, with_review=True), str(r.id)) for r in reports]
        + [(ctx._("Cancel"), "cancel")],
    )


def review_step(ctx: Context) -> None:
    data = ctx.state.review
    step = data.step if data is not None else None
    choice = ctx.choice
    if choice == "cancel":
        _leave(ctx, ctx._("Nothing was changed."))
        return
    if step == ReviewStep.REPORT:
        chosen = ctx.session.get(Report, _an_id(choice)) if _an_id(choice) else None
        if chosen is None or not may_see(ctx, chosen):
            review(ctx)
        else:
            _show_review(ctx, chosen)
        return
    report = _report(ctx, data)
    if report is None:
        _leave(ctx, ctx._("That report is no longer available."))
        return
    if step == ReviewStep.COMMENT:
        comment = clean_text(ctx.incoming.text or "")
        if ctx.incoming.choice is not None or not comment or comment.startswith("/"):
            _ask_comment(ctx, report)
        else:
            _mark(ctx, report, "query", comment[:1000])
        return
    if choice == "checked":
        _mark(ctx, report, "checked", None)
    elif choice == "query":
        _ask_comment(ctx, report)
    elif choice == "correct":
        _open(ctx, report)
    elif choice == "history":
        ctx.state.flow = None
        ctx.state.review = None
        ctx.say(history_text(ctx, report))
    else:
        _show_review(ctx, report)


def _show_review(ctx: Context, report: Report) -> None:
    form = _form(ctx, report)
    group = ctx.session.get(Group, report.group_id)
    assert group is not None
    submitter = ctx.session.get(Person, report.person_id)
    lines = [
        ctx._(
            "{reference}, {title}, sent by {name} on {date}.",
            reference=report.ref,
            title=form.title.get(ctx.language),
            name=_name(submitter),
            date=ctx.tr.datetime(report.submitted_at, group.timezone),
        )
    ]
    lines += summary_lines(
        form,
        report.answers,
        ctx.tr,
        _period(ctx, report, report.period),
        _currency(ctx, report),
    )
    lines.append(_review_line(ctx, report.review, report.review_comment))
    ctx.state.flow = Flow.REVIEW
    ctx.state.review = Review(step=ReviewStep.ACTION, report=report.id)
    ctx.say(
        "\n".join(lines),
        [
            (ctx._("Mark as checked"), "checked"),
            (ctx._("Query it"), "query"),
            (ctx._("Correct it"), "correct"),
            (ctx._("History"), "history"),
            (ctx._("Cancel"), "cancel"),
        ],
        columns=2,
    )


def _ask_comment(ctx: Context, report: Report) -> None:
    if ctx.state.review is None:
        raise KeyError("review")  # as the untyped state did: asked only within a review
    ctx.state.review.step = ReviewStep.COMMENT
    submitter = ctx.session.get(Person, report.person_id)
    ctx.say(
        ctx._(
            "Type your question about {reference}; {name} will receive it.",
            reference=report.ref,
            name=_name(submitter),
        ),
        [(ctx._("Cancel"), "cancel")],
        expect="text",
    )


def _mark(ctx: Context, report: Report, review: str, comment: str | None) -> None:
    """Record the review mark on the report and in its audit trail; send a query on."""
    assert ctx.person is not None and ctx.person.id is not None and report.id is not None
    change = ReportChange(
        report_id=report.id,
        person_id=ctx.person.id,
        changed_at=ctx.now,
        reason=REVIEWED,
        field=REVIEW_FIELD,
        old_value={"review": report.review, "comment": report.review_comment},
        new_value={"review": review, "comment": comment},
    )
    report.review, report.review_comment = review, comment
    ctx.session.add(report)
    ctx.session.add(change)
    ctx.session.flush()
    if review == "checked":
        _leave(ctx, ctx._("{reference} is marked as checked.", reference=report.ref))
        return
    submitter = ctx.session.get(Person, report.person_id)
    if submitter is None or submitter.id is None or submitter.id == ctx.person.id:
        _leave(ctx, ctx._("{reference} is marked as queried.", reference=report.ref))
        return
    group = ctx.session.get(Group, report.group_id)
    assert group is not None
    form = ctx.services.forms.get(report.form_id)
    title = say.localized(form.title.model_dump()) if form else report.form_id
    enqueue(
        ctx.session,
        person_id=submitter.id,
        kind="query",
        dedupe_key=f"query:{report.id}:{change.id}",
        intent=Intent.of(
            say.gettext(
                "{name} has a question about your report {reference} ({title}):\n"
                "{comment}\nYou can answer by correcting the report.",
                name=_name(ctx.person),
                reference=report.ref,
                title=title,
                comment=comment,
            ),
            options=((say.gettext("Correct it"), f"go:correct {report.ref}"),),
            digits=group.digits,
        ),
        language=submitter.language or group.language,
        now=ctx.now,
    )
    _leave(
        ctx,
        ctx._(
            "Your question about {reference} was sent to {name}.",
            reference=report.ref,
            name=_name(submitter),
        ),
    )


def _tell_querier(ctx: Context, report: Report, spec: FieldSpec) -> None:
    """The coordinator who queried `report` learns that it was corrected, to review it again."""
    assert report.id is not None and ctx.person is not None
    marks = [
        c
        for c in report_changes(ctx.session, report.id)
        if c.field == REVIEW_FIELD and (c.new_value or {}).get("review") == "query"
    ]
    querier = ctx.session.get(Person, marks[-1].person_id) if marks else None
    if querier is None or querier.id is None or querier.id == ctx.person.id or not querier.active:
        return
    group = group_of(ctx.session, querier) or ctx.session.get(Group, report.group_id)
    assert group is not None
    question = {language: short_label(spec, language) for language in ("ar", "en", "fr")}
    enqueue(
        ctx.session,
        person_id=querier.id,
        kind="query",
        dedupe_key=f"corrected:{report.id}:{marks[-1].id}:{spec.name}:{ctx.now.isoformat()}",
        intent=Intent.of(
            say.gettext(
                "{name} corrected {reference} after your question: {question}.",
                name=_name(ctx.person),
                reference=report.ref,
                question=say.localized(question),
            ),
            options=((say.gettext("Review it"), f"go:review {report.ref}"),),
            digits=group.digits,
        ),
        language=querier.language or group.language,
        now=ctx.now,
    )


# --- /history -----------------------------------------------------------------------------


def history(ctx: Context) -> None:
    """/history REF: every change of a report, with who, when, and old -> new."""
    if not ctx.incoming.argument:
        ctx.say(
            ctx._(
                "Send /history followed by the reference of a report, for example /history REC-12."
            )
        )
        return
    report = _find(ctx, ctx.incoming.argument)
    if report is not None:
        ctx.say(history_text(ctx, report))


def history_text(ctx: Context, report: Report) -> str:
    assert report.id is not None
    form = _form(ctx, report)
    group = ctx.session.get(Group, report.group_id)
    assert group is not None
    changes = report_changes(ctx.session, report.id)
    names = _names(ctx, {c.person_id for c in changes})
    lines = [
        ctx._(
            "History of {reference}, {title}:",
            reference=report.ref,
            title=form.title.get(ctx.language),
        ),
        ctx._("Sent on {date}.", date=ctx.tr.datetime(report.submitted_at, group.timezone)),
    ]
    if not changes:
        lines.append(ctx._("No change since it was sent."))
    for change in changes:
        when = ctx.tr.datetime(change.changed_at, group.timezone)
        who = names.get(change.person_id, "?")
        if change.field == REVIEW_FIELD:
            new = change.new_value or {}
            what = _review_line(ctx, new.get("review"), new.get("comment"))
        else:
            spec = next((f for f in form.fields if f.name == change.field), None)
            label = short_label(spec, ctx.language) if spec else change.field
            what = ctx._(
                "{question}: {old} → {new} ({reason})",
                question=label,
                old=_shown(ctx, report, spec, change.old_value),
                new=_shown(ctx, report, spec, change.new_value),
                reason=_reason(ctx, change.reason),
            )
        lines.append(f"• {when} · {who}: {what}")
    return "\n".join(lines)


def _shown(ctx: Context, report: Report, spec: FieldSpec | None, value: Any) -> str:
    if spec is None:
        return str(value)
    period = _period(ctx, report, value if spec.type == "period" else report.period)
    return show_value(spec, value, ctx.tr, period, _currency(ctx, report))


def _reason(ctx: Context, reason: str) -> str:
    if reason == CORRECTED:
        return ctx._("corrected")
    if reason == "replaced":
        return ctx._("replaced by a new report")
    return reason


def _review_line(ctx: Context, review: str | None, comment: str | None) -> str:
    if review == "checked":
        return ctx._("Review: checked")
    if review == "query":
        return ctx._("Review: query: {comment}", comment=comment or "")
    return ctx._("Review: not reviewed yet")


# --- helpers ------------------------------------------------------------------------------


def _leave(ctx: Context, message: str | None = None) -> None:
    ctx.state.flow = None
    ctx.state.correct = None
    ctx.state.review = None
    ctx.go_menu(message)


def _recent_visible(ctx: Context) -> Sequence[Report]:
    """The latest reports this coordinator (their group) or admin (any) can see."""
    assert ctx.person is not None
    query = select(Report)
    if ctx.person.role != "admin":
        assert ctx.group is not None
        query = query.where(Report.group_id == ctx.group.id)
    return ctx.session.exec(
        query.order_by(col(Report.submitted_at).desc(), col(Report.id).desc()).limit(LISTED)
    ).all()


def _report_label(ctx: Context, report: Report, with_review: bool = False) -> str:
    form = ctx.services.forms.get(report.form_id)
    title = form.title.get(ctx.language) if form else report.form_id
    label = f"{report.ref} · {title}"
    period = _period(ctx, report, report.period)
    if period is not None:
        label += f" · {period_label(period, ctx.tr)}"
    if with_review and report.review:
        label += " · " + ("✓" if report.review == "checked" else "?")
    return label


def _an_id(choice: str | None) -> int | None:
    """A report id from a button, or None for anything else."""
    if choice is None or not (choice.isascii() and choice.isdigit() and len(choice) <= 18):
        return None
    return int(choice)


def _form(ctx: Context, report: Report) -> FormSpec:
    return ctx.services.forms[report.form_id]


def _correction(ctx: Context) -> Correction:
    """The correction under way (the router only comes here with one)."""
    if ctx.state.correct is None:
        raise KeyError("correct")  # as the untyped state did
    return ctx.state.correct


def _field(ctx: Context, report: Report) -> FieldSpec | None:
    name = ctx.state.correct.field if ctx.state.correct is not None else None
    return next((f for f in _form(ctx, report).fields if f.name == name), None)


_visible = visible_fields


def _decides_others(form: FormSpec, spec: FieldSpec) -> bool:
    return any(f.when is not None and f.when.field == spec.name for f in form.fields)


def _period(ctx: Context, report: Report, key: Any) -> Period | None:
    form = ctx.services.forms.get(report.form_id)
    group = ctx.session.get(Group, report.group_id)
    if form is None or form.period == "none" or not isinstance(key, str) or group is None:
        return None
    return period_from_key(form.period, key, group.week_start)


def _today(ctx: Context, report: Report) -> Any:
    group = ctx.session.get(Group, report.group_id)
    assert group is not None
    return local_today(ctx.now, group.timezone)


def _name(person: Person | PersonRow | None) -> str:
    return person.display_name if person is not None and person.display_name else "?"


def _names(ctx: Context, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    people = ctx.session.exec(select(Person).where(col(Person.id).in_(ids))).all()
    return {p.id: _name(p) for p in people if p.id is not None}
