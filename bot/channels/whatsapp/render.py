"""A `Reply` -> Cloud API message payloads, within WhatsApp's limits (counted in characters).

* 1-3 options: reply buttons (titles <= 20); 4-10: one list (row titles <= 24, the full label
  in the row's description, <= 72); more, or option values too long for an id: numbered text,
  where the number typed is the answer (`Outgoing.numbered` keeps what each number stands for).
  Titles are shortened at word ends, and where two would read the same, their different
  endings are kept; buttons whose titles were shortened get their full labels in the body.
* Long text is split at paragraph, line or word ends, never inside a word, a number or a bidi
  isolate (FSI ... PDI): text messages <= 4096, interactive bodies and captions <= 1024; the
  options go with the last part.
* A location question is a `location_request_message` (its options follow as buttons).
* A photo or document is uploaded (`Outgoing.upload`) and sent by its media id, the text as
  caption when it fits and nothing has to follow it.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.messages import Option, Photo, Reply
from locales import FSI, PDI, Translator

JSON = dict[str, Any]
TEXT_LIMIT = 4096
BODY_LIMIT = 1024  # interactive body
CAPTION_LIMIT = 1024
BUTTON_TITLE = 20
MAX_BUTTONS = 3
LIST_BUTTON = 20
ROW_TITLE = 24
ROW_DESCRIPTION = 72
MAX_ROWS = 10
BUTTON_ID = 256
ROW_ID = 200
ELLIPSIS = "…"


@dataclass(frozen=True)
class Outgoing:
    """One message to send: its payload (without `messaging_product` and `to`), a file to upload
    first (its media id goes into the payload), what typed numbers stand for afterwards."""

    payload: JSON
    upload: Path | None = None
    numbered: tuple[str, ...] = field(default=())


def render(reply: Reply, tr: Translator) -> list[Outgoing]:
    """The messages that say `reply` on WhatsApp, in order."""
    photo = reply.photo
    if isinstance(photo, Photo):  # a file on disk, or one another platform keeps: not ours
        photo = Path(photo.path) if photo.path else None
    attached = photo or reply.document
    if attached is not None:
        return _with_file(reply, attached, tr)
    if reply.expect == "location":
        return _location(reply, tr)
    return _text_and_options(reply.text, reply.options, tr)


def _with_file(reply: Reply, path: Path, tr: Translator) -> list[Outgoing]:
    kind = "document" if path == reply.document else "image"
    media: JSON = {"id": ""}
    if kind == "document":
        media["filename"] = path.name
    rest = reply.text
    if not reply.options and len(reply.text) <= CAPTION_LIMIT:
        if reply.text:
            media["caption"] = reply.text
        rest = ""
    sent = [Outgoing({"type": kind, kind: media}, upload=path)]
    if rest or reply.options:
        sent += _text_and_options(rest or "\u2b07", reply.options, tr)
    return sent


def _location(reply: Reply, tr: Translator) -> list[Outgoing]:
    *before, last = split_text(reply.text, TEXT_LIMIT, last_limit=BODY_LIMIT)
    sent = [_text(part) for part in before]
    sent.append(
        Outgoing(
            {
                "type": "interactive",
                "interactive": {
                    "type": "location_request_message",
                    "body": {"text": last},
                    "action": {"name": "send_location"},
                },
            }
        )
    )
    if reply.options:
        sent += _text_and_options(tr.gettext("Or choose:"), reply.options, tr)
    return sent


def _text(body: str) -> Outgoing:
    return Outgoing({"type": "text", "text": {"body": body, "preview_url": False}})


def _text_and_options(text: str, options: tuple[Option, ...], tr: Translator) -> list[Outgoing]:
    if not options:
        return [_text(part) for part in split_text(text, TEXT_LIMIT)]
    fits_ids = all(0 < len(o.value) <= ROW_ID for o in options)
    if len(options) <= MAX_BUTTONS and fits_ids:
        return _buttons(text, options)
    if len(options) <= MAX_ROWS and fits_ids:
        return _list(text, options, tr)
    return _numbered(text, options, tr)


def _buttons(text: str, options: tuple[Option, ...]) -> list[Outgoing]:
    labels = [plain(o.label) for o in options]
    titles = short_titles(labels, BUTTON_TITLE)
    shortened = [label for label, title in zip(labels, titles, strict=True) if label != title]
    if shortened:
        text = text + "\n\n" + "\n".join(f"• {label}" for label in labels)
    *before, last = split_text(text, TEXT_LIMIT, last_limit=BODY_LIMIT)
    buttons = [
        {"type": "reply", "reply": {"id": o.value, "title": title}}
        for o, title in zip(options, titles, strict=True)
    ]
    return [_text(part) for part in before] + [
        Outgoing(
            {
                "type": "interactive",
                "interactive": {
                    "type": "button",
                    "body": {"text": last},
                    "action": {"buttons": buttons},
                },
            }
        )
    ]


def _list(text: str, options: tuple[Option, ...], tr: Translator) -> list[Outgoing]:
    labels = [plain(o.label) for o in options]
    titles = short_titles(labels, ROW_TITLE)
    rows = []
    for option, label, title in zip(options, labels, titles, strict=True):
        row: JSON = {"id": option.value, "title": title}
        if label != title:
            row["description"] = shorten(label, ROW_DESCRIPTION)
        rows.append(row)
    *before, last = split_text(text, TEXT_LIMIT, last_limit=BODY_LIMIT)
    button = shorten(plain(tr.gettext("Choose")), LIST_BUTTON)
    return [_text(part) for part in before] + [
        Outgoing(
            {
                "type": "interactive",
                "interactive": {
                    "type": "list",
                    "body": {"text": last},
                    "action": {"button": button, "sections": [{"rows": rows}]},
                },
            }
        )
    ]


def _numbered(text: str, options: tuple[Option, ...], tr: Translator) -> list[Outgoing]:
    lines = [f"{number}. {option.label}" for number, option in enumerate(options, 1)]
    hint = tr.gettext("Send the number of your choice.")
    whole = "\n".join([text, "", *lines, "", hint])
    parts = [_text(part) for part in split_text(whole, TEXT_LIMIT)]
    last = parts[-1]
    parts[-1] = Outgoing(last.payload, numbered=tuple(o.value for o in options))
    return parts


# --- titles ----------------------------------------------------------------------------------


def plain(label: str) -> str:
    """A label without bidi isolates (a title is one short run; WhatsApp lays it out)."""
    return " ".join(label.replace(FSI, "").replace(PDI, "").split())


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut at a word end with an ellipsis when too long."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if " " in head and not text[limit - 1].isspace():
        head = head.rsplit(" ", 1)[0]
    return head.rstrip() + ELLIPSIS


def _tail(text: str, limit: int) -> str:
    """The end of `text` within `limit`, cut at a word start, after an ellipsis."""
    tail = text[-(limit - 1) :]
    if " " in tail and not text[-limit].isspace():
        tail = tail.split(" ", 1)[1]
    return ELLIPSIS + tail.lstrip()


def short_titles(labels: list[str], limit: int) -> list[str]:
    """Titles within `limit`, all different when the labels are: a shortened title that would
    read like another keeps its label's beginning and its different ending."""
    titles = [shorten(label, limit) for label in labels]
    for _ in range(2):
        clashes = {t for t in titles if titles.count(t) > 1}
        if not clashes:
            return titles
        for index, title in enumerate(titles):
            if title in clashes:
                titles[index] = _distinct(labels[index], labels, limit)
    clashes = {t for t in titles if titles.count(t) > 1}
    for index, title in enumerate(titles):  # last resort: a number tells them apart
        if title in clashes:
            titles[index] = shorten(f"{index + 1}. {labels[index]}", limit)
    return titles


