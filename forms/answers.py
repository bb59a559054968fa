"""Checking one answer against its field: a value to keep, or what the field expects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from forms.numbers import Ambiguous, Number, normalize, parse_number
from forms.schema import FieldSpec
from locales import Translator

YES = {"yes", "y", "oui", "o", "نعم", "اي", "أي", "ايوه", "أيوه", "ايوا", "اه", "آه", "1"}
NO = {"no", "n", "non", "لا", "لأ", "كلا", "0"}


@dataclass(frozen=True)
class Given:
    """What the person gave: typed text, a chosen option value, a photo or a place."""

    text: str | None = None
    choice: str | None = None
    photo: dict[str, str] | None = None
    location: tuple[float, float] | None = None


@dataclass(frozen=True)
class Accepted:
    value: Any


@dataclass(frozen=True)
class Rejected:
    message: str


@dataclass(frozen=True)
class Which:
    """A number that could be read two ways; the person must choose."""

    candidates: tuple[Decimal, Decimal]


Result = Accepted | Rejected | Which


def check(spec: FieldSpec, given: Given, tr: Translator, today: date) -> Result:
    """Check `given` for `spec`. Choice, period, photo and multichoice flows are the caller's."""
    kind = spec.type
    if kind in ("integer", "decimal"):
        return check_number(spec, given.text, tr)
    if kind == "text":
        return _check_text(spec, given.text, tr)
    if kind == "yesno":
        return _check_yesno(given, tr)
    if kind == "date":
        return _check_date(given, tr, today)
    if kind == "location":
        return _check_location(spec, given, tr)
    if kind == "choice":
        return _check_choice(spec, given, tr)
    return Rejected(tr.gettext("Please use the buttons."))


def check_number(spec: FieldSpec, text: str | None, tr: Translator) -> Result:
    if not text:
        return Rejected(_number_expected(spec, tr))
    parsed = parse_number(text, integer=spec.type == "integer")
    if isinstance(parsed, Ambiguous):
        return Which(parsed.candidates)
    if not isinstance(parsed, Number):
        return Rejected(_number_expected(spec, tr))
    return within_bounds(spec, parsed.value, tr)


def within_bounds(spec: FieldSpec, value: Decimal, tr: Translator) -> Result:
    """Accept `value` as the field's stored number if it is within its bounds."""
    if spec.type == "integer" and value != value.to_integral_value():
        return Rejected(_number_expected(spec, tr))
    if spec.min is not None and value < spec.min:
        return Rejected(tr.gettext("The number must be at least {minimum}.", minimum=spec.min))
    if spec.max is not None and value > spec.max:
        return Rejected(tr.gettext("The number must be at most {maximum}.", maximum=spec.max))
    return Accepted(int(value) if spec.type == "integer" else float(value))


def _number_expected(spec: FieldSpec, tr: Translator) -> str:
    if spec.type == "integer":
        return tr.gettext("Please send a whole number, for example 35 or ٣٥.")
    return tr.gettext("Please send a number, for example 12.5 or ١٢٫٥.")


def _check_text(spec: FieldSpec, text: str | None, tr: Translator) -> Result:
    value = (text or "").strip()
    if not value or value.startswith("/"):
        return Rejected(tr.gettext("Please type your answer as text."))
    if len(value) > spec.max_length:
        return Rejected(
            tr.gettext("Please keep it under {limit} characters.", limit=spec.max_length)
        )
    return Accepted(value)


def _check_yesno(given: Given, tr: Translator) -> Result:
    if given.choice in ("yes", "no"):
        return Accepted(given.choice == "yes")
    word = normalize(given.text or "").strip().lower().rstrip(".!")
    if word in YES:
        return Accepted(True)
    if word in NO:
        return Accepted(False)
    return Rejected(tr.gettext("Please answer yes or no."))


DATE_PATTERNS = (
    (re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$"), ("d", "m", "y")),
    (re.compile(r"^(\d{1,2})[-/.](\d{1,2})$"), ("d", "m")),
)


def _check_date(given: Given, tr: Translator, today: date) -> Result:
    if given.choice == "today":
        return Accepted(today.isoformat())
    if given.choice == "yesterday":
        return Accepted((today - timedelta(days=1)).isoformat())
    day = parse_date(given.text or "", today)
    if day is None:
        return Rejected(tr.gettext("Please send a date as day/month/year, for example 24/11/2026."))
    if day > today:
        return Rejected(tr.gettext("That date is in the future."))
    if day < today - timedelta(days=366):
        return Rejected(tr.gettext("That date is more than a year ago."))
    return Accepted(day.isoformat())


def parse_date(text: str, today: date) -> date | None:
    """A typed date (day first, or ISO), in any digits; a missing year is this year's."""
    cleaned = normalize(text).replace(" ", "")
    for pattern, order in DATE_PATTERNS:
        match = pattern.match(cleaned)
        if match:
            parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
            try:
                return date(parts.get("y", today.year), parts["m"], parts["d"])
            except ValueError:
                return None
    return None


def _check_location(spec: FieldSpec, given: Given, tr: Translator) -> Result:
    if given.location is not None:
        latitude, longitude = given.location
        if -90 <= latitude <= 90 and -180 <= longitude <= 180:
            return Accepted({"lat": round(latitude, 6), "lon": round(longitude, 6)})
    if given.text and spec.allow_text:
        pair = _coordinates(given.text)
        if pair is not None:
            return Accepted({"lat": pair[0], "lon": pair[1]})
        text = _check_text(spec, given.text, tr)
        if isinstance(text, Accepted):
            return Accepted({"text": text.value})
    if spec.allow_text:
        return Rejected(tr.gettext("Please share your location or type the name of the place."))
    return Rejected(tr.gettext("Please share your location."))


def _coordinates(text: str) -> tuple[float, float] | None:
    match = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$", normalize(text))
    if not match:
        return None
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if -90 <= latitude <= 90 and -180 <= longitude <= 180:
        return latitude, longitude
    return None


def _check_choice(spec: FieldSpec, given: Given, tr: Translator) -> Result:
    choices = spec.choices or []
    if given.choice is not None and any(c.value == given.choice for c in choices):
        return Accepted(given.choice)
    typed = normalize(given.text or "").strip().casefold()
    for choice in choices:
        if typed and typed in {choice.label.get(lang).casefold() for lang in ("ar", "en", "fr")}:
            return Accepted(choice.value)
    if typed.isdigit() and 1 <= int(typed) <= len(choices):
        return Accepted(choices[int(typed) - 1].value)
    return Rejected(tr.gettext("Please choose one of the options."))
