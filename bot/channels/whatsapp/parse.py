"""A Cloud API webhook body -> what happened: messages as `Incoming`, status reports, and
messages the bot cannot read.

A body holds entries, each with changes; a change's value holds `messages` (with `contacts`
naming their senders) or `statuses`. Message types read: text, interactive (button_reply,
list_reply), button (a template's quick reply), image, location. Audio, video, sticker,
reaction, document, contacts, unsupported and any type not known come out as `Unreadable`.

Typed text is made the command it means: "/menu", "menu", "قائمة" and "Menu." are /menu,
"inviter" is /invite, "تصحيح REC-12" is /correct REC-12; "start CODE", "/start CODE" and a bare
invitation code are /start CODE. While a question waits for typed text, a command word other
than menu, back, cancel and help is the answer (`Inbound.typed` keeps what was typed, for the
webhook to read it so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.words import WAY_OUT, as_command, as_command_line, normalize, start_words
from handlers.messages import Incoming, Location
from storage.invites import CODE_ALPHABET, CODE_LENGTH, clean_code

JSON = dict[str, Any]
CODE = re.compile(f"[{CODE_ALPHABET}]{{8}}|[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")  # older, current
TYPED_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]*")


@dataclass(frozen=True)
class Inbound:
    """A message the bot reads; `media_id` names an image still to be fetched; `typed` the
    text as typed, when `incoming.text` made a command word of it."""

    incoming: Incoming
    at: datetime
    media_id: str | None = None
    typed: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """A message of a type the bot cannot read (audio, sticker, ...)."""

    wa_id: str
    message_id: str
    kind: str
    at: datetime


@dataclass(frozen=True)
class Status:
    """What became of a message the business sent."""

    message_id: str
    status: str  # sent | delivered | read | failed
    recipient: str
    error_codes: tuple[int, ...] = ()
    error: str = ""
    callback: str = ""  # the biz_opaque_callback_data the message was sent with


Event = Inbound | Unreadable | Status


def events(body: JSON) -> list[Event]:
    """Everything a webhook body reports, in its order. Raises ValueError on a body that is
    not a Cloud API notification."""
    if body.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business Account notification")
    found: list[Event] = []
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value") or {}
            names = {
                contact.get("wa_id"): (contact.get("profile") or {}).get("name", "")
                for contact in value.get("contacts", [])
            }
            for message in value.get("messages", []):
                found.append(_message(message, names.get(message.get("from"), "")))
            for status in value.get("statuses", []):
                found.append(_status(status))
    return found


def _time(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def _message(message: JSON, name: str) -> Event:
    wa_id = str(message["from"])
    ident = str(message["id"])
    kind = message.get("type", "")
    at = _time(message.get("timestamp"))
    # The business message this one answers: the one quoted in a reply, or whose button or
    # list row was pressed.
    context = message.get("context")
    answers = str(context["id"]) if isinstance(context, dict) and context.get("id") else None
    base = Incoming(
        channel=CHANNEL,
        chat_id=wa_id,
        sender=wa_id,
        update_id=ident,
        sender_name=name,
        message_id=ident,
        answers=answers,
    )

    def inbound(**values: Any) -> Inbound:
        return Inbound(Incoming(**{**base.__dict__, **values}), at)

    if kind == "text":
        body = str(message.get("text", {}).get("body", ""))
        text = typed(body)
        if text == body:
            return inbound(text=text)
        return Inbound(Incoming(**{**base.__dict__, "text": text}), at, typed=body)
    if kind == "interactive":
        interactive = message.get("interactive", {})
        reply = interactive.get(interactive.get("type", ""), {})
        if isinstance(reply, dict) and reply.get("id"):
            return inbound(choice=str(reply["id"]))
    if kind == "button" and message.get("button", {}).get("payload"):
        return inbound(choice=str(message["button"]["payload"]))
    if kind == "image" and message.get("image", {}).get("id"):
        caption = message["image"].get("caption")
        return Inbound(
            Incoming(**{**base.__dict__, "text": caption}), at, str(message["image"]["id"])
        )
    if kind == "location":
        place = message.get("location", {})
        try:
            return inbound(location=Location(float(place["latitude"]), float(place["longitude"])))
        except (KeyError, TypeError, ValueError):
            pass
    return Unreadable(wa_id, ident, kind or "unsupported", at)


def _status(status: JSON) -> Status:
    errors = status.get("errors") or []
    codes = tuple(int(e["code"]) for e in errors if str(e.get("code", "")).isdigit())
    detail = "; ".join(f"{e.get('code')}: {e.get('title') or e.get('message', '')}" for e in errors)
    return Status(
        str(status.get("id", "")),
        str(status.get("status", "")),
        str(status.get("recipient_id", "")),
        codes,
        detail,
        str(status.get("biz_opaque_callback_data") or ""),
    )


def typed(text: str, answer_expected: bool = False) -> str:
    """Typed text as the bot reads it: a command word becomes its command. While a typed
    answer is expected only the words that find a way out (menu, back, cancel, help) still
    do, as nobody answers a question with "cancel"; any other word is the answer there ("/"
    makes it a command)."""
    stripped = text.strip()
    if stripped.startswith("/"):
        return stripped
    if answer_expected:
        command = as_command(stripped)
        return f"/{command}" if command in WAY_OUT else text
    first, _, rest = stripped.partition(" ")
    if normalize(first) in start_words():
        return f"/start {rest.strip()}".rstrip()
    if _looks_like_code(stripped):
        return f"/start {clean_code(stripped)}"
    return as_command_line(stripped) or text


def _looks_like_code(text: str) -> bool:
    """An invitation code sent alone. Lower-case codes count when they hold a digit (a word
    such as "payments" is made of code letters, but holds none)."""
    if not TYPED_CODE.fullmatch(text) or not CODE.fullmatch(clean_code(text)):
        return False
    return text.isupper() or any(c.isdigit() for c in text)
