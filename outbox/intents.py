"""What an outbox row says, and how it becomes a `Reply` when it is sent.

A row does not hold text rendered in one language at enqueue time: it holds an *intent*,
phrases by message key (the gettext msgid) with their parameters, options whose labels are
phrases too, and a media reference. It is translated when it is sent, in the recipient's
language of that moment, and the recipient's channel then renders the `Reply` within its own
limits (splitting long texts there, not here).

A phrase is JSON:

* ``{"msgid": ..., "params": {...}}``, or with ``"plural"`` and ``"n"`` a plural message
  (made by `gettext` / `ngettext`, names the catalog extraction knows);
* ``{"literal": text}``: text written by a person (a broadcast, a coordinator's question) or
  a row from before intents (migration 0006);
* ``{"localized": {language: text, "*": text for any}}``: text made per language from data
  (form titles, digests), see `per_language`.

A parameter is a plain value (numbers are written the recipient's way), a phrase, or
``{"date": "YYYY-MM-DD", "format": "d MMMM"}``. An intent may name the digits its numbers
and dates are written in (``"digits": "arab" | "latn"``, the recipient's group's choice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from handlers.messages import Option, Photo, Reply
from locales import LANGUAGES, Translator, translator
from storage.models import OutboxMessage
from storage.outbox import FILE_ID

Phrase = dict[str, Any]
COMMON = "*"


def gettext(message: str, **params: Any) -> Phrase:
    """`message` (a msgid of the catalogs) with its parameters, translated when sent."""
    return {"msgid": message, "params": {k: _param(v) for k, v in params.items()}}


def ngettext(singular: str, plural: str, n: int, **params: Any) -> Phrase:
    """A plural message for `n` (also available as ``{n}``), translated when sent."""
    phrase = gettext(singular, **params)
    phrase.update(plural=plural, n=n)
    return phrase


def literal(text: str) -> Phrase:
    """Text as it is, in whatever language it was written."""
    return {"literal": text}


def localized(texts: Mapping[str, str]) -> Phrase:
    """One text per language (``"*"``: for any language without its own)."""
    return {"localized": dict(texts)}


def per_language(make: Callable[[Translator], str], digits: str | None = None) -> Phrase:
    """Text made from data for each language Sanad speaks (a form's title, a period's name,
    a whole digest), so that the recipient reads it in their language of the sending day;
    `digits`: those of the recipient's group (see `locales.translator`)."""
    return localized({language: make(translator(language, digits)) for language in LANGUAGES})


def day(value: date, format: str = "medium") -> dict[str, str]:
    """A date parameter, written the recipient's way."""
    return {"date": value.isoformat(), "format": format}


def _param(value: Any) -> Any:
    if isinstance(value, date):
        return day(value)
    return value


@dataclass(frozen=True)
class Intent:
    """What to tell someone: lines of phrases, options (label phrase, value), media."""

    lines: tuple[Phrase, ...]
    options: tuple[tuple[Phrase, str], ...] = ()
    photo: str | Phrase | None = None  # a path or FILE_ID + id; or localized paths
    document: str | None = None
    columns: int = 1
    digits: str | None = None  # the digits of the recipient's group: "arab" or "latn"
    expect: str | None = None  # what answers the question besides its options (Reply.expect)

    @classmethod
    def of(cls, *lines: Phrase, **kwargs: Any) -> Intent:
        return cls(tuple(lines), **kwargs)

    @classmethod
    def plain(
        cls,
        text: str,
        options: Sequence[tuple[str, str]] = (),
        photo: str | None = None,
    ) -> Intent:
        """Text and option labels as they are (no translation)."""
        return cls(
            (literal(text),) if text else (),
            tuple((literal(label), value) for label, value in options),
            photo=photo,
        )

    def message_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {"lines": list(self.lines)}
        if self.columns != 1:
            message["columns"] = self.columns
        if self.digits is not None:
            message["digits"] = self.digits
        if self.expect is not None:
            message["expect"] = self.expect
        return message

    def options_json(self) -> list[dict[str, Any]]:
        return [{"label": label, "value": value} for label, value in self.options]

    def media_json(self) -> dict[str, Any] | None:
        if self.document is not None:
            return {"document": self.document}
        if self.photo is not None:
            return {"photo": self.photo}
        return None


def intent_of(reply: Reply) -> Intent:
    """A reply already rendered in its language (a direct reply that could not be sent), kept
    as it is: its text and labels literal, its photo or document by reference."""
    photo: str | None = None
    if isinstance(reply.photo, Photo):
        photo = FILE_ID + reply.photo.file_id if reply.photo.file_id else reply.photo.path
    elif reply.photo is not None:
        photo = str(reply.photo)
    return Intent(
        (literal(reply.text),) if reply.text else (),
        tuple((literal(option.label), option.value) for option in reply.options),
        photo=photo,
        document=str(reply.document) if reply.document is not None else None,
        columns=reply.columns,
        expect=reply.expect,
    )


def text_of(phrase: Phrase, tr: Translator) -> str:
    """`phrase` in the language of `tr`."""
    if "literal" in phrase:
        return str(phrase["literal"])
    if "localized" in phrase:
        return _pick(phrase["localized"], tr.language)
    params = {name: _value(value, tr) for name, value in phrase.get("params", {}).items()}
    if "plural" in phrase:
        return tr.ngettext(phrase["msgid"], phrase["plural"], int(phrase["n"]), **params)
    return tr.gettext(phrase["msgid"], **params)


def _value(value: Any, tr: Translator) -> Any:
    if isinstance(value, dict) and "date" in value:
        return tr.date(date.fromisoformat(value["date"]), value.get("format", "medium"))
    if isinstance(value, dict):
        return text_of(value, tr)
    return value


def _pick(texts: Mapping[str, Any], language: str) -> Any:
    for key in (language, COMMON, *LANGUAGES):
        if texts.get(key):
            return texts[key]
    return next(iter(texts.values()), "")


def reply_for(message: OutboxMessage, language: str | None) -> Reply:
    """The reply an outbox row stands for, in `language` (None: the row's own language)."""
    tr = translator(language or message.language, message.message.get("digits"))
    lines = message.message.get("lines", [])
    text = "\n".join(text_of(line, tr) for line in lines)
    options = tuple(
        Option(text_of(option["label"], tr), str(option["value"])) for option in message.options
    )
    media = message.media or {}
    photo: Path | Photo | None = None
    document: Path | None = None
    if "document" in media:
        document = Path(media["document"])
    elif "photo" in media:
        reference = media["photo"]
        if isinstance(reference, dict):
            reference = _pick(reference.get("localized", {}), tr.language)
        if str(reference).startswith(FILE_ID):
            photo = Photo(file_id=str(reference)[len(FILE_ID) :])
        else:
            photo = Path(str(reference))
    return Reply(
        text,
        options,
        document=document,
        photo=photo,
        columns=int(message.message.get("columns", 1)),
        expect=message.message.get("expect"),
    )
