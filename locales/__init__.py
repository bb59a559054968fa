"""Per-user translation for Sanad: catalogs, plurals, numbers, dates, bidi isolation.

Every reply is translated for *its* user through an explicit :class:`Translator`::

    t = translator(user.language)
    t.gettext("Hello {name}.", name=user.name)
    t.ngettext("{n} report", "{n} reports", count)

There is deliberately no ``gettext.install``, no global "current language" and no context
variable: a language chosen for one update can never leak into the next one.

Messages are plain text, never HTML. Values are inserted as text between FIRST STRONG
ISOLATE (U+2068) and POP DIRECTIONAL ISOLATE (U+2069) so that a Latin name or a number
does not scramble an Arabic sentence (and the reverse). A channel that renders HTML must
escape the finished string itself; nothing here escapes.

Catalogs are the ``.po`` files next to this module, compiled in memory on first use; no
``.mo`` file is committed. English source strings are the msgids: a missing translation
falls back to the English text.
"""

from __future__ import annotations

import gettext as _gettext
import logging
import string
import threading
from collections.abc import Callable
from datetime import date as _date
from datetime import datetime as _datetime
from decimal import Decimal
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, localedata, parse_locale
from babel.dates import format_date, format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, format_percent

__all__ = [
    "CHOOSE_LANGUAGE",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "WELCOME",
    "N_",
    "Translator",
    "report_count",
    "supported",
    "translator",
]

log = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("ar", "en", "fr")
DEFAULT_LANGUAGE = "ar"
RTL_LANGUAGES: frozenset[str] = frozenset({"ar"})

#: The Babel locale each language formats dates, numbers and money with. Plain "en" is
#: American (11/29/26, Nov 29); the network's English readers expect day-month order.
FORMAT_LOCALES: dict[str, str] = {"ar": "ar", "en": "en_GB", "fr": "fr"}
#: Digit shapes a group may choose (`digits:` in the network file). Arabic-Indic digits
#: (٠١٢٣) are written in Arabic text only; English and French text always uses Latin ones.
DIGITS: tuple[str, ...] = ("latn", "arab")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_LATIN = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")

#: Each language's name in itself, for the language picker (never translated).
LANGUAGE_NAMES: dict[str, str] = {"ar": "العربية", "en": "English", "fr": "Français"}

LOCALES_DIR = Path(__file__).resolve().parent
DOMAIN = "messages"

#: The gettext plural rule for Arabic, in CLDR order: zero, one, two, few (n%100 in 3..10),
#: many (n%100 in 11..99), other (100-102, 200, ...). The ar .po header must carry it.
ARABIC_PLURAL_FORMS = (
    "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : "
    "n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5);"
)
#: Plural headers that are fixed by hand rather than taken from Babel's table.
PLURAL_FORMS: dict[str, str] = {"ar": ARABIC_PLURAL_FORMS}

FSI = "\u2068"  # FIRST STRONG ISOLATE
PDI = "\u2069"  # POP DIRECTIONAL ISOLATE
# Embeddings, overrides and isolates inside a value could close our isolate early or leak
# direction into the sentence around it, so they are removed from interpolated values.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


def N_(message: str) -> str:
    """Mark ``message`` for extraction; translate it later with a user's translator."""
    return message


def supported(language_code: str | None) -> str | None:
    """Map a client language tag to one of :data:`LANGUAGES`.

    ``"ar-EG"``, ``"ar_EG"`` and ``"AR"`` give ``"ar"``; ``"fr-MA"`` gives ``"fr"``; an
    unsupported or empty tag gives ``None``.
    """
    if not language_code:
        return None
    primary = language_code.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def po_path(language: str, directory: Path = LOCALES_DIR) -> Path:
    """Where the catalog of ``language`` lives under ``directory``."""
    return directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def plural_function(plural_forms: str) -> tuple[int, Callable[[int], int]]:
    """Parse a ``Plural-Forms`` header value into ``(nplurals, n -> form index)``."""
    params = dict(part.strip().split("=", 1) for part in plural_forms.split(";") if "=" in part)
    return int(params["nplurals"]), _gettext.c2py(params["plural"].strip())


def same_plural_rule(first: str, second: str, upto: int = 1200) -> bool:
    """Whether two ``Plural-Forms`` values pick the same form for every n below ``upto``."""
    count_a, rule_a = plural_function(first)
    count_b, rule_b = plural_function(second)
    return count_a == count_b and all(rule_a(n) == rule_b(n) for n in range(upto))


