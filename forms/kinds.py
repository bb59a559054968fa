"""The field types, in one place: for each type, how an answer is read (parsed and checked),
whether a stored value is valid, how a value is shown, which buttons the question offers, and
whether a confirmed answer may be corrected on its own.

Filling a form (handlers/reporting), correcting a report (handlers/corrections), the summary,
the whole-report check at Confirm (forms/validate) and the property tests all go through
`KINDS`; a new field type is one entry here (and its name in `forms.schema.FieldType`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from forms.answers import (
    Given,
    Rejected,
    Result,
    read_choice,
    read_date,
    read_location,
    read_number,
    read_text,
    read_yesno,
)
from forms.display import period_label, show_number
from forms.periods import Period
from forms.schema import FieldSpec
from forms.text import clean_text, is_clean
from locales import Translator

Reader = Callable[[FieldSpec, Given, Translator, date, str | None], Result]
Fits = Callable[[FieldSpec, Any], bool]
Shower = Callable[[FieldSpec, Any, Translator, Period | None, str | None], str]
Buttons = Callable[[FieldSpec, Translator], list[tuple[str, str]]]


@dataclass(frozen=True)
class Kind:
    """What Sanad knows about one field type."""

    read: Reader  # a typed answer or a pressed button -> a value, a refusal, or "which?"
    fits: Fits  # a stored value (never None here) is one that `read` can give
    show: Shower  # a stored value as the person reads it
    buttons: Buttons  # the fixed buttons of the question (period, photo and multichoice
    #                   buttons depend on the conversation and are the handler's)
    typed: bool  # answered by typing (a question sent twice must not take two answers)
    correctable: bool  # a confirmed answer can be corrected on its own
    column: str  # how an export keeps it: integer, decimal, date or text


# --- reading ---------------------------------------------------------------------------------


def _number(spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None) -> Result:
    return read_number(spec, given.text, tr, cur)


def _text(spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None) -> Result:
    return read_text(spec, given.text, tr)


def _yesno(spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None) -> Result:
    return read_yesno(given, tr)


def _date(spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None) -> Result:
    return read_date(given, tr, today)


def _location(
    spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None
) -> Result:
    return read_location(spec, given, tr)


def _choice(spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None) -> Result:
    return read_choice(spec, given, tr)


def _buttons_only(
    spec: FieldSpec, given: Given, tr: Translator, today: date, cur: str | None
) -> Result:
    return Rejected(tr.gettext("Please use the buttons."))


# --- valid stored values ---------------------------------------------------------------------


def _number_fits(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and (spec.type == "integer" or not math.isfinite(value)):
        return False
    number = Decimal(str(value))
    return (spec.min is None or number >= spec.min) and (spec.max is None or number <= spec.max)


def _text_fits(spec: FieldSpec, value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and len(value) <= spec.max_length
        and is_clean(value)
        and not value.startswith("/")
    )


def _iso_date(value: Any) -> bool:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _date_fits(spec: FieldSpec, value: Any) -> bool:
    return isinstance(value, str) and _iso_date(value)


def _yesno_fits(spec: FieldSpec, value: Any) -> bool:
    return isinstance(value, bool)


def _period_fits(spec: FieldSpec, value: Any) -> bool:
    return isinstance(value, str) and (_iso_date(value) or _iso_date(value + "-01"))


def _choice_fits(spec: FieldSpec, value: Any) -> bool:
    return value in {c.value for c in spec.choices or []}


def _multichoice_fits(spec: FieldSpec, value: Any) -> bool:
    values = {c.value for c in spec.choices or []}
    return isinstance(value, list) and bool(value) and all(v in values for v in value)


def _photo_fits(spec: FieldSpec, value: Any) -> bool:
    return (
        isinstance(value, list)
        and 1 <= len(value) <= spec.max_count
        and all(isinstance(p, dict) and (p.get("file_id") or p.get("path")) for p in value)
    )


def _location_fits(spec: FieldSpec, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if "text" in value:
        return spec.allow_text and _text_fits(spec, value["text"])
    lat, lon = value.get("lat"), value.get("lon")
    return (
        isinstance(lat, int | float)
        and isinstance(lon, int | float)
        and -90 <= lat <= 90
        and -180 <= lon <= 180
    )


# --- showing ---------------------------------------------------------------------------------


def _show_number(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    return show_number(spec, value, tr, cur)


def _show_choice(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    labels = {c.value: c.label.get(tr.language) for c in spec.choices or []}
    return labels.get(value, str(value))


def _show_multichoice(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    labels = [c.label.get(tr.language) for c in spec.choices or [] if c.value in value]
    return ("، " if tr.language == "ar" else ", ").join(labels)


def _show_yesno(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    return tr.gettext("Yes") if value else tr.gettext("No")


def _show_date(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    return tr.date(date.fromisoformat(value), "medium")


def _show_period(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    return period_label(period, tr) if period else str(value)


def _show_photo(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    return tr.ngettext("{n} photo", "{n} photos", len(value))


def _show_location(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    if "text" in value:
        return clean_text(str(value["text"]))
    return tr.gettext(
        "location {latitude}, {longitude}",
        latitude=f"{value['lat']:.5f}",
        longitude=f"{value['lon']:.5f}",
    )


def _show_text(
    spec: FieldSpec, value: Any, tr: Translator, period: Period | None, cur: str | None
) -> str:
    return clean_text(str(value))  # reports stored before text was cleaned at input


# --- buttons ---------------------------------------------------------------------------------


def _no_buttons(spec: FieldSpec, tr: Translator) -> list[tuple[str, str]]:
    return []


def _choice_buttons(spec: FieldSpec, tr: Translator) -> list[tuple[str, str]]:
    return [(c.label.get(tr.language), c.value) for c in spec.choices or []]


def _yesno_buttons(spec: FieldSpec, tr: Translator) -> list[tuple[str, str]]:
    return [(tr.gettext("Yes"), "yes"), (tr.gettext("No"), "no")]


def _date_buttons(spec: FieldSpec, tr: Translator) -> list[tuple[str, str]]:
    return [(tr.gettext("Today"), "today"), (tr.gettext("Yesterday"), "yesterday")]


KINDS: dict[str, Kind] = {
    "integer": Kind(_number, _number_fits, _show_number, _no_buttons, True, True, "integer"),
    "decimal": Kind(_number, _number_fits, _show_number, _no_buttons, True, True, "decimal"),
    "text": Kind(_text, _text_fits, _show_text, _no_buttons, True, True, "text"),
    "choice": Kind(_choice, _choice_fits, _show_choice, _choice_buttons, False, True, "text"),
    "multichoice": Kind(
        _buttons_only, _multichoice_fits, _show_multichoice, _no_buttons, False, False, "text"
    ),
    "date": Kind(_date, _date_fits, _show_date, _date_buttons, True, True, "date"),
    "period": Kind(_buttons_only, _period_fits, _show_period, _no_buttons, False, False, "text"),
    "photo": Kind(_buttons_only, _photo_fits, _show_photo, _no_buttons, True, False, "text"),
    "location": Kind(_location, _location_fits, _show_location, _no_buttons, True, True, "text"),
    "yesno": Kind(_yesno, _yesno_fits, _show_yesno, _yesno_buttons, False, True, "text"),
}


# --- what the rest of Sanad calls --------------------------------------------------------------


def check(
    spec: FieldSpec, given: Given, tr: Translator, today: date, currency: str | None = None
) -> Result:
    """Read what the person gave for `spec`: a value to keep, a refusal, or "which number?".
    Typed text is cleaned first (`clean_text`); `currency` is the group's, for money fields."""
    if given.text is not None:
        given = Given(clean_text(given.text), given.choice, given.photo, given.location)
    return KINDS[spec.type].read(spec, given, tr, today, currency)


def value_fits(spec: FieldSpec, value: Any) -> bool:
    """Whether a stored `value` is one that answering `spec` can give (None: skipped)."""
    if value is None:
        return not spec.required
    return KINDS[spec.type].fits(spec, value)


def show_value(
    spec: FieldSpec,
    value: Any,
    tr: Translator,
    period: Period | None = None,
    currency: str | None = None,
) -> str:
    """An answer as the person would write it back: labels, local numbers and dates, the unit
    or currency; "(skipped)" for no answer."""
    if value is None:
        return tr.gettext("(skipped)")
    return KINDS[spec.type].show(spec, value, tr, period, currency)


def fixed_buttons(spec: FieldSpec, tr: Translator) -> list[tuple[str, str]]:
    return KINDS[spec.type].buttons(spec, tr)


def answered_by_typing(spec: FieldSpec) -> bool:
    return KINDS[spec.type].typed


def correctable(spec: FieldSpec) -> bool:
    return KINDS[spec.type].correctable
