"""Filling a form: one question at a time, back, skip, a summary, confirm, change or cancel.

The draft lives in the conversation state (the database), so a person can stop and resume
minutes or days later, or after a restart, on any process.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from forms.answers import Accepted, Given, Rejected, Which, accept_number
from forms.display import how_to_answer, period_label, short_label
from forms.kinds import answered_by_typing, check, fixed_buttons
from forms.periods import Period, local_today, period_containing, period_from_key
from forms.schema import FieldSpec, FormSpec, expected_input
from forms.summary import show_answer, summary_lines
from forms.validate import report_problems, visible_fields
from handlers.context import Context
from handlers.permissions import may_fill
from handlers.state import Draft, DraftStep, Flow, PhotoRef, Resume
from storage.reports import ReportRef, add_report, period_report, replace_answers

RESUME_AFTER = timedelta(minutes=30)


def start(ctx: Context, form_id: str) -> None:
    """Open `form_id` for the person, or first offer to finish the one they left."""
    form = ctx.services.forms[form_id]
    if not may_fill(ctx.person, ctx.organization, form):
        ctx.say(ctx._("This form is not for your role or organization."))
        return
    if ctx.state.draft:
        offer_resume(ctx, then=form_id)
        return
    ctx.state.draft = Draft(
        form=form_id, answers={}, path=[], step=DraftStep.ASK, editing=False, touched=ctx.now
    )
    ctx.state.flow = Flow.FORM
    ctx.say(
        ctx._(
            "{title}. Send /back to go back to the previous question, or /cancel to stop.",
            title=form.title.get(ctx.language),
        )
    )
    ask(ctx)


def offer_resume(ctx: Context, then: str | None = None) -> None:
    draft = _draft(ctx)
    form = ctx.services.forms[draft.form]
    ctx.state.flow = Flow.RESUME
    ctx.state.resume = Resume(then=then)
    ctx.say(
        ctx.tr.ngettext(
            "You have an unfinished report, {title}, with {n} answer. Continue where you stopped, "
            "or discard it?",
            "You have an unfinished report, {title}, with {n} answers. Continue where you stopped, "
            "or discard it?",
            len(draft.answers),
            title=form.title.get(ctx.language),
        ),
        [(ctx._("Continue"), "continue"), (ctx._("Discard"), "discard")],
    )


def resume_chosen(ctx: Context) -> None:
    choice = ctx.choice
    then = ctx.state.resume.then if ctx.state.resume else None
    if choice == "continue":
        ctx.state.flow = Flow.FORM
        ctx.state.resume = None
        _draft(ctx).touched = ctx.now
        show_current(ctx)
    elif choice == "discard":
        ctx.state.draft = None
        ctx.state.flow = None
        ctx.state.resume = None
        ctx.say(ctx._("Discarded. Nothing was saved."))
        if then:
            start(ctx, then)
        else:
            ctx.go_menu()
    else:
        offer_resume(ctx, then=then)


def answer(ctx: Context) -> None:
    """Take what the person sent as the answer to wherever the draft stands."""
    draft = _draft(ctx)
    touched, draft.touched = draft.touched, ctx.now
    if (ctx.now - touched > RESUME_AFTER or ctx.reply_unsure) and ctx.incoming.choice is None:
        offer_resume(ctx)  # a typed answer may not be for the question now open
        return
    step = draft.step
    if step == DraftStep.SUMMARY:
        _summary_chosen(ctx)
    elif step == DraftStep.CHANGE:
        _change_chosen(ctx)
    elif step == DraftStep.WHICH:
        _which_chosen(ctx)
    elif step == DraftStep.REPLACE:
        _replace_chosen(ctx)
    else:
        _answer_field(ctx)


def show_current(ctx: Context) -> None:
    """Show again whatever the draft is waiting for."""
    step = _draft(ctx).step
    if step in (DraftStep.SUMMARY, DraftStep.CHANGE):
        summary(ctx)
    elif step == DraftStep.REPLACE:
        _ask_replace(ctx)
    else:
        ask(ctx)


def show_current_after_refusal(ctx: Context) -> None:
    """After a refused button: a question that takes a typed answer is never sent again
    outright. With two copies on screen a person may answer both, and the second answer
    would be taken for the next question. When the person surely has it (the replies to
    their previous message were sent) they are pointed to it; when they may not, they are
    asked to continue, as after a typed answer (`answer`), and an answer typed meanwhile is
    not taken. Questions answered with buttons are shown again: both copies share their
    buttons, and a press is taken once."""
    spec = _current_field(ctx)
    typed = spec is not None and answered_by_typing(spec)
    if _draft(ctx).step != DraftStep.ASK or not typed:
        show_current(ctx)
    elif ctx.reply_unsure:
        offer_resume(ctx)  # the question comes after "Continue", when it surely is the last
    else:
        ctx.say(ctx._("Please answer the last question above."))


def cancel(ctx: Context) -> None:
    if ctx.state.draft is None:
        ctx.say(ctx._("There is nothing to cancel."))
    else:
        ctx.say(ctx._("Cancelled. Nothing was saved."))
    ctx.state.draft = None
    ctx.state.flow = None
    ctx.go_menu()


def back(ctx: Context) -> None:
    draft = _draft(ctx)
    step = draft.step
    if step in (DraftStep.WHICH, DraftStep.REPLACE) or (step == DraftStep.ASK and draft.photos):
        draft.photos = None
        draft.candidates = None
        ask(ctx)
        return
    if draft.editing and step == DraftStep.ASK:
        _restore_before(draft)
        summary(ctx)
        return
    if not draft.path:
        ctx.say(ctx._("This is the first question."))
        ask(ctx)
        return
    previous = draft.path.pop()
    draft.answers.pop(previous, None)
    draft.editing = False
    ask(ctx)


def skip(ctx: Context) -> None:
    draft = _draft(ctx)
    spec = _current_field(ctx)
    if draft.step != DraftStep.ASK or spec is None or spec.required:
        ctx.say(ctx._("This question cannot be skipped."))
        show_current(ctx)
        return
    _accept(ctx, spec, None)


# --- asking -------------------------------------------------------------------------------


def ask(ctx: Context, problem: str | None = None) -> None:
    draft = _draft(ctx)
    spec = _current_field(ctx)
    if spec is None:
        summary(ctx)
        return
    draft.step = DraftStep.ASK
    form = _form(ctx)
    visible = _visible(form, draft.answers)
    position = next((i for i, f in enumerate(visible, 1) if f.name == spec.name), 1)
    lines = [problem] if problem else []
    lines.append(
        ctx._(
            "({position} of {total}) {question}",
            position=position,
            total=len(visible),
            question=spec.label.get(ctx.language),
        )
    )
    if spec.hint:
        lines.append(spec.hint.get(ctx.language))
    how = how_to_answer(spec, ctx.tr, _currency(ctx))
    if how:
        lines.append(how)
    if draft.editing and draft.before and spec.name in draft.before:
        lines.append(
            ctx._(
                "Current answer: {answer}",
                answer=show_answer(
                    spec,
                    draft.before[spec.name],
                    ctx.tr,
                    _period(ctx),
                    _currency(ctx),
                    draft.before_typed,
                ),
            )
        )
    options = _options(ctx, spec)
    if not spec.required and not draft.photos:
        options.append((ctx._("Skip"), "skip"))
    expect = expected_input(spec.type)
    ctx.say("\n".join(lines), options, expect=expect, columns=2 if len(options) > 3 else 1)


def _options(ctx: Context, spec: FieldSpec) -> list[tuple[str, str]]:
    kind = spec.type
    if kind == "multichoice":
        chosen = _draft(ctx).selected or []
        return [
            (("✓ " if c.value in chosen else "") + c.label.get(ctx.language), c.value)
            for c in spec.choices or []
        ] + [(ctx._("Done"), "done")]
    if kind == "period":
        return [(period_label(p, ctx.tr), p.key) for p in _period_choices(ctx)]
    if kind == "photo" and _draft(ctx).photos:
        return [(ctx._("Done"), "done")]
    return fixed_buttons(spec, ctx.tr)


# --- answering ----------------------------------------------------------------------------


def _answer_field(ctx: Context) -> None:
    draft = _draft(ctx)
    spec = _current_field(ctx)
    if spec is None:
        summary(ctx)
        return
    choice = ctx.choice
    if choice == "skip" and not spec.required:
        _accept(ctx, spec, None)
        return
    kind = spec.type
    if kind == "period":
        keys = {p.key: p for p in _period_choices(ctx)}
        if choice in keys:
            _accept(ctx, spec, choice)
        else:
            ask(ctx, ctx._("Please choose the period with the buttons."))
        return
    if kind == "photo":
        _answer_photo(ctx, spec, choice)
        return
    if kind == "multichoice":
        _answer_multichoice(ctx, spec, choice)
        return
    if ctx.incoming.photo is not None:
        ask(ctx, ctx._("A photo is not expected here."))
        return
    location = ctx.incoming.location
    given = Given(
        text=ctx.incoming.text,
        choice=choice,
        location=(location.latitude, location.longitude) if location else None,
    )
    result = check(spec, given, ctx.tr, _today(ctx), _currency(ctx))
    if isinstance(result, Accepted):
        _accept(ctx, spec, result.value, result.typed)
    elif isinstance(result, Which):
        draft.step = DraftStep.WHICH
        draft.candidates = [str(c) for c in result.candidates]
        draft.unit = result.unit
        _ask_which(ctx)
    else:
        ask(ctx, result.message)


def _answer_photo(ctx: Context, spec: FieldSpec, choice: str | None) -> None:
    draft = _draft(ctx)
    photos = draft.photos = draft.photos or []
    photo = ctx.incoming.photo
    if photo is not None:
        photos.append(
            PhotoRef(file_id=photo.file_id) if photo.file_id else PhotoRef(path=photo.path or "")
        )
        if len(photos) >= spec.max_count:
            _accept_photos(ctx, spec, draft)
            return
        ctx.say(
            ctx.tr.ngettext(
                "{n} photo received. Send another, or press Done.",
                "{n} photos received. Send another, or press Done.",
                len(photos),
            ),
            [(ctx._("Done"), "done")],
            expect="photo",
        )
        return
    if choice == "done" and photos:
        _accept_photos(ctx, spec, draft)
        return
    if not photos:
        draft.photos = None
    ask(ctx, ctx._("Please send a photo."))


def _accept_photos(ctx: Context, spec: FieldSpec, draft: Draft) -> None:
    """The photos received become the answer, as the platform's references."""
    photos, draft.photos = draft.photos or [], None
    _accept(ctx, spec, [photo.model_dump(exclude_none=True) for photo in photos])


