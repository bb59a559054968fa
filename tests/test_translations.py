"""The catalogs are complete and correct, and every user gets their own translator."""

from __future__ import annotations

import builtins
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import write_po

from locales import (
    ARABIC_PLURAL_FORMS,
    CHOOSE_LANGUAGE,
    DEFAULT_LANGUAGE,
    FORMAT_LOCALES,
    FSI,
    LANGUAGES,
    PDI,
    WELCOME,
    Translator,
    compile_catalog,
    format_locale,
    load_catalog,
    placeholders,
    plural_function,
    po_path,
    report_count,
    supported,
    translator,
)
from locales.check import (
    REQUIRED_LANGUAGES,
    check_catalogs,
    check_message,
    fix_plural_forms,
    messages,
    read_catalog,
    template_path,
)

# Babel's hand-written Arabic rule before the python-babel#816 fix: form 4 for n%100 in 0..2.
OLD_BABEL_ARABIC = (
    "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : "
    "n%100>=3 && n%100<=10 ? 3 : n%100>=0 && n%100<=2 ? 4 : 5);"
)


def template() -> dict:
    return messages(read_catalog(template_path()))


def catalog(language: str) -> Catalog:
    return read_catalog(po_path(language), locale=language)


# --- the shipped catalogs ---------------------------------------------------------------


def test_shipped_catalogs_pass_the_shared_check() -> None:
    assert check_catalogs() == []


@pytest.mark.parametrize("language", REQUIRED_LANGUAGES)
def test_every_message_is_translated_and_not_fuzzy(language: str) -> None:
    translated = messages(catalog(language))
    for key in template():
        message = translated[key]
        forms = message.string if message.pluralizable else (message.string,)
        assert all(forms), f"{language}: {key} untranslated"
        assert not message.fuzzy, f"{language}: {key} fuzzy"


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_holds_exactly_the_template_messages(language: str) -> None:
    assert messages(catalog(language)).keys() == template().keys()


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_use_the_placeholders_of_their_msgid(language: str) -> None:
    current = catalog(language)
    for message in messages(current).values():
        assert check_message(message, current.num_plurals, required=False) == []
        if not message.pluralizable and message.string:
            assert placeholders(message.string) == placeholders(message.id)


def test_seed_messages_are_in_the_template() -> None:
    ids = {key[0] for key in template()}
    assert {WELCOME, CHOOSE_LANGUAGE, ("{n} report", "{n} reports")} <= ids


# --- Arabic plurals (python-babel#816) --------------------------------------------------

ARABIC_REPORTS = {
    0: "\u20680\u2069 تقرير",
    1: "تقرير واحد",
    2: "تقريران",
    3: "\u20683\u2069 تقارير",
    10: "\u206810\u2069 تقارير",
    11: "\u206811\u2069 تقريرًا",  # "many": the form old Babel gave to 101
    99: "\u206899\u2069 تقريرًا",
    100: "\u2068100\u2069 تقرير",
    101: "\u2068101\u2069 تقرير",  # "other": the form old Babel gave to 11
    102: "\u2068102\u2069 تقرير",
}


@pytest.mark.parametrize(("n", "expected"), ARABIC_REPORTS.items())
def test_arabic_picks_the_right_plural_form(n: int, expected: str) -> None:
    assert report_count(translator("ar"), n) == expected


def test_arabic_header_is_the_hand_checked_rule() -> None:
    assert catalog("ar").plural_forms.replace(" ", "") == ARABIC_PLURAL_FORMS.replace(" ", "")
    _, rule = plural_function(catalog("ar").plural_forms)
    assert rule(11) == 4
    assert rule(101) == 5


def test_arabic_header_agrees_with_cldr() -> None:
    order = ["zero", "one", "two", "few", "many", "other"]
    cldr = Locale.parse("ar").plural_form
    _, rule = plural_function(catalog("ar").plural_forms)
    assert all(rule(n) == order.index(cldr(n)) for n in range(1200))


def write_catalog(path: Path, entries: dict, locale: str | None, plural_forms: str = "") -> None:
    """Write a small .po/.pot; ``entries`` maps msgid (or a pair) to msgstr (or a tuple)."""
    catalog = Catalog(locale=locale, domain="messages")
    if plural_forms:
        catalog.mime_headers = [("Plural-Forms", plural_forms)]
    for msgid, msgstr in entries.items():
        catalog.add(msgid, msgstr)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=0)


