"""Talking to Sanad as people do: through its Telegram channel (python-telegram-bot's Bot and
Update parsing) and the fake Bot API. Tests read like the conversation they check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select
from telegram import Update

from bot.app import Sanad
from bot.channels.telegram import TelegramBot, build_telegram
from storage.db import transaction
from storage.invites import new_invite, role_for
from storage.models import Organization
from storage.types import utcnow
from tests.fakes.telegram_bot_api import FakeBotApi, FakeUser, SentMessage


def invite(
    sanad: Sanad, org: str, role: str | None = None, valid_for: timedelta = timedelta(days=7)
) -> str:
    """A fresh invitation code, as `python -m bot invite` makes it (by default, for the role
    the organization takes)."""
    with transaction(sanad.engine) as session:
        organization = session.exec(select(Organization).where(Organization.key == org)).one()
        role = role or role_for(organization)
        return new_invite(session, organization, role, sanad.dispatcher.clock(), valid_for).code


class Telegram:
    """The fake Telegram and the real Telegram channel of one Sanad."""

    def __init__(self, sanad: Sanad, api: FakeBotApi | None = None) -> None:
        self.sanad = sanad
        self.api = api or FakeBotApi()  # the same api: update ids go on where they were
        self.app: TelegramBot = build_telegram(
            sanad, request=self.api.request(), get_updates_request=self.api.request()
        )

    async def __aenter__(self) -> Telegram:
        await self.app.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.app.stop()

    def person(self, user_id: int, name: str = "Fatima", language: str | None = "ar") -> Person:
        return Person(self, self.api.user(user_id, first_name=name, language_code=language))

    async def deliver(self, update: dict[str, Any]) -> None:
        await self.app.apply_update(Update.de_json(update, self.app.bot))

    async def rebuild(self) -> None:
        """Stop the channel and build a new one on the same database (a restart)."""
        await self.app.stop()
        self.app = build_telegram(
            self.sanad, request=self.api.request(), get_updates_request=self.api.request()
        )
        await self.app.start()


class Person:
    """Someone chatting with the bot; keeps what the bot answered to their last action."""

    def __init__(self, telegram: Telegram, user: FakeUser) -> None:
        self.telegram = telegram
        self.user = user
        self.answers: list[SentMessage] = []

    async def _do(self, update: dict[str, Any]) -> list[str]:
        before = len(self.telegram.api.sent)
        await self.telegram.deliver(update)
        self.answers = [
            m
            for m in self.telegram.api.sent[before:]
            if m.chat_id == self.user.id and m.method != "editMessageReplyMarkup"
        ]
        return self.texts

    async def says(self, text: str) -> list[str]:
        return await self._do(self.user.text(text))

    async def replies_to(self, message: SentMessage, text: str) -> list[str]:
        """Reply to the bot's `message` (Telegram's "Reply" on it) with `text`."""
        return await self._do(self.user.reply(text, message))

    def message_asking(self, text: str) -> SentMessage:
        """The latest message the bot sent this person that contains `text`."""
        for message in reversed(self.telegram.api.messages_to(self.user.id)):
            if text in plain(message.text or ""):
                return message
        raise AssertionError(f"no message containing {text!r}")

    async def taps(self, label: str) -> list[str]:
        """Press the button labelled `label` (or starting with it) on the last keyboard."""
        message = self.keyboard_message
        for text, data in self.telegram.api.buttons(message):
            text = plain(text)
            if text == label or text.startswith(label):
                return await self._do(self.user.press(data, message))
        raise AssertionError(f"no button {label!r} in {self.buttons}")

    async def sends_photo(self, file_id: str) -> list[str]:
        return await self._do(self.user.photo(file_id, b"\xff\xd8jpeg"))

    async def shares_location(self, latitude: float, longitude: float) -> list[str]:
        return await self._do(self.user.location(latitude, longitude))

    @property
    def texts(self) -> list[str]:
        return [plain(m.text or "") for m in self.answers]

    @property
    def last(self) -> str:
        return self.texts[-1]

    @property
    def everything(self) -> str:
        return "\n".join(self.texts)

    @property
    def keyboard_message(self) -> SentMessage:
        for message in reversed(self.telegram.api.messages_to(self.user.id)):
            if message.reply_markup and message.method == "sendMessage":
                return message
        raise AssertionError("no message with buttons")

    @property
    def buttons(self) -> list[str]:
        return [plain(text) for text, _ in self.telegram.api.buttons(self.keyboard_message)]


async def registered(
    telegram: Telegram,
    org: str = "bh_sitra_women",
    user_id: int = 201,
    name: str = "Fatima",
    language: str = "en",
) -> Person:
    """Someone who opened an invitation to `org` and chose their language."""
    code = invite(telegram.sanad, org)
    person = telegram.person(user_id, name, language=language)
    await person.says(f"/start {code}")
    await person.taps({"ar": "العربية", "en": "English", "fr": "Français"}[language])
    return person


async def report_recycling(worker: Person, week: str = "week of 29 Nov") -> None:
    """A worker sends a whole recycling report for `week` (a button's label, or its start)."""
    await worker.says("/recycling")
    await worker.taps(week)
    for typed in ("100", "20", "30", "120", "60", "45", "6"):
        await worker.says(typed)
    await worker.taps("Skip")
    await worker.taps("Confirm and send")


def plain(text: str) -> str:
    """The text without bidi isolates, for comparing with what a person reads."""
    return text.replace("\u2068", "").replace("\u2069", "")


__all__ = ["Person", "Telegram", "invite", "plain", "report_recycling", "utcnow"]