def _answer_multichoice(ctx: Context, spec: FieldSpec, choice: str | None) -> None:
    draft = _draft(ctx)
    selected = draft.selected = draft.selected or []
    values = [c.value for c in spec.choices or []]
    if choice in values:
        if choice in selected:
            selected.remove(choice)
        else:
            selected.append(choice)
        ask(ctx)
    elif choice == "done" and (selected or not spec.required):
        ordered = [v for v in values if v in selected]
        draft.selected = None
        _accept(ctx, spec, ordered or None)
    else:
        ask(ctx, ctx._("Choose one or more options, then press Done."))


def _ask_which(ctx: Context) -> None:
    first, second = (Decimal(c) for c in _draft(ctx).candidates or ())
    ctx.say(
        ctx._("Did you mean {first} or {second}?", first=first, second=second),
        [(ctx.tr.number(first), "0"), (ctx.tr.number(second), "1")],
        expect="number",  # a newly typed number answers the question again
    )


def _which_chosen(ctx: Context) -> None:
    draft = _draft(ctx)
    spec = _current_field(ctx)
    choice = ctx.choice
    if spec is None or choice not in ("0", "1") or not draft.candidates:
        # A newly typed number is a new answer to the same question.
        if spec is not None and ctx.incoming.text and ctx.incoming.choice is None:
            draft.step = DraftStep.ASK
            _answer_field(ctx)
        else:
            _ask_which(ctx)
        return
    value = Decimal(draft.candidates[int(choice)])
    unit, draft.candidates, draft.unit = draft.unit, None, None
    result = accept_number(spec, value, unit, ctx.tr, _currency(ctx))
    if isinstance(result, Rejected):
        ask(ctx, result.message)
    elif isinstance(result, Accepted):
        _accept(ctx, spec, result.value, result.typed)


