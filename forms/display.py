"""Showing answers and periods to a person, in their language."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from forms.periods import Period
from forms.schema import FieldSpec, unit_key
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
    """ "November 2026", "week of 16 Nov to 22 Nov 2026", "Sunday, 29 November 2026";
    remembered, as forms show the same
    few periods over and over and Babel's date formatting is slow."""
    if period.kind == "month":
        return tr.date(period.start, "LLLL y")
    if period.kind == "day":
        return tr.date(period.start, "full")
    return tr.gettext(
        "week of {start} to {end}",
        start=tr.date(period.start, "d MMM"),
        end=tr.date(period.end, "d MMM y"),
    )
