"""Lines that show answers to a person: "Paper: 12 t → 12,000 kg", numbered in a summary."""

from __future__ import annotations

from typing import Any

from forms.display import short_label
from forms.kinds import show_value
from forms.periods import Period
from forms.schema import FieldSpec, FormSpec
from locales import Translator


def show_answer(
    spec: FieldSpec,
    value: Any,
    tr: Translator,
    period: Period | None = None,
    currency: str | None = None,
    typed: str | None = None,
) -> str:
    """`show_value`, after what was typed when it was converted: "12 t → 12,000 kg"."""
    shown = show_value(spec, value, tr, period, currency)
    return f"{typed} → {shown}" if typed else shown


def answer_line(
    spec: FieldSpec,
    value: Any,
    tr: Translator,
    period: Period | None = None,
    currency: str | None = None,
    typed: str | None = None,
) -> str:
    """ "Paper: 12 kg": the short label and the answer, each isolated (FSI…PDI)."""
    return tr.gettext(
        "{label}: {answer}",
        label=short_label(spec, tr.language),
        answer=show_answer(spec, value, tr, period, currency, typed),
    )


def summary_lines(
    form: FormSpec,
    answers: dict[str, Any],
    tr: Translator,
    period: Period | None,
    currency: str | None = None,
    typed: dict[str, str] | None = None,
) -> list[str]:
    """One numbered line per answered field, in form order."""
    lines = []
    number = 0
    for spec in form.fields:
        if spec.name not in answers:
            continue
        number += 1
        line = answer_line(
            spec, answers[spec.name], tr, period, currency, (typed or {}).get(spec.name)
        )
        lines.append(f"{tr.number(number)}. {line}")
    return lines
