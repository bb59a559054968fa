"""Numbers as field workers type them: Arabic digits, commas, dots, units."""

from decimal import Decimal

import pytest

from forms.numbers import Ambiguous, NotANumber, Number, normalize, parse_number

RLM = "\u200f"
NBSP = "\u00a0"
NARROW_NBSP = "\u202f"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("35", "35"),
        ("٣٥", "35"),  # Arabic-Indic digits
        ("۳۵", "35"),  # Persian digits
        ("١٢٫٥", "12.5"),  # Arabic decimal mark
        ("12,5", "12.5"),  # French decimal comma
        ("12.5", "12.5"),
        ("12.50", "12.5"),
        (" 12.5 kg ", "12.5"),
        ("12.5kg", "12.5"),
        ("١٢ كغ", "12"),
        ("35 طفل", "35"),
        ("3 د.ب", "3"),
        ("3 BHD", "3"),
        (f"{RLM}١٢٫٥{RLM}", "12.5"),  # bidi marks pasted around the number
        ("1,250.75", "1250.75"),
        ("1.250,75", "1250.75"),
        ("1,250,000", "1250000"),
        ("1.250.000", "1250000"),
        ("0,250", "0.25"),  # a leading zero is never thousands
        (",5", "0.5"),
        ("1234,567", "1234.567"),  # four digits before the mark: not a thousands group
        ("٣٥٬٠٠٠", "35000"),  # Arabic group separator
        ("١٬٢٥٠٫٥", "1250.5"),
        ("1 250", "1250"),
        ("12 500 000", "12500000"),
        (f"12{NARROW_NBSP}500", "12500"),
        (f"1{NBSP}250,5", "1250.5"),
        ("12،5", "12.5"),  # Arabic comma from an Arabic keyboard
        ("-3", "-3"),
        ("\u22123", "-3"),  # U+2212 minus sign
        ("+7", "7"),
        ("12.0", "12"),
    ],
)
def test_reads_a_clear_number(typed: str, expected: str) -> None:
    result = parse_number(typed)
    assert isinstance(result, Number) and result.value == Decimal(expected)


@pytest.mark.parametrize(
    ("typed", "decimal_reading", "thousands_reading"),
    [
        ("1,250", "1.25", "1250"),
        ("1.250", "1.25", "1250"),
        ("12.500", "12.5", "12500"),
        ("١٢،٥٠٠", "12.5", "12500"),
        ("-1,250 kg", "-1.25", "-1250"),
        ("1,000", "1", "1000"),
    ],
)
def test_asks_when_a_separator_could_be_either(
    typed: str, decimal_reading: str, thousands_reading: str
) -> None:
    result = parse_number(typed)
    assert isinstance(result, Ambiguous)
    assert result.candidates == (Decimal(decimal_reading), Decimal(thousands_reading))


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "abc",
        "12 15",  # two numbers
        "kg 12",  # unit before the number
        "12 kg bags",  # two words after the number
        "12a5",
        "-",
        "1,25,000",  # bad groups
        "1,250.000,5",
        "1.250,000.5",
        "12,5.3",
        "1 250.000 5",
        "12.",
        "12..5",
        "1٫250٫5",
        "٬250",
        "0,250,000",
        "٥ ٦",
        "12 - 15",
        "50%",
    ],
)
def test_refuses_what_is_not_one_number(typed: str) -> None:
    assert parse_number(typed) == NotANumber()


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("35", 35),
        ("٣٥ طفل", 35),
        ("1,250", 1250),  # the decimal reading is not whole, so it must be thousands
        ("1.250", 1250),
        ("12.0", 12),
        ("٣٥٬٠٠٠", 35000),
        ("-3", -3),
    ],
)
def test_whole_numbers(typed: str, expected: int) -> None:
    result = parse_number(typed, integer=True)
    assert isinstance(result, Number) and result.value == Decimal(expected)
    assert isinstance(result, Number)
    assert int(result.value) == expected
    assert "E" not in str(result.value)


@pytest.mark.parametrize("typed", ["12.5", "12,5", "١٢٫٥", "0,250", "1234,567"])
def test_whole_numbers_refuse_fractions(typed: str) -> None:
    assert parse_number(typed, integer=True) == NotANumber()


def test_whole_numbers_still_ask_when_both_readings_are_whole() -> None:
    assert parse_number("1,000", integer=True) == Ambiguous((Decimal(1), Decimal(1000)))


def test_never_reads_a_decimal_as_thousands() -> None:
    """Babel's parse_decimal("12.5", locale="ar_MA") gives 125; we must not."""
    for typed in ["12.5", "12,5", "12.50", "12,50", "١٢٫٥"]:
        assert getattr(parse_number(typed), "value", None) == Decimal("12.5"), typed


def test_values_are_decimals_not_floats() -> None:
    result = parse_number("0.1")
    assert isinstance(result, Number)
    assert isinstance(result.value, Decimal)
    assert result.value == Decimal("0.1")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("٠١٢٣٤٥٦٧٨٩", "0123456789"),
        ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),
        (f"\u2067{RLM}١٢٫٥\u200e\u2069", "12٫5"),
        ("\ufeff\u200b12\u061c", "12"),
        ("\u202b35\u202c", "35"),
        (f" 1{NBSP}250{NARROW_NBSP}000\u2009 ", "1 250 000"),
        ("٣٥٬٠٠٠", "35٬000"),
        ("12،5", "12,5"),
    ],
)
def test_normalize(typed: str, expected: str) -> None:
    assert normalize(typed) == expected


@pytest.mark.parametrize(
    ("typed", "unit"),
    [("12.5 kg", "kg"), ("١٢ طن", "طن"), ("12t", "t"), ("12", None), ("1,250 t", "t")],
)
def test_the_unit_word_is_kept_for_the_field_to_judge(typed: str, unit: str | None) -> None:
    result = parse_number(typed)
    assert isinstance(result, Number | Ambiguous) and result.unit == unit
