"""Property tests of every field type: thousands of generated answers (every kind of digit,
separators, units, mixed scripts, bidi and other invisible controls, very long strings) are
read without a crash; what is accepted is a valid stored value for its field; what is refused
is refused with a message translated in Arabic, English and French.

Each example is a batch of inputs, so that 10,000 inputs per field type run in seconds; the
runs are derandomized (the same inputs every time) so CI is stable."""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from babel.messages.pofile import read_po
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forms.answers import Accepted, Given, Rejected, Which, accept_number
from forms.kinds import KINDS, check, value_fits
from forms.loader import load_forms
from forms.schema import FieldSpec
from forms.summary import answer_line
from forms.text import KEPT_FORMAT, clean_text
from locales import FSI, LANGUAGES, PDI, Translator, po_path, translator

BATCH = 25
EXAMPLES = 400  # 400 batches of 25: 10,000 inputs per field type
TODAY = date(2026, 12, 6)
CURRENCY = "BHD"

FORMS = load_forms()
BUILT_IN = [spec for form in FORMS.values() for spec in form.fields]


def synthetic(**values: Any) -> FieldSpec:
    label = {"ar": "سؤال", "en": "Question", "fr": "Question"}
    return FieldSpec.model_validate({"name": "x", "label": label, **values})


EXTRA = [
    synthetic(type="integer"),  # no bounds: the global limit still holds
    synthetic(type="decimal"),
    synthetic(type="decimal", money=True, min=0),
    synthetic(type="text", max_length=50),
    synthetic(
        type="multichoice",
        choices=[{"value": "a", "label": {"ar": "أ", "en": "A", "fr": "A"}}],
    ),
    synthetic(
        type="location",
        allow_text=False,
    ),
]
TYPES = sorted(KINDS)


def fields_of(kind: str) -> list[FieldSpec]:
    return [spec for spec in BUILT_IN + EXTRA if spec.type == kind]


# --- inputs ----------------------------------------------------------------------------------

DIGITS = "0123456789" + "٠١٢٣٤٥٦٧٨٩" + "۰۱۲۳۴۵۶۷۸۹"
SEPARATORS = ".,٫٬، \u00a0\u202f'"
CONTROLS = (
    "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\U000e0041\x00\x07\x1b\t\r\n\x85\u2028"
    "\ud800"
)
LETTERS = "abcxyzKGTgtéèçàاأبتثجحخدذرسشصطعغفقكلمنهوية" + "ـًٌٍَُِّْ" + "😀👩‍👧"
UNIT_WORDS = [
    "kg",
    "KG",
    "kg.",
    "t",
    "tonnes",
    "Tonne",
    "g",
    "grammes",
    "كغ",
    "كجم",
    "كيلو",
    "طن",
    "أطنان",
    "غ",
    "غرام",
    "lb",
    "miles",
    "BHD",
    "bhd",
    "EGP",
    "دينار",
    "women",
    "%",
]
WORDS = [
    "yes",
    "no",
    "Oui",
    "NON",
    "نعم",
    "لا",
    "today",
    "home visit",
    "Home Visit",
    "تدريب",
    "Formation",
    "1",
    "6",
    "7",
    "0",
    "/start",
    "/back",
    "other",
    "other ",
    " Autre",
]

any_char = st.characters(codec="utf-8") | st.sampled_from(CONTROLS)
chaos = st.text(st.sampled_from(DIGITS + SEPARATORS + CONTROLS + LETTERS + "-+−/") | any_char)
number = st.builds(
    lambda sign, runs, seps, unit, space, noise: (
        sign
        + "".join(r + s for r, s in zip(runs, seps + [""] * len(runs), strict=False))
        + space
        + unit
        + noise
    ),
    st.sampled_from(["", "-", "+", "−", "\u200f"]),
    st.lists(st.text(st.sampled_from(DIGITS), min_size=1, max_size=7), min_size=1, max_size=4),
    st.lists(st.sampled_from(SEPARATORS), max_size=3),
    st.sampled_from([""] + UNIT_WORDS),
    st.sampled_from(["", " ", "  ", "\u00a0"]),
    st.sampled_from(["", "", "", "\u202e", "\u2066", " x"]),
)
typed_date = st.builds(
    lambda d, m, y, sep: sep.join(p for p in (d, m, y) if p),
    st.integers(0, 40).map(str),
    st.integers(0, 14).map(str),
    st.sampled_from(["", "2025", "2026", "2027", "26", "٢٠٢٦"]),
    st.sampled_from(["/", "-", ".", " / "]),
)
very_long = st.builds(
    lambda n, c: c * n,
    st.integers(900, 6000),
    st.sampled_from(["9", "٩", "a", "ب", "\u202e", "9,"]),
)
inputs = st.one_of(
    chaos,
    number,
    typed_date,
    st.sampled_from(WORDS + UNIT_WORDS),
    very_long,
    st.tuples(number, chaos).map("".join),
)
batches = st.lists(st.tuples(inputs, st.sampled_from(LANGUAGES)), min_size=BATCH, max_size=BATCH)


