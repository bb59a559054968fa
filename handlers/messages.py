"""What crosses between a channel and the handlers: neutral of any messaging platform."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from forms.schema import Expected


@dataclass(frozen=True)
class Photo:
    """A photo: the platform's file id, or a file kept on disk (console)."""

    file_id: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Incoming:
    """One thing a person did: typed text or a command, pressed an option, sent a photo or place.

    `update_id` identifies the platform's update so it is applied once; None means "do not
    deduplicate" (the console has no redelivery). `message_id` is the platform's stable id of
    the person's message (None where the platform has none), and `answers` the id of the bot's
    message it answers, when the platform tells: a Telegram reply to a message, or the message
    whose button was pressed; on WhatsApp the quoted or pressed message (`context.id`). A
    typed answer to a message whose question is answered is refused (storage.asked).
    """

    channel: str
    chat_id: str
    sender: str
    update_id: str | None = None
    sender_name: str = ""
    language_code: str | None = None
    text: str | None = None
    choice: str | None = None
    photo: Photo | None = None
    location: Location | None = None
    message_id: str | None = None
    answers: str | None = None

    @property
    def command(self) -> str | None:
        """The command without its slash or bot suffix ("/report@sanad_bot" -> "report")."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text.split(maxsplit=1)[0][1:]
        return word.split("@", 1)[0].lower() or None

    @property
    def argument(self) -> str:
        """What follows the command, stripped."""
        if not self.text:
            return ""
        parts = self.text.split(maxsplit=1)
        return parts[1].strip() if len(parts) > 1 else ""


class TryLater(Exception):
    """Nothing of the update was stored because the database could not take it (unreachable,
    locked, a connection lost). The channel has the platform deliver it again: the webhook
    answers 500, polling does not confirm its offset."""


@dataclass(frozen=True)
class Option:
    """A choice offered with a reply: a button on Telegram, a numbered line on the console."""

    label: str
    value: str


@dataclass(frozen=True)
class Command:
    """A command a person may send, with what it does in their language: a line of /help,
    an entry of the platform's command menu."""

    name: str
    description: str


@dataclass(frozen=True)
class Reply:
    """A message to send back. Plain text, never markup, so user text needs no escaping."""

    text: str
    options: tuple[Option, ...] = ()
    # What answers it besides its options: a photo, a place, or a typed number (a channel that
    # numbers its options, such as the console, then tells a typed 12 from option 12).
    expect: Expected | None = None
    document: Path | None = None
    columns: int = 1
    photo: Path | Photo | None = None  # a file, or one the platform keeps (Photo.file_id)
    # The person's commands changed (registration, language, role): the channel shows these
    # in its command menu for this chat. None: unchanged.
    commands: tuple[Command, ...] | None = None
    # The language it is written in, set by the Dispatcher: a channel that adds words of its
    # own (a list's button, a hint) writes them in it. Not part of what the reply says.
    language: str | None = field(default=None, compare=False)


def compact(replies: list[Reply], limit: int = 4000) -> list[Reply]:
    """Join plain texts to the reply that follows them: fewer messages on a slow network."""
    joined: list[Reply] = []
    for reply in replies:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and _plain(previous)
            and len(previous.text) + len(reply.text) + 2 <= limit
            and reply.photo is None
            and reply.document is None
        ):
            joined[-1] = replace(
                reply,
                text=f"{previous.text}\n\n{reply.text}",
                commands=reply.commands if reply.commands is not None else previous.commands,
            )
        else:
            joined.append(reply)
    return joined


def _plain(reply: Reply) -> bool:
    return (
        not reply.options
        and reply.expect is None
        and reply.photo is None
        and reply.document is None
    )