def load_catalog(language: str, directory: Path = LOCALES_DIR) -> Catalog:
    """Read the ``.po`` catalog of ``language``, with a known-good plural header.

    ``read_po`` keeps the ``Plural-Forms`` header of the file (Catalog._set_mime_headers)
    and ``write_mo`` writes it back, so the header in the ``.po`` is what runs. Babel's own
    table (``babel.messages.plurals``) is used only when a catalog has no such header, e.g.
    one made by ``pybabel init``; in Babel releases that predate the fix of python-babel
    #816 that table gives Arabic form 4 ("many") to n%100 in 0..2 instead of 11..99, so 11
    would take the "other" form and 101 the "many" form. If a catalog ever arrives with a
    rule that differs from :data:`PLURAL_FORMS`, we log it and use the correct rule.
    """
    with po_path(language, directory).open("rb") as file:
        catalog = read_po(file, locale=language, domain=DOMAIN)
    expected = PLURAL_FORMS.get(language)
    if expected and not same_plural_rule(catalog.plural_forms, expected):
        log.warning(
            "%s catalog has plural rule %r; using %r", language, catalog.plural_forms, expected
        )
        catalog.mime_headers = [("Plural-Forms", expected)]
    return catalog


def compile_catalog(catalog: Catalog) -> _gettext.GNUTranslations:
    """Compile ``catalog`` in memory, leaving out fuzzy and incomplete entries.

    ``write_mo`` would fill an empty plural form with the English msgid; dropping the whole
    entry instead makes a half-translated plural fall back to English consistently.
    """
    for message in list(catalog)[1:]:
        forms = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if not all(forms):
            catalog.delete(message.id, message.context)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


#: The parts of a locale's CLDR data that Babel's format_date, format_datetime,
#: format_decimal, format_percent and format_currency read (found by formatting every date
#: pattern, number, percent and currency the bot writes in each language), with a few small
#: neighbours they may read too. A locale's whole data is about 1-1.5 MiB once loaded (unit
#: names, language and territory names, compact formats...): these are a fraction of it.
FORMAT_DATA: frozenset[str] = frozenset(
    {
        "currency_formats",
        "currency_names",
        "currency_names_plural",
        "currency_symbols",
        "currency_unit_patterns",
        "date_formats",
        "datetime_formats",
        "datetime_skeletons",
        "day_periods",
        "days",
        "decimal_formats",
        "default_numbering_system",
        "eras",
        "meta_zones",
        "months",
        "number_symbols",
        "percent_formats",
        "plural_form",
        "quarters",
        "scientific_formats",
        "time_formats",
        "time_zones",
        "week_data",
        "zone_formats",
    }
)
_loading = threading.Lock()


class _FormatData(dict[str | int | None, object]):
    """One locale's merged CLDR data cut to :data:`FORMAT_DATA`. A key outside it loads the
    locale's whole data into this dict (once, logged), so any format still gets Babel's
    answer; it only costs the memory the cut saves."""

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        self.whole = False
        super().__init__(self._load(FORMAT_DATA))

    def _load(self, keys: frozenset[str] | None) -> dict[str | int | None, object]:
        # Babel keeps every locale it loads (and its parents: en_GB merges root, en and
        # en_001) in its own cache; the copy taken here is all that stays.
        with _loading:
            try:
                data = localedata.load(self.identifier)
                return {k: v for k, v in data.items() if keys is None or k in keys}
            finally:
                localedata.clear_caches()

    def __missing__(self, key: str | int | None) -> object:
        if self.whole:
            raise KeyError(key)
        log.info(
            "locale %s: %r is not in FORMAT_DATA; loading its whole data", self.identifier, key
        )
        self.update(self._load(None))
        self.whole = True
        return self[key]


class _FormatLocale(Locale):
    """A Babel locale whose data is :class:`_FormatData`: what formatting reads."""

    def __init__(self, identifier: str) -> None:
        language, territory, script, variant = parse_locale(identifier)[:4]
        super().__init__(language, territory, script, variant)
        self._format_data = localedata.LocaleDataDict(_FormatData(identifier))

    @property
    def _data(self) -> localedata.LocaleDataDict:
        return self._format_data


@cache
def format_locale(identifier: str) -> Locale:
    """The Babel locale Sanad formats ``identifier`` (e.g. "en_GB") with, holding only the
    CLDR data formatting reads (see :data:`FORMAT_DATA`)."""
    return _FormatLocale(identifier)