# --- translated refusals ---------------------------------------------------------------------


@cache
def translated(language: str) -> frozenset[str]:
    """The msgids with a translation in `language`'s catalog (all of them for English)."""
    with po_path(language).open("rb") as file:
        catalog = read_po(file, locale=language)
    return frozenset(
        str(m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (language == "en" or (m.string and not m.fuzzy))
    )


class Recording(Translator):
    """A translator that remembers which messages it was asked to translate."""

    def __init__(self, inner: Translator) -> None:
        super().__init__(inner.language, inner._translations)
        self.asked: list[str] = []

    def gettext(self, message: str, **values: object) -> str:
        self.asked.append(message)
        return super().gettext(message, **values)


@cache
def recording(language: str) -> Recording:
    return Recording(translator(language))


def judge(spec: FieldSpec, text: str, language: str) -> None:
    """Read `text` for `spec`: no crash, a valid value or a translated refusal."""
    tr = recording(language)
    tr.asked.clear()
    result = check(spec, Given(text=text), tr, TODAY, CURRENCY)
    results = [result]
    if isinstance(result, Which):
        first, second = result.candidates
        assert first != second
        results = [accept_number(spec, c, result.unit, tr, CURRENCY) for c in (first, second)]
    for outcome in results:
        if isinstance(outcome, Accepted):
            assert value_fits(spec, outcome.value), (spec.name, text, outcome)
            line = answer_line(spec, outcome.value, tr, None, CURRENCY, outcome.typed)
            assert isolated_only(line), line
        else:
            assert isinstance(outcome, Rejected)
            assert outcome.message
            assert tr.asked, text
    for message in tr.asked:
        for other in LANGUAGES:
            assert message in translated(other), (other, message)


def isolated_only(line: str) -> bool:
    """Bidi controls in a rendered line are only our own balanced isolates."""
    depth = 0
    for char in line:
        if char == FSI:
            depth += 1
        elif char == PDI:
            depth -= 1
            if depth < 0:
                return False
        elif char in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067":  # marks are Babel's
            return False
    return depth == 0


PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_typed_answer_is_a_valid_value_or_a_translated_refusal() -> None:
    """Each generated input is given to a field of every type (and cleaned as text), so one
    run of 10,000 inputs checks 10,000 inputs per field type."""
    counted = dict.fromkeys(TYPES, 0)
    specs = {kind: fields_of(kind) for kind in TYPES}

    @PROPERTY
    @given(batches)
    def run(batch: list[tuple[str, str]]) -> None:
        for i, (text, language) in enumerate(batch):
            cleaned_is_clean(text)
            for kind in TYPES:
                judge(specs[kind][i % len(specs[kind])], text, language)
                counted[kind] += 1

    run()
    assert min(counted.values()) >= EXAMPLES * BATCH, counted


def cleaned_is_clean(text: str) -> None:
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned, text
    for char in cleaned:
        category = unicodedata.category(char)
        assert char in KEPT_FORMAT or char == "\n" or category not in ("Cf", "Cs", "Cc"), text


def test_numbers_within_bounds_are_kept_exactly() -> None:
    spec = next(s for s in BUILT_IN if s.name == "paper_kg")
    tr = translator("en")
    assert check(spec, Given("100000"), tr, TODAY) == Accepted(100000.0)
    assert isinstance(check(spec, Given("100.5 t"), tr, TODAY), Rejected)
    assert check(spec, Given("0.1 t"), tr, TODAY) == Accepted(100.0, "0.1 t")
    huge = synthetic(type="decimal")
    assert isinstance(check(huge, Given("9" * 5000), tr, TODAY), Rejected)
    assert isinstance(check(huge, Given(str(Decimal(10) ** 12)), tr, TODAY), Accepted)
