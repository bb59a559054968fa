"""Showing answers and periods to a person, in their language."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from forms.periods import Period
from forms.schema import FieldSpec, FormSpec, unit_key
from locales import FSI, PDI, Translator

_ANY_BIDI = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


def isolated(text: str) -> str:
    """`text` between FSI and PDI, without bidi controls of its own that could escape them.
    For a value put into a line that is not built by `Translator.gettext` (which isolates its
    values itself)."""
    return f"{FSI}{text.translate(_ANY_BIDI)}{PDI}"


def short_label(spec: FieldSpec, language: str) -> str:
    """The field's short label ("Paper"), or its question without the question mark."""
    if spec.short is not None:
        return spec.short.get(language)
    return spec.label.get(language).rstrip("?؟ :")


def unit_label(spec: FieldSpec, language: str, currency: str | None = None) -> str | None:
    """What follows the field's numbers: its unit ("kg"), or for money the currency."""
    if spec.money:
        return currency
    return spec.unit.get(language) if spec.unit is not None else None


def header_label(spec: FieldSpec, language: str, currency: str | None = None) -> str:
    """A column or digest label: the short label and the unit once ("Paper (kg)")."""
    label = short_label(spec, language)
    unit = unit_label(spec, language, currency)
    return f"{label} ({unit})" if unit and unit not in label else label


def accepted_units(spec: FieldSpec, language: str) -> list[str]:
    """The units a person may type after a number of `spec`, one word each, in their script."""
    if spec.unit is None:
        return []
    arabic = language == "ar"
    words = [spec.unit.get(language)]
    for alternative in spec.unit.accepts:
        ours = [w for w in alternative.words if _is_arabic(w) == arabic] or alternative.words
        if not any(unit_key(w) in {unit_key(x) for x in words} for w in alternative.words):
            words.append(ours[0])
    return words


def _is_arabic(word: str) -> bool:
    return any("\u0600" <= c <= "\u06ff" for c in word)


def how_to_answer(spec: FieldSpec, tr: Translator, currency: str | None = None) -> str | None:
    """The line under a question that says what the answer may be: its unit and the other
    units it accepts, the currency of an amount, the length limit of a text."""
    if spec.money:
        return tr.gettext("Amount in {currency}.", currency=currency or "?")
    if spec.unit is not None:
        first, *others = accepted_units(spec, tr.language)
        if not others:
            return tr.gettext("In {unit}.", unit=first)
        separator = "، " if tr.language == "ar" else ", "
        return tr.gettext(
            "In {unit}; you may also write {units} after the number.",
            unit=first,
            units=separator.join(others),
        )
    if spec.type == "text":
        return tr.gettext("At most {limit} characters.", limit=spec.max_length)
    return None


def show_number(
    spec: FieldSpec, value: int | float | Decimal, tr: Translator, currency: str | None = None
) -> str:
    """A number of `spec` in the person's way of writing numbers, with its unit or currency."""
    shown = tr.number(Decimal(str(value)))
    unit = unit_label(spec, tr.language, currency)
    return f"{shown} {unit}" if unit else shown


@lru_cache(maxsize=1024)
def period_label(period: Period, tr: Translator) -> str:
    """ "November 2026", "week of 16 Nov to 22 Nov 2026"; remembered, as forms show the same
    few periods over and over and Babel's date formatting is slow."""
    if period.kind == "month":
        return tr.date(period.start, "LLLL y")
    return tr.gettext(
        "week of {start} to {end}",
        start=tr.date(period.start, "d MMM"),
        end=tr.date(period.end, "d MMM y"),
    )


def show_value(
    spec: FieldSpec,
    value: Any,
    tr: Translator,
    period: Period | None = None,
    currency: str | None = None,
) -> str:
    """An answer as the person would write it back: labels, local numbers, dates."""
    if value is None:
        return tr.gettext("(skipped)")
    lang = tr.language
    kind = spec.type
    if kind in ("integer", "decimal"):
        return show_number(spec, value, tr, currency)
    if kind == "choice":
        return next((c.label.get(lang) for c in spec.choices or [] if c.value == value), value)
    if kind == "multichoice":
        labels = [c.label.get(lang) for c in spec.choices or [] if c.value in value]
        return "، ".join(labels) if lang == "ar" else ", ".join(labels)
    if kind == "yesno":
        return tr.gettext("Yes") if value else tr.gettext("No")
    if kind == "date":
        return tr.date(date.fromisoformat(value), "medium")
    if kind == "period":
        return period_label(period, tr) if period else str(value)
    if kind == "photo":
        return tr.ngettext("{n} photo", "{n} photos", len(value))
    if kind == "location":
        if "text" in value:
            return str(value["text"])
        return tr.gettext(
            "location {latitude}, {longitude}",
            latitude=f"{value['lat']:.5f}",
            longitude=f"{value['lon']:.5f}",
        )
    return str(value)


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
    """ "Paper: 12 kg": the short label and the answer, each isolated."""
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
