"""What every channel is: the seam between a messaging platform and Sanad.

A channel does four things, and only channels import a platform library:

* **parse** a platform event into an `Incoming` (who, text, option pressed, photo, location,
  command, a stable message id, and the message it answers when the platform tells);
* **render** a `Reply` into platform messages within the platform's limits, counted in the
  platform's own units (Telegram: UTF-16 code units), splitting long texts with `split`;
* **send** them to an address, with the platform's client;
* **map** the platform's errors to the four outcomes the outbox sender knows: `RetryAfter`
  (wait, then the same message), `Unreachable` (the person blocked us or is gone),
  `Transient` (5xx, timeouts, the network: retried with backoff) and `Rejected` (refused
  for good: not retried).

The same `send` serves direct replies and outbox messages: the outbox stores what to say
(storage.outbox), which is made into a `Reply` in the recipient's language when it is sent
(outbox.intents) and then goes through the channel like any reply.

A photo a platform keeps (`Photo.file_id`: Telegram's) reaches a recipient on another
channel through a `KeptFile`: the keeping channel gives it as a file on this machine (fetched
once, kept under DATA_DIR/media/<channel>), and the other channel uploads that file.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from handlers.messages import Incoming, Reply
from outbox.sender import Address, Deliver, Rejected, RetryAfter, Transient, Unreachable
from storage.models import OutboxMessage

__all__ = [
    "Address",
    "Channel",
    "Deliver",
    "KeptFile",
    "by_channel",
    "Limits",
    "Rejected",
    "RetryAfter",
    "Transient",
    "Unreachable",
    "split",
    "utf16_units",
]

Measure = Callable[[str], int]


def utf16_units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts: a character outside the Basic
    Multilingual Plane (most emoji) counts 2."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Limits:
    """How much one platform message holds, in the platform's `measure`."""

    text: int
    caption: int
    measure: Measure = len


@runtime_checkable
class Channel(Protocol):
    """A messaging platform as Sanad sees it."""

    name: str
    limits: Limits

    def parse(self, event: Any) -> Incoming | None:
        """The neutral form of a platform event, or None for events Sanad does not act on."""
        ...

    def render(self, reply: Reply) -> list[Any]:
        """The platform messages that carry `reply`, each within the platform's limits;
        options go on the last one."""
        ...

    async def send_reply(self, address: str, reply: Reply) -> str | None:
        """Render `reply` and send it to `address`; returns the platform's id of the last
        message sent (None where the platform has none). The platform's errors are raised as
        RetryAfter, Unreachable, Transient or Rejected."""
        ...


#: A file another platform keeps (a Telegram photo's file id) -> the same file on this machine,
#: fetched at most once. Raises `Rejected` when it cannot be had (an unknown id), `Transient`
#: when not now.
KeptFile = Callable[[str], Awaitable[Path]]


def by_channel(delivers: Mapping[str, Deliver]) -> Deliver:
    """One `Deliver` for the outbox sender of a process running several channels: each row
    goes through the channel of its recipient's current address; a channel this process does
    not run refuses it (Rejected)."""

    async def deliver(address: Address, message: OutboxMessage) -> str | None:
        channel = delivers.get(address.channel)
        if channel is None:
            raise Rejected(f"no {address.channel} channel in this process")
        return await channel(address, message)

    return deliver


# --- splitting long texts -------------------------------------------------------------------

ISOLATE_OPENERS = frozenset("\u2066\u2067\u2068")  # LRI, RLI, FSI
ISOLATE_CLOSER = "\u2069"  # PDI
PARAGRAPH, LINE, SPACE = 3, 2, 1  # how good a place to cut the end of a piece is


def split(text: str, limit: int, measure: Measure = len) -> list[str]:
    """`text` in parts of at most `limit` (in `measure`), cut where a reader expects it: at a
    paragraph end, else a line end, else a space, never inside a word, a number or a bidi
    isolate (FSI ... PDI around a value). A single word longer than `limit` is the only thing
    cut inside, where it has to be. Parts that would hold only white space are left out."""
    if measure(text) <= limit:
        return [text]
    parts: list[str] = []
    pieces: list[tuple[str, int, int]] = []  # (text, size, how good a cut after it is)
    size = 0
    for piece, strength in _pieces(text):
        piece_size = measure(piece)
        if piece_size > limit:  # one word longer than a whole message
            if pieces:
                parts.append("".join(p for p, _, _ in pieces))
                pieces, size = [], 0
            parts += _cut(piece, limit, measure)
            continue
        if size + piece_size > limit:
            keep = _best_cut(pieces, limit)
            parts.append("".join(p for p, _, _ in pieces[:keep]))
            pieces = pieces[keep:]
            size = sum(s for _, s, _ in pieces)
        pieces.append((piece, piece_size, strength))
        size += piece_size
    if pieces:
        parts.append("".join(p for p, _, _ in pieces))
    return [part for part in parts if part.strip()]


def _pieces(text: str) -> list[tuple[str, int]]:
    """`text` as unbreakable pieces (a word with the white space after it), each with how good
    a place to cut its end is. White space inside a bidi isolate does not end a piece."""
    pieces: list[tuple[str, int]] = []
    start, depth = 0, 0
    for index, char in enumerate(text):
        if char in ISOLATE_OPENERS:
            depth += 1
        elif char == ISOLATE_CLOSER:
            depth = max(0, depth - 1)
        if depth or not char.isspace():
            continue
        following = text[index + 1] if index + 1 < len(text) else ""
        if following and following.isspace():
            continue  # the piece takes all the white space that follows its word
        piece = text[start : index + 1]
        strength = PARAGRAPH if piece.endswith("\n\n") else LINE if "\n" in piece else SPACE
        pieces.append((piece, strength))
        start = index + 1
    if start < len(text):
        pieces.append((text[start:], SPACE))
    return pieces


def _best_cut(pieces: list[tuple[str, int, int]], limit: int) -> int:
    """How many of `pieces` make the next part: up to the last paragraph end if that fills at
    least half a message, else the last line end, else everything."""
    for strength in (PARAGRAPH, LINE):
        filled = 0
        best = 0
        for number, (_, size, after) in enumerate(pieces, 1):
            filled += size
            if after >= strength and filled * 2 >= limit:
                best = number
        if best:
            return best
    return len(pieces)


def _cut(word: str, limit: int, measure: Measure) -> list[str]:
    """A word too long for one message, cut into parts of at most `limit`; a combining mark
    stays with the letter before it."""
    parts: list[str] = []
    current, size = "", 0
    for char in word:
        char_size = measure(char)
        if current and size + char_size > limit:
            cut = len(current)
            if unicodedata.combining(char):
                while cut > 1 and unicodedata.combining(current[cut - 1]):
                    cut -= 1
                cut = max(1, cut - 1)  # the letter goes with its marks
            parts.append(current[:cut])
            current = current[cut:]
            size = measure(current)
        current += char
        size += char_size
    if current:
        parts.append(current)
    return parts
