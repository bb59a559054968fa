"""Everything a handler needs for one incoming message, and the replies it collects."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection
from sqlmodel import Session

from forms.schema import Expected, FormSpec
from handlers.messages import Incoming, Option, Reply
from handlers.state import ChatState
from locales import Translator
from storage.people import GroupRow, OrganizationRow, PersonRow

STALE = "\x00stale"
#: (session, channel, code) -> the link that opens a chat with the bot on that channel with
#: the invitation code ready to send, or None while it cannot be made (bot.invite_links).
InviteLink = Callable[[Session, str, str], str | None]


def no_invite_link(session: Session, channel: str, code: str) -> str | None:
    return None


@dataclass(frozen=True)
class Services:
    """What stays the same from one message to the next."""

    forms: dict[str, FormSpec]
    media_dir: Path
    charts_dir: Path
    invite_link: InviteLink = no_invite_link


@dataclass(frozen=True)
class Navigation:
    """Where a handler sends the person next, without importing the handler that does it.

    The router fills it with its handlers (it owns navigation) and hands it to every Context;
    handlers call the Context's `go_home`, `go_menu`, `ask_language`, `run_command` and
    `offer_corrections`. So no handler imports another, and no import cycle can form.
    """

    home: Callable[[Context], None]  # the unfinished report if there is one, else the menu
    menu: Callable[[Context, str | None], None]
    language: Callable[[Context], None]
    command: Callable[[Context, str], None]  # as if the person had typed /<command>
    corrections: Callable[[Context, str], None]  # offer to correct one of the listed reports


@dataclass
class Context:
    """One incoming message being handled inside one database transaction.

    `connection` is that transaction; `session`, for handlers that work with ORM objects, is
    opened on it when first asked for (most messages need none: a session costs more than the
    statements of a typical answer). `person`, `organization` and `group` are copies as read
    at the start: change them with a statement from storage.people.
    """

    connection: Connection
    incoming: Incoming
    services: Services
    now: datetime
    tr: Translator
    state: ChatState
    person: PersonRow | None = None
    organization: OrganizationRow | None = None
    group: GroupRow | None = None
    replies: list[Reply] = field(default_factory=list)
    # The replies to the chat's previous message may never have been sent (a process died
    # between storing and sending): the person may not have seen the question now open.
    reply_unsure: bool = False
    # Whether the replies offer buttons (a press they follow then leaves its buttons working).
    offered_buttons: bool = False
    # The message replies to a bot message whose question the chat no longer asks (answered,
    # or left): it is refused, not taken as the answer to the question open now.
    answers_earlier: bool = False
    navigation: Navigation | None = field(default=None, repr=False)
    _session: Session | None = field(default=None, repr=False)

    @property
    def session(self) -> Session:
        if self._session is None:
            # Joins the connection's transaction and never commits it: the dispatcher does.
            self._session = Session(bind=self.connection, expire_on_commit=False)
        return self._session

    def flush(self) -> None:
        """Send the session's pending changes, if a session was opened."""
        if self._session is not None:
            self._session.flush()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    @property
    def _navigation(self) -> Navigation:
        if self.navigation is None:
            raise RuntimeError("no navigation: a Context is routed by handlers.router.route")
        return self.navigation

    def go_home(self) -> None:
        """The unfinished report if there is one (offered to resume), else the menu."""
        self._navigation.home(self)

    def go_menu(self, intro: str | None = None) -> None:
        """The person's menu, after `intro` if given."""
        self._navigation.menu(self, intro)

    def ask_language(self) -> None:
        self._navigation.language(self)

    def run_command(self, command: str) -> None:
        """Do what /<command> does, with the same permission check."""
        self._navigation.command(self, command)

    def offer_corrections(self, text: str) -> None:
        """Show `text` (a list of reports) and offer to correct one of them."""
        self._navigation.corrections(self, text)

    def _(self, message: str, **values: object) -> str:
        return self.tr.gettext(message, **values)

    def say(
        self,
        text: str,
        options: list[tuple[str, str]] | None = None,
        *,
        expect: Expected | None = None,
        document: Path | None = None,
        columns: int = 1,
        photo: Path | None = None,
    ) -> None:
        """Add a reply; its options carry the token of the question they answer (see
        `_token_for`), so that buttons of earlier questions stop working."""
        offered: tuple[Option, ...] = ()
        if options:
            nonce = self._token_for(text, options)
            offered = tuple(Option(label, f"{nonce}:{value}") for label, value in options)
            self.offered_buttons = True
        self.replies.append(
            Reply(
                text,
                offered,
                expect,
                document,
                columns,  # type: ignore[arg-type]
                photo,
            )
        )

    def _token_for(self, text: str, options: list[tuple[str, str]]) -> str:
        """Buttons belong to the question they were sent with, not to one message: asking
        the same question again (after a refused button or a wrong answer) keeps the token,
        so its buttons work on every copy the person has; any other question gets a fresh
        one. Otherwise a person pressing a copy while the next copy is on its way is refused,
        shown another copy, presses the one that just arrived, and so on without end.

        The same question means the same text and the same buttons, labels included: a
        multiple choice shown again with one more ✓ is a new question, its old copy spent.
        """
        shown = [text, *(part for option in options for part in option)]
        question = hashlib.blake2s("\x1f".join(shown).encode(), digest_size=4).hexdigest()
        if self.state.nonce and self.state.asked == question:
            return self.state.nonce
        nonce = secrets.token_hex(2)
        self.state.nonce, self.state.asked = nonce, question
        return nonce

    @property
    def choice(self) -> str | None:
        """The value of the option pressed, STALE for a button of an older message, else None."""
        raw = self.incoming.choice
        if raw is None:
            return None
        nonce, _, value = raw.partition(":")
        if not value or nonce != self.state.nonce:
            return STALE
        return value

    @property
    def language(self) -> str:
        return self.tr.language
