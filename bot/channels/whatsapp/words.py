"""Commands typed without "/", as their words in each language ("menu", "قائمة", "retour",
"inviter", "تصحيح REC-12").

Each command's words are a catalog entry, so translators list them like any other string:
the msgid is "command word|<command>", its translation the words people type, separated by
commas ("قائمة, القائمة"). The English words and the command names themselves work in every
language.

A word counts only as the whole message, or followed by a report's reference for the
commands that take one (/correct, /review, /history). Whether a typed answer is expected at
that moment (then the word is the answer) is the caller's to know (see parse.typed).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from locales import LANGUAGES, N_, translator

#: The commands a person may type as a word, and their catalog entries.
WORDS: dict[str, str] = {
    "menu": N_("command word|menu"),
    "back": N_("command word|back"),
    "cancel": N_("command word|cancel"),
    "help": N_("command word|help"),
    "skip": N_("command word|skip"),
    "language": N_("command word|language"),
    "report": N_("command word|report"),
    "myreports": N_("command word|my reports"),
    "status": N_("command word|status"),
    "digest": N_("command word|digest"),
    "remind": N_("command word|remind"),
    "broadcast": N_("command word|broadcast"),
    "broadcasts": N_("command word|broadcasts"),
    "correct": N_("command word|correct"),
    "review": N_("command word|review"),
    "history": N_("command word|history"),
    "invite": N_("command word|invite"),
    "people": N_("command word|people"),
    "export": N_("command word|export"),
}
#: The commands whose word works even while a question waits for typed text: the way out.
WAY_OUT = frozenset({"menu", "back", "cancel", "help"})
#: The commands whose word may be followed by a report's reference ("correct REC-12").
WITH_REFERENCE = frozenset({"correct", "review", "history"})
REFERENCE = re.compile(r"([A-Za-z]{1,12})-?([0-9\u0660-\u0669\u06f0-\u06f9]{1,9})")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
START = N_("command word|start")
_MARKS = re.compile(r"[\u064b-\u065f\u0670\u0640\u200e\u200f\u2066-\u2069\u202a-\u202e]")
_EDGES = " \t\n.!?؟،,;:«»\"'()"


def normalize(text: str) -> str:
    """What is compared: case-folded, without Arabic diacritics, tatweel, bidi marks or the
    punctuation around it; alef forms made one."""
    text = _MARKS.sub("", unicodedata.normalize("NFKC", text)).strip(_EDGES).casefold()
    return re.sub("[أإآ]", "ا", re.sub(r"\s+", " ", text))


def _words_of(msgid: str) -> set[str]:
    found = {normalize(msgid.split("|", 1)[1])}
    for language in LANGUAGES:
        translated = translator(language).gettext(msgid)
        found.update(normalize(word) for word in translated.split("|")[-1].split(","))
    return {word for word in found if word}


@cache
def command_words() -> dict[str, str]:
    """Typed word (normalized) -> command."""
    words = {command: command for command in WORDS}
    for command, msgid in WORDS.items():
        words.update(dict.fromkeys(_words_of(msgid), command))
    return words


@cache
def start_words() -> frozenset[str]:
    return frozenset(_words_of(START) | {"start"})


def as_command(text: str) -> str | None:
    """The command a typed word stands for ("Retour" -> "back"); None for other text."""
    return command_words().get(normalize(text))


def as_command_line(text: str) -> str | None:
    """The command line typed words stand for: "inviter" -> "/invite", "تصحيح REC-12" ->
    "/correct REC-12"; None for other text."""
    command = as_command(text)
    if command is not None:
        return f"/{command}"
    words, _, last = text.strip().rpartition(" ")
    reference = REFERENCE.fullmatch(last.strip(_EDGES))
    if not words or reference is None:
        return None
    command = as_command(words)
    if command not in WITH_REFERENCE:
        return None
    prefix, number = reference.groups()
    return f"/{command} {prefix.upper()}-{number.translate(_DIGITS)}"