def _accept(ctx: Context, spec: FieldSpec, value: Any, typed: str | None = None) -> None:
    draft = _draft(ctx)
    draft.answers[spec.name] = value
    if typed:
        draft.typed[spec.name] = typed
    else:
        draft.typed.pop(spec.name, None)
    draft.before = None  # the changed answer is given: /back no longer restores it
    draft.before_typed = None
    if spec.name in draft.path:
        draft.path.remove(spec.name)
    draft.path.append(spec.name)
    _prune(ctx)
    if spec.type == "period" and _existing(ctx) is not None:
        _ask_replace(ctx)
        return
    _next(ctx)


def _next(ctx: Context) -> None:
    if _current_field(ctx) is None:
        summary(ctx)
    else:
        ask(ctx)


# --- replacing a period report ------------------------------------------------------------


def _existing(ctx: Context) -> ReportRef | None:
    form = _form(ctx)
    period = _draft(ctx).answers.get("period")
    if form.period == "none" or period is None or ctx.organization is None:
        return None
    report = period_report(ctx.connection, form.id, ctx.organization.id, period)
    if report is None or report.id == _draft(ctx).replaces:
        return None
    return report


def _ask_replace(ctx: Context) -> None:
    draft = _draft(ctx)
    report = _existing(ctx)
    if report is None:
        _next(ctx)
        return
    draft.step = DraftStep.REPLACE
    ctx.say(
        ctx._(
            "A report for {period} already exists ({reference}). Replace it with this one?",
            period=period_label(_period(ctx), ctx.tr),
            reference=report.ref,
        ),
        [(ctx._("Yes, replace it"), "yes"), (ctx._("No, keep the old one"), "no")],
    )


