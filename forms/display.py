"""Showing answers and periods to a person, in their language."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from forms.periods import Period
from forms.schema import FieldSpec, FormSpec
from locales import Translator


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


def show_value(spec: FieldSpec, value: Any, tr: Translator, period: Period | None = None) -> str:
    """An answer as the person would write it back: labels, local numbers, dates."""
    if value is None:
        return tr.gettext("(skipped)")
    lang = tr.language
    kind = spec.type
    if kind in ("integer", "decimal"):
        shown = tr.number(Decimal(str(value)))
        return f"{shown} {spec.unit.get(lang)}" if spec.unit else shown
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


def summary_lines(
    form: FormSpec, answers: dict[str, Any], tr: Translator, period: Period | None
) -> list[str]:
    """One numbered line per answered field, in form order."""
    lines = []
    number = 0
    for spec in form.fields:
        if spec.name not in answers:
            continue
        number += 1
        label = spec.label.get(tr.language).rstrip("?؟ :")
        lines.append(f"{number}. {label}: {show_value(spec, answers[spec.name], tr, period)}")
    return lines
