"""Invitation links, one builder per channel: the link that opens a chat with the bot with an
invitation code ready to send. Handlers (/invite), the command line (`invite`) and bulk
invitations (bot.invite_table) all ask the one registry by channel name, so none of them
knows how a channel's links look.

- Telegram: `https://t.me/<bot username>?start=<CODE>` (TELEGRAM_BOT_USERNAME, or the
  username the bot remembered when it last ran);
- WhatsApp: `https://wa.me/<WHATSAPP_NUMBER digits>?text=start%20<CODE>`.

A builder answers None while its link cannot be made (no username, no number): the code
alone still works when typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from sqlmodel import Session

from bot.settings import Settings
from storage.people import recall

#: (the current transaction's session, a code) -> the link, or None while it cannot be made.
LinkBuilder = Callable[[Session, str], str | None]
TELEGRAM = "telegram"
WHATSAPP = "whatsapp"


@dataclass
class InviteLinks:
    """Channel name -> its link builder; a channel without one (the console) has no link."""

    builders: dict[str, LinkBuilder] = field(default_factory=dict)

    def register(self, channel: str, builder: LinkBuilder) -> None:
        self.builders[channel] = builder

    def __call__(self, session: Session, channel: str, code: str) -> str | None:
        builder = self.builders.get(channel)
        return builder(session, code) if builder is not None else None


def telegram_link(username: str | None) -> LinkBuilder:
    """t.me links for the bot `username`, else for the one the bot remembered."""

    def build(session: Session, code: str) -> str | None:
        known = (username or recall(session, "telegram_username") or "").lstrip("@")
        return f"https://t.me/{known}?start={code}" if known else None

    return build


def whatsapp_link(number: str | None) -> LinkBuilder:
    """wa.me links for the business `number` (any spacing and +: only its digits count)."""
    digits = "".join(ch for ch in number or "" if ch.isdigit())

    def build(session: Session, code: str) -> str | None:
        return f"https://wa.me/{digits}?text={quote('start ' + code)}" if digits else None

    return build


def invite_links(settings: Settings) -> InviteLinks:
    """The links of every channel Sanad speaks, from the settings."""
    links = InviteLinks()
    links.register(TELEGRAM, telegram_link(settings.telegram_bot_username))
    links.register(WHATSAPP, whatsapp_link(settings.whatsapp_number))
    return links