AR_FORMS = ("{n} تقرير", "تقرير واحد", "تقريران", "{n} تقارير", "{n} تقريرًا", "{n} تقرير")


def test_a_wrong_arabic_header_is_fixed_at_load(tmp_path: Path) -> None:
    pair = ("{n} report", "{n} reports")
    write_catalog(po_path("ar", tmp_path), {pair: AR_FORMS}, "ar", OLD_BABEL_ARABIC)
    arabic = Translator("ar", compile_catalog(load_catalog("ar", tmp_path)))
    assert arabic.ngettext(*pair, 11) == "\u206811\u2069 تقريرًا"
    assert arabic.ngettext(*pair, 101) == "\u2068101\u2069 تقرير"


def test_check_flags_and_update_repairs_a_wrong_arabic_header(tmp_path: Path) -> None:
    pair = ("{n} report", "{n} reports")
    write_catalog(template_path(tmp_path), {pair: ("", "")}, None)
    write_catalog(po_path("ar", tmp_path), {pair: AR_FORMS}, "ar", OLD_BABEL_ARABIC)
    problems = check_catalogs(tmp_path, languages=["ar"], required=["ar"])
    assert any("Plural-Forms" in problem for problem in problems)
    assert fix_plural_forms(tmp_path) == [po_path("ar", tmp_path)]
    assert check_catalogs(tmp_path, languages=["ar"], required=["ar"]) == []


# --- the shared check catches broken catalogs --------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A complete little catalog set: two messages in ar, en and fr."""
    write_catalog(template_path(tmp_path), {"Hello.": "", "Bye {name}.": ""}, None)
    write_catalog(
        po_path("ar", tmp_path),
        {"Hello.": "أهلًا.", "Bye {name}.": "وداعًا {name}."},
        "ar",
        ARABIC_PLURAL_FORMS,
    )
    write_catalog(po_path("en", tmp_path), {"Hello.": "", "Bye {name}.": ""}, "en")
    write_catalog(
        po_path("fr", tmp_path), {"Hello.": "Bonjour.", "Bye {name}.": "Au revoir {name}."}, "fr"
    )
    return tmp_path


def test_tiny_complete_catalog_passes(tiny: Path) -> None:
    assert check_catalogs(tiny) == []


def test_check_fails_when_a_catalog_lacks_a_message(tiny: Path) -> None:
    write_catalog(po_path("ar", tiny), {"Hello.": "أهلًا."}, "ar", ARABIC_PLURAL_FORMS)
    assert check_catalogs(tiny) == ["ar: 'Bye {name}.' is missing (run scripts/i18n.sh update)"]


def test_check_fails_on_untranslated_fuzzy_or_misplaced_fields(tiny: Path) -> None:
    write_catalog(po_path("fr", tiny), {"Hello.": "", "Bye {name}.": "Au revoir {nom}."}, "fr")
    problems = check_catalogs(tiny)
    assert "fr: 'Hello.' is not translated" in problems
    assert any("fr: 'Bye {name}.' msgstr has fields ['nom']" in p for p in problems)
    fuzzy = Message("Hello.", "Bonjour.", flags=["fuzzy"])
    assert check_message(fuzzy, 3, required=True) == ["is fuzzy"]


def test_check_fails_on_a_missing_plural_form() -> None:
    pair = Message(("{n} report", "{n} reports"), ("{n} rapport", "", "{n} rapports"))
    assert check_message(pair, 3, required=True) == ["is not translated in every plural form"]


# --- the translator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("ar", "ar"),
        ("ar-EG", "ar"),
        ("ar_EG", "ar"),
        ("AR", "ar"),
        ("fr-MA", "fr"),
        ("en-US", "en"),
        ("de", None),
        ("", None),
        (None, None),
    ],
)
def test_supported_maps_client_tags(tag: str | None, expected: str | None) -> None:
    assert supported(tag) == expected


