"""Each role its own Sanad: the menu, /help and Telegram's command menu of a field worker, a
coordinator and an admin, in their language, following their role and language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select
from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import BadRequest

from bot.app import Sanad
from storage.db import transaction
from storage.models import Person as PersonRow
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.harness import Person, Telegram, invite, report_recycling


async def join(telegram: Telegram, org: str, role: str, user_id: int, lang: str = "en") -> Person:
    person = telegram.person(user_id, f"{role}{user_id}", language=lang)
    await person.says(f"/start {invite(telegram.sanad, org, role)}")
    await person.taps({"ar": "العربية", "en": "English", "fr": "Français"}[lang])
    return person


def menu_of(telegram: Telegram, person: Person) -> list[str]:
    """The command names Telegram shows this person (their app in English)."""
    return [name for name, _ in telegram.api.commands_shown(person.user.id, "en")]


async def test_each_role_has_its_own_menu_help_and_command_list(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        worker = await join(telegram, "bh_sitra_women", "worker", 801)
        assert worker.buttons[-3:] == ["Recycling output", "My reports", "Language"]
        coordinator = await join(telegram, "bh_young_ladies", "coordinator", 802)
        assert coordinator.buttons[:3] == [
            "Who has reported",
            "Remind the late ones",
            "Check a report",
        ]
        assert "Recycling output" not in coordinator.buttons
        admin = await join(telegram, "arab_network", "admin", 803)
        assert "Announcements sent" in admin.buttons and "Remind the late ones" not in admin.buttons

        assert menu_of(telegram, worker)[:2] == ["report", "beneficiaries"]
        assert "remind" not in menu_of(telegram, worker)
        assert menu_of(telegram, coordinator)[:2] == ["status", "remind"]
        assert "checkin" not in menu_of(telegram, coordinator)
        assert "broadcasts" in menu_of(telegram, admin) and "remind" not in menu_of(telegram, admin)

        await worker.says("/help")
        assert "/checkin" in worker.last and "/remind" not in worker.last
        await coordinator.says("/help")
        assert coordinator.last.startswith("What I understand (you are coordinator):")
        assert coordinator.last.splitlines()[1] == "/status: who has reported this period"
        assert "/correct: correct a report of your group" in coordinator.last
        assert "/back" not in coordinator.last and "/checkin" not in coordinator.last

        # A menu choice runs its command: the coordinator taps "Who has reported".
        await coordinator.says("/menu")
        await coordinator.taps("Who has reported")
        assert "Where reporting stands" in coordinator.last


async def test_the_command_list_follows_language_and_role(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        worker = await join(telegram, "bh_sitra_women", "worker", 811)
        assert ("myreports", "your recent reports") in telegram.api.commands_shown(811, "en")

        await worker.says("/language")
        await worker.taps("Français")
        # Sanad's language, whatever the language of the Telegram app.
        assert ("myreports", "vos derniers rapports") in telegram.api.commands_shown(811, "en")
        calls = len([c for c in telegram.api.calls if c[0] == "setMyCommands"])
        await worker.says("/myreports")
        assert len([c for c in telegram.api.calls if c[0] == "setMyCommands"]) == calls, (
            "an unchanged list is not sent again"
        )

        with transaction(sanad.engine) as session:
            row = session.exec(select(PersonRow).where(PersonRow.address == "811")).one()
            row.role = "coordinator"  # an admin moved her to the supportive organization's role
            session.add(row)
        await worker.says("/help")
        assert "remind" in [name for name, _ in telegram.api.commands_shown(811)]


async def test_someone_not_registered_sees_start_and_help(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        assert [name for name, _ in telegram.api.commands_shown(821, "fr")] == ["start", "help"]
        stranger = telegram.person(821, "Stranger", language="fr")
        await stranger.says("hello")
        assert telegram.api.commands_shown(821, "fr")[0][0] == "start"


async def test_a_coordinators_home_shows_the_group_at_a_glance(sanad: Sanad, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday 2 December, Bahrain
    async with Telegram(sanad) as telegram:
        sitra = await join(telegram, "bh_sitra_women", "worker", 831)
        coordinator = await join(telegram, "bh_young_ladies", "coordinator", 832)
        await report_recycling(sitra, "week of 29 Nov")
        await coordinator.says("/menu")
        home = coordinator.last
        assert "Bahrain development group at a glance:" in home
        assert "• Recycling output" in home
        # The week just ended is past its due date; the week under way has one report.
        assert "week of 22 Nov to 28 Nov 2026: 0 of 3 reported · Late: Hamad" in home
        assert "week of 29 Nov to 5 Dec 2026: 1 of 3 reported" in home
        # November's beneficiary counts are due on 5 December: not late yet.
        assert "November 2026: 0 of 3 reported · Still to report: Hamad" in home
        assert home.endswith("What would you like to do?")


async def test_the_fake_bot_api_takes_command_lists_as_telegram_does() -> None:
    api = FakeBotApi()
    async with Bot("123:TEST", request=api.request()) as bot:
        await bot.set_my_commands([BotCommand("help", "what I can do")])
        await bot.set_my_commands([BotCommand("help", "aide")], language_code="fr")
        await bot.set_my_commands(
            [BotCommand("status", "who has reported")], scope=BotCommandScopeChat(5)
        )
        assert api.commands_shown(5, "fr") == [("status", "who has reported")]
        assert api.commands_shown(6, "fr") == [("help", "aide")]
        assert api.commands_shown(6, "ar") == [("help", "what I can do")]
        for wrong in (
            [BotCommand("Help", "capital letters")],
            [BotCommand("x" * 33, "too long a name")],
            [BotCommand("help", "")],
            [BotCommand("help", "d" * 257)],
            [BotCommand(f"c{n}", "one too many") for n in range(101)],
        ):
            with pytest.raises(BadRequest):
                await bot.set_my_commands(wrong, scope=BotCommandScopeChat(5))
        assert api.commands_shown(5) == [("status", "who has reported")], "refused: unchanged"
        await bot.set_my_commands([], scope=BotCommandScopeChat(5))
        assert api.commands_shown(5) == [("help", "what I can do")], "deleted: the default again"