def _replace_chosen(ctx: Context) -> None:
    draft = _draft(ctx)
    choice = ctx.choice
    if choice == "yes":
        report = _existing(ctx)
        draft.replaces = report.id if report else None
        draft.step = DraftStep.ASK
        confirming, draft.confirming = draft.confirming, False
        if confirming:
            _save(ctx)
        else:
            _next(ctx)
    elif choice == "no":
        ctx.state.draft = None
        ctx.state.flow = None
        ctx.say(ctx._("The old report stays as it was; these new answers were not saved."))
        ctx.go_menu()
    else:
        _ask_replace(ctx)


# --- summary, change, confirm --------------------------------------------------------------


def summary(ctx: Context) -> None:
    """The answers, what is wrong with them, and Confirm only when nothing blocks saving."""
    draft = _draft(ctx)
    draft.step = DraftStep.SUMMARY
    draft.editing = False
    draft.before = None
    draft.before_typed = None
    form = _form(ctx)
    lines = [ctx._("Please check your report: {title}", title=form.title.get(ctx.language))]
    lines += summary_lines(form, draft.answers, ctx.tr, _period(ctx), _currency(ctx), draft.typed)
    problems = report_problems(form, draft.answers)
    messages = problems.messages(ctx.tr)
    if messages:
        lines.append("")
        lines += [f"⚠️ {message}" for message in messages]
    options = [] if problems.blocking else [(ctx._("Confirm and send"), "confirm")]
    options += [(ctx._("Change an answer"), "change"), (ctx._("Cancel"), "cancel")]
    if problems.blocking:
        lines.append(ctx._("Please change the answers above before sending."))
    ctx.say("\n".join(lines), options)


def _summary_chosen(ctx: Context) -> None:
    choice = ctx.choice
    draft = _draft(ctx)
    if choice == "confirm":
        if report_problems(_form(ctx), draft.answers).blocking:
            summary(ctx)  # says what is missing or wrong; nothing is saved
            return
        if _existing(ctx) is not None:
            draft.confirming = True
            _ask_replace(ctx)
            return
        _save(ctx)
    elif choice == "change":
        draft.step = DraftStep.CHANGE
        form = _form(ctx)
        fields = _visible(form, draft.answers)
        ctx.say(
            ctx._("Which answer do you want to change?"),
            [
                (f"{ctx.tr.number(i)}. {short_label(f, ctx.language)}", f.name)
                for i, f in enumerate(fields, 1)
            ],
        )
    elif choice == "cancel":
        cancel(ctx)
    else:
        ctx.say(ctx._("Please confirm, change an answer, or cancel."))
        summary(ctx)