def _distinct(label: str, labels: list[str], limit: int) -> str:
    """The label's head and tail around an ellipsis, keeping the part that differs."""
    others = [other for other in labels if other != label]
    common = 0
    for other in others:
        shared = 0
        for mine, theirs in zip(label, other, strict=False):
            if mine != theirs:
                break
            shared += 1
        common = max(common, shared)
    start = label.rfind(" ", 0, common) + 1  # from the start of the word that differs
    differing = label[start:]
    head_room = limit - len(differing) - 1
    if head_room >= 4:
        return shorten(label[:start].rstrip(), head_room) + " " + differing
    return _tail(label, limit) if len(label) > limit else label


# --- splitting -------------------------------------------------------------------------------


def split_text(text: str, limit: int, last_limit: int | None = None) -> list[str]:
    """`text` in parts of at most `limit` characters (the last at most `last_limit`), cut at
    paragraph, line or word ends outside bidi isolates; a word longer than a part is cut."""
    last_limit = last_limit or limit
    parts: list[str] = []
    rest = text
    while len(rest) > last_limit:
        # What fits one message but not the last one is cut so that its end fits `last_limit`.
        cut = _cut_for_tail(rest, last_limit) if len(rest) <= limit else _cut(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    parts.append(rest)
    return [part for part in parts if part] or [""]


def _boundaries(text: str) -> list[tuple[int, int]]:
    """(position, strength) where text may be cut: after a blank line 3, a line end 2, a space
    1; never inside an isolate."""
    found = []
    depth = 0
    for index, char in enumerate(text):
        if char == FSI:
            depth += 1
        elif char == PDI:
            depth = max(0, depth - 1)
        elif depth == 0 and char.isspace():
            strength = 1
            if char == "\n":
                strength = 3 if text[index + 1 : index + 2] == "\n" else 2
            found.append((index + 1, strength))
    return found


def _cut(text: str, limit: int) -> int:
    """Where to cut the first part (at most `limit` long): the strongest boundary in its last
    half, else the last boundary, else at `limit` (one word longer than a part)."""
    candidates = [(pos, strength) for pos, strength in _boundaries(text) if pos <= limit]
    if not candidates:
        return limit
    late = [c for c in candidates if c[0] >= limit // 2] or candidates
    best = max(strength for _, strength in late)
    return max(pos for pos, strength in late if strength == best)


def _cut_for_tail(text: str, last_limit: int) -> int:
    """Where to cut so that the remainder is at most `last_limit` long."""
    candidates = [pos for pos, _ in _boundaries(text) if len(text) - pos <= last_limit]
    return min(candidates) if candidates else len(text) - last_limit


def mime_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
