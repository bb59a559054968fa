"""What crosses between a channel and the handlers: neutral of any messaging platform."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


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
    deduplicate" (the console has no redelivery).
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


@dataclass(frozen=True)
class Option:
    """A choice offered with a reply: a button on Telegram, a numbered line on the console."""

    label: str
    value: str


@dataclass(frozen=True)
class Reply:
    """A message to send back. Plain text, never markup, so user text needs no escaping."""

    text: str
    options: tuple[Option, ...] = ()
    expect: Literal["photo", "location"] | None = None
    document: Path | None = None
    columns: int = 1

    def with_options(self, *options: Option, columns: int = 1) -> Reply:
        return Reply(self.text, tuple(options), self.expect, self.document, columns)


@dataclass
class Outcome:
    """The replies of one incoming message, in order."""

    replies: list[Reply] = field(default_factory=list)

    def say(self, text: str, *options: Option, **kwargs: object) -> None:
        self.replies.append(Reply(text, tuple(options), **kwargs))  # type: ignore[arg-type]
