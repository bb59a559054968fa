"""Cleaning typed text before it is kept: what others read must be what the person saw.

Removed (the visible text stays):

- bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the directional
  marks LRM, RLM and ALM (U+200E, U+200F, U+061C): they can reorder what a coordinator reads
  or an export shows, and a summary isolates every value itself;
- every other invisible format character (Unicode category Cf: zero-width space, word joiner,
  BOM, soft hyphen, invisible operators, tag characters, ...);
- control characters (Cc) other than the line break, and lone surrogates (Cs), which cannot
  even be stored as UTF-8.

Kept: ZERO WIDTH NON-JOINER (U+200C) and ZERO WIDTH JOINER (U+200D), which Persian and Urdu
spelling and emoji sequences need and which cannot reorder text; and the Arabic number signs
and end-of-ayah marks (U+0600–U+0605, U+06DD, U+0890–U+0891, U+08E2), which are Cf but
visible. Tabs and other spaces become plain spaces, line and paragraph separators become
line breaks, and the result is in Unicode normal form NFC.
"""

from __future__ import annotations

import re
import unicodedata

KEPT_FORMAT = frozenset("\u200c\u200d\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u0890\u0891\u08e2")
_SPACES = re.compile(r"[^\S\n]+")


def _kept(char: str) -> str:
    if char in KEPT_FORMAT or char == "\n":
        return char
    category = unicodedata.category(char)
    if category in ("Cf", "Cs"):
        return ""
    if category == "Cc":
        return " " if char in "\t\r\v\f" else ""
    if category in ("Zl", "Zp"):
        return "\n"
    return char


def clean_text(text: str) -> str:
    """`text` without invisible controls, spaces tidied, NFC; line breaks are kept."""
    kept = "".join(_kept(c) for c in text.replace("\r\n", "\n"))
    lines = [
        _SPACES.sub(" ", line).strip() for line in unicodedata.normalize("NFC", kept).split("\n")
    ]
    return "\n".join(lines).strip()


def is_clean(text: str) -> bool:
    return clean_text(text) == text
