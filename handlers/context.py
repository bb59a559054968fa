"""Everything a handler needs for one incoming message, and the replies it collects."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from forms.schema import FormSpec
from handlers.messages import Incoming, Option, Reply
from locales import Translator
from storage.models import Group, Organization, Person

STALE = "\x00stale"


@dataclass(frozen=True)
class Services:
    """What stays the same from one message to the next."""

    forms: dict[str, FormSpec]
    media_dir: Path
    charts_dir: Path


@dataclass
class Context:
    """One incoming message being handled inside one database transaction."""

    session: Session
    incoming: Incoming
    services: Services
    now: datetime
    tr: Translator
    state: dict[str, Any]
    person: Person | None = None
    organization: Organization | None = None
    group: Group | None = None
    replies: list[Reply] = field(default_factory=list)

    def _(self, message: str, **values: object) -> str:
        return self.tr.gettext(message, **values)

    def say(self, text: str, options: list[tuple[str, str]] | None = None, *,
            expect: str | None = None, document: Path | None = None, columns: int = 1,
            photo: Path | None = None) -> None:
        """Add a reply; its options get a fresh token so that older buttons stop working."""
        offered: tuple[Option, ...] = ()
        if options:
            nonce = secrets.token_hex(2)
            self.state["nonce"] = nonce
            offered = tuple(Option(label, f"{nonce}:{value}") for label, value in options)
        self.replies.append(Reply(text, offered, expect, document, columns,  # type: ignore[arg-type]
                                  photo))

    @property
    def choice(self) -> str | None:
        """The value of the option pressed, STALE for a button of an older message, else None."""
        raw = self.incoming.choice
        if raw is None:
            return None
        nonce, _, value = raw.partition(":")
        if not value or nonce != self.state.get("nonce"):
            return STALE
        return value

    @property
    def language(self) -> str:
        return self.tr.language