def _change_chosen(ctx: Context) -> None:
    draft = _draft(ctx)
    choice = ctx.choice
    form = _form(ctx)
    names = {f.name for f in _visible(form, draft.answers)}
    if choice is None or choice not in names:
        summary(ctx)
        return
    draft.before = {choice: draft.answers.pop(choice)} if choice in draft.answers else {}
    draft.before_typed = draft.typed.pop(choice, None)
    draft.editing = True
    draft.step = DraftStep.ASK
    ask(ctx)


def _save(ctx: Context) -> None:
    draft = _draft(ctx)
    form = _form(ctx)
    if report_problems(form, draft.answers).blocking:
        summary(ctx)
        return
    person, organization = ctx.person, ctx.organization
    assert person is not None and person.id is not None
    assert organization is not None and organization.id is not None
    answers = dict(draft.answers)
    replaces = draft.replaces
    report = (
        replace_answers(ctx.connection, replaces, answers, person.id, ctx.now, reason="replaced")
        if replaces
        else None
    )
    if report is not None:
        message = ctx._(
            "Saved. It replaces the earlier report; reference {reference}. Thank you!",
            reference=report.ref,
        )
    else:
        report = add_report(
            ctx.connection,
            form_id=form.id,
            prefix=form.prefix,
            group_id=organization.group_id,
            organization_id=organization.id,
            person_id=person.id,
            period=answers.get("period"),
            answers=answers,
            now=ctx.now,
            channel=ctx.incoming.channel,
        )
        message = ctx._(
            "Saved. Your reference number is {reference}. Thank you!", reference=report.ref
        )
    ctx.state.draft = None
    ctx.state.flow = None
    ctx.say(message)
    ctx.go_menu()


# --- helpers ------------------------------------------------------------------------------


def _draft(ctx: Context) -> Draft:
    draft = ctx.state.draft
    if draft is None:
        raise KeyError("draft")  # as the untyped state did: the router only comes with one
    return draft


def _form(ctx: Context) -> FormSpec:
    return ctx.services.forms[_draft(ctx).form]


_visible = visible_fields


def _restore_before(draft: Draft) -> None:
    """Put back the answer that was being changed: /back while changing keeps the old one."""
    before, draft.before = draft.before or {}, None
    draft.answers.update(before)
    typed, draft.before_typed = draft.before_typed, None
    for name in before:
        if typed:
            draft.typed[name] = typed
    draft.selected = None
    draft.photos = None
    draft.editing = False


def _current_field(ctx: Context) -> FieldSpec | None:
    """The first visible field without an answer: the question the draft waits for."""
    answers = _draft(ctx).answers
    return next((f for f in _visible(_form(ctx), answers) if f.name not in answers), None)


def _prune(ctx: Context) -> None:
    """Forget answers to questions that an earlier answer has made irrelevant."""
    draft = _draft(ctx)
    visible = {f.name for f in _visible(_form(ctx), draft.answers)}
    for name in list(draft.answers):
        if name not in visible:
            draft.answers.pop(name)
            if name in draft.path:
                draft.path.remove(name)


def _today(ctx: Context) -> Any:
    assert ctx.group is not None
    return local_today(ctx.now, ctx.group.timezone)


def _period_choices(ctx: Context) -> list[Period]:
    form = _form(ctx)
    assert ctx.group is not None
    current = period_containing(form.period, _today(ctx), ctx.group.week_start)
    return [current, current.previous()]


def _period(ctx: Context) -> Period | None:
    form = _form(ctx)
    key = _draft(ctx).answers.get("period")
    if form.period == "none" or key is None or ctx.group is None:
        return None
    return period_from_key(form.period, key, ctx.group.week_start)


def _currency(ctx: Context) -> str | None:
    return ctx.group.currency if ctx.group is not None else None
