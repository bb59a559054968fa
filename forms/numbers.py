"""Read numbers the way field workers type them, in Arabic, English or French.

Pure functions, no I/O. The one rule that matters: never read a decimal as thousands.
When "1,250" could be 1.25 or 1250, say so (``Ambiguous``) and let the bot ask.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Ambiguous", "Number", "NotANumber", "normalize", "parse_number"]


@dataclass(frozen=True)
class Number:
    """A clean parse, with the unit word typed after it (if any), as typed."""

    value: Decimal
    unit: str | None = None


@dataclass(frozen=True)
class Ambiguous:
    """The input could mean two numbers: (decimal reading, thousands reading)."""

    candidates: tuple[Decimal, Decimal]
    unit: str | None = None


@dataclass(frozen=True)
class NotANumber:
    """The input is not a number we dare to read."""


ParseResult = Number | Ambiguous | NotANumber

ARABIC_DECIMAL = "\u066b"  # ٫ always a decimal mark
ARABIC_GROUP = "\u066c"  # ٬ always a group separator

_FORMAT_MARKS = (
    "\u200b\u200c\u200d\u200e\u200f"  # zero-width space/joiners, LRM, RLM
    "\u061c"  # Arabic letter mark
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2060"  # word joiner
    "\u2066\u2067\u2068\u2069"  # isolates
    "\ufeff"  # BOM / zero-width no-break space
)
_ODD_SPACES = "\u00a0\u202f\u3000" + "".join(chr(c) for c in range(0x2000, 0x200B))

_TABLE: dict[int, int | str | None] = {
    **{0x0660 + i: str(i) for i in range(10)},  # Arabic-Indic ٠-٩
    **{0x06F0 + i: str(i) for i in range(10)},  # Extended Arabic-Indic (Persian/Urdu) ۰-۹
    **{ord(c): None for c in _FORMAT_MARKS},
    **{ord(c): " " for c in _ODD_SPACES},
    0x060C: ",",  # Arabic comma ، is what the comma key types on Arabic keyboards
}

_SIGNS = {"-": "-", "\u2212": "-", "+": ""}
_DECIMAL_ONLY = ARABIC_DECIMAL
_GROUP_ONLY = " " + ARABIC_GROUP
_EITHER = ".,"

# A number ending in a digit, then at most one unit word (letters and dots, starting
# with a letter; Arabic diacritics allowed), optionally after spaces.
_WITH_UNIT = re.compile(
    r"(?P<number>.*[0-9]) *(?P<unit>[^\W\d_](?:[^\W\d_]|[.\u064b-\u065f\u0670])*)?"
)
_BODY = re.compile(r"[0-9.,\u066b\u066c ]+")
_SEPARATOR = re.compile(r"([.,\u066b\u066c ])")


def normalize(text: str) -> str:
    """Map Arabic-Indic/Persian digits to ASCII, drop bidi marks, tidy spaces.

    ``٫`` and ``٬`` are kept as they are: they carry meaning (decimal mark, group
    separator) that ``parse_number`` relies on. The Arabic comma ``،`` becomes ``,``.
    """
    return text.translate(_TABLE).strip()


def parse_number(text: str, *, integer: bool = False) -> ParseResult:
    """Parse what a person typed as a number, optionally followed by one unit word.

    With ``integer=True`` a fractional result is ``NotANumber``, except that an
    ambiguous input whose only whole reading is the thousands one gives that reading.
    """
    body = normalize(text)
    sign = ""
    if body[:1] in _SIGNS:
        sign, body = _SIGNS[body[0]], body[1:]
    match = _WITH_UNIT.fullmatch(body)
    if match is None or not _BODY.fullmatch(match["number"]):
        return NotANumber()
    reading = _read(match["number"])
    if reading is None:
        return NotANumber()
    int_digits, frac_digits, ambiguous = reading
    unit = match["unit"]
    as_decimal = _to_decimal(sign, int_digits, frac_digits)
    if ambiguous:
        as_thousands = _to_decimal(sign, int_digits + frac_digits, "")
        if integer and not _is_whole(as_decimal):
            return Number(as_thousands, unit)
        return Ambiguous((as_decimal, as_thousands), unit)
    if integer and not _is_whole(as_decimal):
        return NotANumber()
    return Number(as_decimal, unit)


def _read(body: str) -> tuple[str, str, bool] | None:
    """Split digits and separators into (integer digits, fraction digits, ambiguous)."""
    parts = _SEPARATOR.split(body)
    runs, seps = parts[0::2], parts[1::2]
    if not all(runs[1:]):  # two separators in a row, or a trailing one
        return None
    if not seps:
        return runs[0], "", False
    last, earlier = seps[-1], set(seps[:-1])
    if _DECIMAL_ONLY in earlier:
        return None
    if last == _DECIMAL_ONLY or (last in _EITHER and earlier - {last}):
        # The last separator is the decimal mark; everything before it is grouping.
        if last in earlier or len(earlier) > 1:
            return None
        if earlier and not _grouped(runs[:-1]):
            return None
        return "".join(runs[:-1]), runs[-1], False
    if len(set(seps)) > 1:
        return None
    if last in _GROUP_ONLY or len(seps) > 1:
        return ("".join(runs), "", False) if _grouped(runs) else None
    # A single '.' or ','.
    int_part, frac = runs
    if len(frac) != 3 or not int_part or int_part.startswith("0") or len(int_part) > 3:
        return int_part, frac, False
    return int_part, frac, True


def _grouped(runs: list[str]) -> bool:
    """True if runs form valid thousands groups: 1-3 digits, then groups of 3."""
    first, rest = runs[0], runs[1:]
    return (
        1 <= len(first) <= 3
        and not (first.startswith("0") and rest)
        and all(len(run) == 3 for run in rest)
    )


def _to_decimal(sign: str, int_digits: str, frac_digits: str) -> Decimal:
    """Build a Decimal from digit strings, without trailing fractional zeros."""
    frac = frac_digits.rstrip("0")
    value = Decimal(f"{sign}{int_digits or '0'}" + (f".{frac}" if frac else ""))
    return Decimal(0) if value.is_zero() else value


def _is_whole(value: Decimal) -> bool:
    """True if value has no fractional part."""
    return value == value.to_integral_value()