def test_translators_are_shared_per_language_and_default_to_arabic() -> None:
    assert translator("fr-MA") is translator("fr")
    assert translator("de").language == DEFAULT_LANGUAGE == "ar"
    assert translator("ar").direction == "rtl"
    assert translator("en").direction == translator("fr").direction == "ltr"


def test_values_are_isolated_and_numbers_localised() -> None:
    fr = translator("fr")
    text = fr.gettext("The number must be at least {minimum}.", minimum=Decimal("1234.5"))
    assert text == "Le nombre doit être supérieur ou égal à \u20681\u202f234,5\u2069."
    name = translator("ar").gettext("Hello {name}.", name="Sitra \u202eWomen\u2069")
    assert name == f"Hello {FSI}Sitra Women{PDI}."  # untranslated: English, controls removed
    assert translator("en").gettext("{flag}", flag=True) == f"{FSI}True{PDI}"


def test_a_broken_translation_falls_back_to_english() -> None:
    french = Catalog(locale="fr")
    french.add("Hi {name}.", "Salut {nom}.")
    fr = Translator("fr", compile_catalog(french))
    assert fr.gettext("Hi {name}.", name="Amal") == f"Hi {FSI}Amal{PDI}."


def test_dates_and_times_are_formatted_in_the_group_zone() -> None:
    en, fr = translator("en"), translator("fr")
    assert en.date(date(2026, 11, 24)) == "24 Nov 2026"  # British order, not US
    at = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)
    assert fr.datetime(at, "Asia/Bahrain") == "25/11/2026 01:30"
    assert en.datetime(at, "Africa/Cairo", "HH:mm") == "00:30"
    with pytest.raises(ValueError):
        en.datetime(datetime(2026, 11, 24, 22, 30), "Africa/Cairo")


def test_translators_used_alternately_never_leak() -> None:
    ar, fr, en = translator("ar"), translator("fr"), translator("en")
    expected = {
        ar: ("مرحبًا بك في سند.", "\u20685\u2069 تقارير"),
        fr: ("Bienvenue sur Sanad.", "\u20685\u2069 rapports"),
        en: ("Welcome to Sanad.", "\u20685\u2069 reports"),
    }
    for t in [ar, fr, ar, en, fr, en, ar] * 3:
        assert (t.gettext(WELCOME), report_count(t, 5)) == expected[t]
    assert "_" not in vars(builtins)  # no gettext.install()


@pytest.mark.parametrize("identifier", sorted(set(FORMAT_LOCALES.values())))
def test_formats_with_the_cut_locale_data_are_babels(identifier: str) -> None:
    """format_locale keeps only FORMAT_DATA of a locale: every date, time, number, percent
    and amount the bot writes comes out as with Babel's own locale."""
    from babel.dates import format_date, format_datetime
    from babel.numbers import format_currency, format_decimal, format_percent

    cut, whole = format_locale(identifier), Locale.parse(identifier)
    zone = "Asia/Bahrain"
    for value in (date(2026, 1, 5), date(2025, 12, 31), date(2024, 2, 29)):
        for pattern in ("short", "medium", "long", "full", "d MMM", "LLLL y", "d MMM y", "MMM y"):
            assert format_date(value, pattern, locale=cut) == format_date(value, pattern, whole)
        moment = datetime(value.year, value.month, value.day, 13, 5, tzinfo=UTC)
        for pattern in ("short", "medium", "long", "full", "d MMM yyyy HH:mm", "h:mm a"):
            ours = format_datetime(moment, pattern, tzinfo=ZoneInfo(zone), locale=cut)
            assert ours == format_datetime(moment, pattern, tzinfo=ZoneInfo(zone), locale=whole)
    for number in (0, 2, 11, 1234.5, Decimal("-1234567.125")):
        for digits in ("latn", "arab"):
            assert format_decimal(number, locale=cut, numbering_system=digits) == format_decimal(
                number, locale=whole, numbering_system=digits
            )
        assert format_percent(0.25, locale=cut) == format_percent(0.25, locale=whole)
        for currency in ("BHD", "EUR", "MAD"):
            assert format_currency(number, currency, locale=cut) == format_currency(
                number, currency, locale=whole
            )
    # Data outside FORMAT_DATA (a zone's territory name) is loaded when asked for.
    assert cut.territories["BH"] == whole.territories["BH"]
