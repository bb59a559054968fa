"""Registration with invitation codes, and language choice."""

from __future__ import annotations

from datetime import timedelta

from bot.app import Sanad
from tests.conftest import Clock
from tests.harness import Telegram, invite


async def test_a_worker_registers_with_a_deep_link_and_picks_english(sanad: Sanad) -> None:
    code = invite(sanad, "bh_sitra_women")
    async with Telegram(sanad) as telegram:
        fatima = telegram.person(101, "Fatima", language="en")
        await fatima.says(f"/start {code}")
        assert "Fatima" in fatima.everything
        assert "Sitra Women's Advancement Association" in fatima.everything
        assert fatima.buttons[0] == "English", "Telegram's language is suggested first"
        await fatima.taps("English")
        assert "Recycling output" in fatima.buttons


async def test_the_code_can_be_typed_after_start(sanad: Sanad) -> None:
    code = invite(sanad, "bh_hamad_women")
    async with Telegram(sanad) as telegram:
        amina = telegram.person(102, "Amina", language="ar")
        await amina.says("/start")
        await amina.says(code.lower()[:4] + "-" + code.lower()[4:])
        await amina.taps("العربية")
        assert "إنتاج إعادة التدوير" in amina.buttons


async def test_bad_codes_register_nobody(sanad: Sanad, clock: Clock) -> None:
    used = invite(sanad, "bh_sitra_women")
    expired = invite(sanad, "bh_sitra_women", valid_for=timedelta(hours=1))
    async with Telegram(sanad) as telegram:
        first = telegram.person(103, "First", language="en")
        await first.says(f"/start {used}")
        await first.taps("English")
        second = telegram.person(104, "Second", language="en")
        await second.says(f"/start {used}")
        assert "already been used" in second.last
        await second.says("/start WRONG123")
        assert "not valid" in second.last
        clock.advance(hours=2)
        await second.says(f"/start {expired}")
        assert "expired" in second.last
        await second.says("/report")
        assert "not registered" in second.last
        await second.says("/recycling")
        assert "not registered" in second.last
        await second.says("/help")
        assert "invitation" in second.last


async def test_language_can_be_changed_any_time(sanad: Sanad) -> None:
    code = invite(sanad, "bh_sitra_women")
    async with Telegram(sanad) as telegram:
        nadia = telegram.person(105, "Nadia", language="fr")
        await nadia.says(f"/start {code}")
        await nadia.taps("Français")
        assert "Production de recyclage" in nadia.buttons
        await nadia.says("/language")
        await nadia.taps("العربية")
        assert "إنتاج إعادة التدوير" in nadia.buttons