class Translator:
    """Translations and formats of one language; safe to share between users and threads."""

    def __init__(
        self, language: str, translations: _gettext.NullTranslations, digits: str = "latn"
    ) -> None:
        self.language = language
        self._translations = translations
        #: "arab" (٠١٢٣) or "latn" (0123): the digits numbers and dates are written with.
        self.digits = digits if language in RTL_LANGUAGES else "latn"
        self._locale = FORMAT_LOCALES.get(language, language)

    def __repr__(self) -> str:
        return f"Translator({self.language!r}, digits={self.digits!r})"

    @property
    def direction(self) -> str:
        """``"rtl"`` for Arabic, else ``"ltr"``."""
        return "rtl" if self.language in RTL_LANGUAGES else "ltr"

    def gettext(self, message: str, **values: object) -> str:
        """Translate ``message``, then fill its ``{name}`` fields with isolated ``values``."""
        return self._fill(self._translations.gettext(message), message, values)

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """Translate the plural form for ``n``; ``n`` is also available as ``{n}``."""
        translated = self._translations.ngettext(singular, plural, n)
        source = singular if n == 1 else plural
        return self._fill(translated, source, {"n": n, **values})

    def number(self, value: int | float | Decimal) -> str:
        """Format a number the way this language writes it (Babel's ``format_decimal``)."""
        return _format_number(value, self._locale, self.digits)

    def percent(self, ratio: float) -> str:
        """``0.75`` as "75%" in this language and digits."""
        text = format_percent(
            ratio, locale=format_locale(self._locale), numbering_system=self.digits
        )
        return self.digits_of(text).replace("%", "٪") if self.digits == "arab" else text

    def money(self, value: int | float | Decimal, currency: str) -> str:
        """An amount with its currency (ISO code such as "BHD"), as this language writes it."""
        return self.digits_of(
            format_currency(
                value, currency, locale=format_locale(self._locale), numbering_system=self.digits
            )
        )

    def digits_of(self, text: str) -> str:
        """``text`` (already formatted) with its digits in this translator's shape."""
        return text.translate(_ARABIC_INDIC if self.digits == "arab" else _LATIN)

    def date(self, value: _date, format: str = "medium") -> str:
        """Format a calendar date (Babel's ``format_date``), in this translator's digits."""
        return self.digits_of(_format_date(value, format, self._locale))

    def datetime(self, value: _datetime, tz: str, format: str = "short") -> str:
        """Format an aware datetime (stored in UTC) as wall-clock time in the IANA zone ``tz``."""
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("datetime must be timezone-aware (UTC in storage)")
        zone = ZoneInfo(tz)
        return self.digits_of(
            format_datetime(
                value.astimezone(zone),
                format=format,
                tzinfo=zone,
                locale=format_locale(self._locale),
            )
        )

    def isolate(self, value: object) -> str:
        """Render one interpolated value as text wrapped in FSI…PDI.

        Numbers go through :meth:`number`, dates through :meth:`date`; anything else is
        ``str()``-ed with its own bidi embedding/isolate controls removed.
        """
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            text = self.number(value)
        elif isinstance(value, _datetime):
            raise TypeError("format datetimes with Translator.datetime(value, tz) first")
        elif isinstance(value, _date):
            text = self.date(value)
        else:
            text = str(value).translate(_BIDI_CONTROLS)
        return f"{FSI}{text}{PDI}"

    def _fill(self, translated: str, source: str, values: dict[str, object]) -> str:
        isolated = {name: self.isolate(value) for name, value in values.items()}
        try:
            return translated.format_map(isolated)
        except (KeyError, IndexError, ValueError) as error:
            if translated == source:
                raise
            # A broken translation must not break the conversation; the catalog check
            # (scripts/i18n.sh check) reports it before release.
            log.error("bad placeholders in %s translation of %r: %r", self.language, source, error)
            return source.format_map(isolated)


@cache
def _translations_for(language: str) -> _gettext.NullTranslations:
    path = po_path(language)
    if not path.exists():
        return _gettext.NullTranslations()
    return compile_catalog(load_catalog(language))


@cache
def _translator_for(language: str, digits: str) -> Translator:
    return Translator(language, _translations_for(language), digits)


def translator(language: str | None, digits: str | None = None) -> Translator:
    """The shared translator for ``language`` (a tag like ``"fr-MA"`` is fine).

    Unknown languages get :data:`DEFAULT_LANGUAGE`. ``digits`` is the reader's group's
    choice ("arab" or "latn", see :data:`DIGITS`); it only changes Arabic text.
    """
    return _translator_for(
        supported(language) or DEFAULT_LANGUAGE, digits if digits in DIGITS else "latn"
    )


def placeholders(text: str) -> set[str]:
    """The ``{name}`` fields of a message (positional ``{}`` shows up as ``""``)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


# Messages owned by this package: the greeting and the language picker, and the report count
# that digests and confirmations share. Marked here so extraction keeps them in the catalog.
WELCOME = N_("Welcome to Sanad.")
CHOOSE_LANGUAGE = N_("Choose your language.")


def report_count(t: Translator, n: int) -> str:
    """``"3 reports"`` in the language of ``t``, with Arabic's six plural forms."""
    return t.ngettext("{n} report", "{n} reports", n)


@lru_cache(maxsize=4096)
def _format_number(value: int | float | Decimal, locale: str, digits: str = "latn") -> str:
    """Babel's formatting, remembered: questions format the same small numbers every time.

    Babel's "arab" numbering system gives the Arabic separators (٬ ٫) but keeps Latin
    digits, so the digits are mapped here."""
    text = format_decimal(value, locale=format_locale(locale), numbering_system=digits)
    return text.translate(_ARABIC_INDIC) if digits == "arab" else text


@lru_cache(maxsize=4096)
def _format_date(value: _date, format: str, locale: str) -> str:
    """Babel's date formatting, remembered (it is slow, and the same few dates recur)."""
    return format_date(value, format=format, locale=format_locale(locale))
