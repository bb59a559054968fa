"""Checking one answer against its field: a value to keep, or what the field expects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from forms.display import accepted_units, show_number
from forms.numbers import Ambiguous, Number, normalize, parse_number
from forms.schema import FieldSpec, unit_key
from forms.text import clean_text
from locales import Translator

#: Numbers without declared bounds still stay within what every store and float keeps exactly.
LIMIT = Decimal(10) ** 12

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
    """A value to keep; `typed` is what the person wrote when it was converted ("12 t")."""

    value: Any
    typed: str | None = None


@dataclass(frozen=True)
class Rejected:
    message: str


@dataclass(frozen=True)
class Which:
    """A number that could be read two ways; the person must choose. `unit` is the unit word
    typed after it, converted once the person has chosen (`accept_number`)."""

    candidates: tuple[Decimal, Decimal]
    unit: str | None = None


Result = Accepted | Rejected | Which


def read_number(
    spec: FieldSpec, text: str | None, tr: Translator, currency: str | None = None
) -> Result:
    """A typed number with an optional unit, converted to the field's unit, within bounds."""
    if not text:
        return Rejected(_number_expected(spec, tr))
    parsed = parse_number(text)
    if isinstance(parsed, Ambiguous):
        first, second = parsed.candidates
        if spec.type == "integer" and not _whole(
            first * (_factor(spec, parsed.unit, currency) or 1)
        ):
            return accept_number(spec, second, parsed.unit, tr, currency)
        if _factor(spec, parsed.unit, currency) is None:
            return Rejected(unit_refused(spec, tr, currency))
        return Which(parsed.candidates, parsed.unit)
    if not isinstance(parsed, Number):
        return Rejected(_number_expected(spec, tr))
    return accept_number(spec, parsed.value, parsed.unit, tr, currency)


def accept_number(
    spec: FieldSpec,
    value: Decimal,
    unit: str | None,
    tr: Translator,
    currency: str | None = None,
) -> Result:
    """`value` typed with `unit` (or none), converted to the field's unit and bounds-checked."""
    factor = _factor(spec, unit, currency)
    if factor is None:
        return Rejected(unit_refused(spec, tr, currency))
    converted = value * factor
    result = within_bounds(spec, converted, tr, currency)
    if isinstance(result, Accepted) and factor != 1 and unit is not None:
        return Accepted(result.value, f"{tr.number(value)} {unit}")
    return result


def _factor(spec: FieldSpec, unit: str | None, currency: str | None) -> Decimal | None:
    """How many of the field's unit one `unit` is; None when the field does not take it."""
    if unit is None:
        return Decimal(1)
    key = unit_key(unit)
    if spec.money:
        return Decimal(1) if currency and key == currency.casefold() else None
    if spec.unit is None:
        return None
    if key in {unit_key(spec.unit.get(language)) for language in ("ar", "en", "fr")}:
        return Decimal(1)
    for alternative in spec.unit.accepts:
        if key in {unit_key(word) for word in alternative.words}:
            return alternative.factor
    return None


def unit_refused(spec: FieldSpec, tr: Translator, currency: str | None) -> str:
    if spec.money:
        return tr.gettext(
            "Please send the amount in {currency}, as a number without another unit.",
            currency=currency or "?",
        )
    if spec.unit is None:
        return tr.gettext("Please send only the number, without a unit.")
    separator = "، " if tr.language == "ar" else ", "
    return tr.gettext(
        "This question takes these units: {units}. Please send the number with one of them, "
        "or without a unit for {unit}.",
        units=separator.join(accepted_units(spec, tr.language)),
        unit=spec.unit.get(tr.language),
    )


def within_bounds(
    spec: FieldSpec, value: Decimal, tr: Translator, currency: str | None = None
) -> Result:
    """Accept `value` as the field's stored number if it is within its bounds."""
    if not value.is_finite() or (spec.type == "integer" and not _whole(value)):
        return Rejected(_number_expected(spec, tr))
    minimum = spec.min if spec.min is not None else -LIMIT
    maximum = spec.max if spec.max is not None else LIMIT
    if value < minimum:
        return Rejected(
            tr.gettext(
                "The number must be at least {minimum}.",
                minimum=show_number(spec, minimum, tr, currency),
            )
        )
    if value > maximum:
        return Rejected(
            tr.gettext(
                "The number must be at most {maximum}.",
                maximum=show_number(spec, maximum, tr, currency),
            )
        )
    return Accepted(int(value) if spec.type == "integer" else float(value))


def _whole(value: Decimal) -> bool:
    return value.is_finite() and value == value.to_integral_value()


def _number_expected(spec: FieldSpec, tr: Translator) -> str:
    if spec.type == "integer":
        return tr.gettext("Please send a whole number, for example 35 or ٣٥.")
    return tr.gettext("Please send a number, for example 12.5 or ١٢٫٥.")


def read_text(spec: FieldSpec, text: str | None, tr: Translator) -> Result:
    value = clean_text(text or "")
    if not value or value.startswith("/"):
        return Rejected(tr.gettext("Please type your answer as text."))
    if len(value) > spec.max_length:
        return Rejected(
            tr.gettext(
                "Your answer has {length} characters; the limit is {limit}. Please shorten it.",
                length=len(value),
                limit=spec.max_length,
            )
        )
    return Accepted(value)


def read_yesno(given: Given, tr: Translator) -> Result:
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


def read_date(given: Given, tr: Translator, today: date) -> Result:
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


def read_location(spec: FieldSpec, given: Given, tr: Translator) -> Result:
    if given.location is not None:
        latitude, longitude = given.location
        if -90 <= latitude <= 90 and -180 <= longitude <= 180:
            return Accepted({"lat": round(latitude, 6), "lon": round(longitude, 6)})
    if given.text and spec.allow_text:
        pair = _coordinates(given.text)
        if pair is not None:
            return Accepted({"lat": pair[0], "lon": pair[1]})
        text = read_text(spec, given.text, tr)
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


def read_choice(spec: FieldSpec, given: Given, tr: Translator) -> Result:
    choices = spec.choices or []
    if given.choice is not None and any(c.value == given.choice for c in choices):
        return Accepted(given.choice)
    typed = normalize(given.text or "").strip().casefold()
    for choice in choices:
        if typed and typed in {choice.label.get(lang).casefold() for lang in ("ar", "en", "fr")}:
            return Accepted(choice.value)
    if typed.isascii() and typed.isdigit() and len(typed) <= 4 and 1 <= int(typed) <= len(choices):
        return Accepted(choices[int(typed) - 1].value)
    return Rejected(tr.gettext("Please choose one of the options."))
