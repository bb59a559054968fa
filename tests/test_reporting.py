"""Filling the three forms through Telegram: answers typed as people type them, mistakes,
back, skip, change one answer, cancel, replacement of a period report, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from sqlmodel import select

from bot.app import Sanad, assemble
from storage.db import transaction
from storage.models import Report, ReportChange
from tests.conftest import Clock
from tests.harness import Telegram, plain, registered


def reports(sanad: Sanad) -> list[Report]:
    with transaction(sanad.engine) as session:
        return list(session.exec(select(Report).order_by(Report.id)).all())


async def test_recycling_in_english_with_numbers_as_people_type_them(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        assert "For which week?" in fatima.last
        assert fatima.buttons == ["week of 29 Nov to 5 Dec 2026", "week of 22 Nov to 28 Nov 2026"]
        await fatima.taps("week of 29 Nov")
        await fatima.says("12,5 kg")  # comma decimal with a unit
        await fatima.says("\u200f٣٫٢٥\u200f")  # Arabic-Indic digits, Arabic decimal mark, RLM
        await fatima.says("abc")
        assert "Please send a number" in fatima.last
        await fatima.says("-4")
        assert "at least 0" in fatima.last
        await fatima.says("1,250")
        assert "Did you mean 1.25 or 1,250?" in fatima.last
        await fatima.taps("1,250")
        await fatima.says(" 1 300 ")
        await fatima.says("۱۲۰")  # Persian digits
        await fatima.says("45.5")
        await fatima.says("12.5")
        assert "whole number" in fatima.last  # women working is an integer
        await fatima.says("12")
        assert "Notes (optional)" in fatima.last
        await fatima.taps("Skip")
        summary = fatima.everything
        assert "Paper: 12.5 kg" in summary
        assert "Aluminium: 3.25 kg" in summary
        assert "Plastic: 1,250 kg" in summary
        assert "more than everything collected" in summary  # a soft rule: confirm or fix
        await fatima.taps("Confirm and send")
        assert "REC-1" in fatima.everything
    [report] = reports(sanad)
    assert report.period == "2026-11-29"
    assert report.answers == {
        "period": "2026-11-29",
        "paper_kg": 12.5,
        "aluminium_kg": 3.25,
        "plastic_kg": 1250.0,
        "sold_kg": 1300.0,
        "revenue": 120.0,
        "paid_to_women": 45.5,
        "women_working": 12,
        "notes": None,
    }


async def test_beneficiaries_in_arabic_with_back_and_change(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        amina = await registered(telegram, "bh_hamad_women", 202, "أمينة", "ar")
        await amina.says("/beneficiaries")
        await amina.taps(amina.buttons[0])  # this month
        await amina.says("٤٠")
        await amina.says("/back")
        assert "النساء المعيلات" in amina.last
        await amina.says("٤٢")
        for typed in ["١٥", "٩", "٦٠", "١٢", "٤٨"]:
            await amina.says(typed)
        await amina.says("لا شيء يذكر")
        await amina.taps(amina.buttons[1])  # change an answer
        await amina.taps("٣.")  # working children (Bahrain reads Arabic-Indic digits)
        await amina.says("16")
        assert "١٦" in amina.everything  # Bahrain reads Arabic-Indic digits
        await amina.taps(amina.buttons[0])  # confirm
        assert "BEN-1" in amina.everything
    [report] = reports(sanad)
    assert report.period == "2026-11"
    assert report.answers["women_heads"] == 42
    assert report.answers["working_children"] == 16
    assert report.answers["notes"] == "لا شيء يذكر"


async def test_checkin_in_french_with_skip_conditions_photos_and_location(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        nadia = await registered(telegram, "ma_partner_1", 203, "Nadia", "fr")
        await nadia.says("/checkin")
        await nadia.says("31/12/2026")
        assert "futur" in nadia.last or "future" in nadia.last
        await nadia.says("28/11")
        await nadia.taps("Autre")
        assert "Décrivez" in nadia.last
        await nadia.says("Atelier de couture")
        await nadia.shares_location(31.6295, -7.9811)
        await nadia.says("٢٥")
        await nadia.taps(nadia.buttons[0])  # yes, there were challenges
        await nadia.says("Pluie")
        await nadia.sends_photo("photo-1")
        await nadia.sends_photo("photo-2")
        await nadia.taps(nadia.buttons[0])  # done
        await nadia.taps(nadia.buttons[0])  # confirm
        assert "CHK-1" in nadia.everything
    [report] = reports(sanad)
    assert report.period is None
    assert report.answers == {
        "visit_date": "2026-11-28",
        "activity": "other",
        "activity_other": "Atelier de couture",
        "place": {"lat": 31.6295, "lon": -7.9811},
        "people_reached": 25,
        "had_challenges": True,
        "challenges": "Pluie",
        "photos": [{"file_id": "photo-1"}, {"file_id": "photo-2"}],
    }


async def test_changing_an_answer_drops_answers_that_no_longer_apply(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/checkin")
        await fatima.taps("Today")
        await fatima.taps("Home visit")
        await fatima.says("Sitra, block 3")
        await fatima.says("8")
        await fatima.taps("Yes")
        await fatima.says("Families were not at home")
        await fatima.taps("Skip")
        await fatima.taps("Change an answer")
        await fatima.taps("5.")  # had challenges
        await fatima.taps("No")
        assert "Families were not at home" not in fatima.everything
        await fatima.taps("Confirm and send")
    [report] = reports(sanad)
    assert "challenges" not in report.answers
    assert report.answers["place"] == {"text": "Sitra, block 3"}


async def test_cancel_saves_nothing(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        await fatima.says("10")
        await fatima.says("/cancel")
        assert "Nothing was saved" in fatima.everything
    assert reports(sanad) == []


async def test_a_second_report_for_the_period_replaces_the_first_with_an_audit_trail(
    sanad: Sanad,
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        colleague = await registered(telegram, user_id=204, name="Zainab")
        for person, paper in ((fatima, "10"), (colleague, "11")):
            await person.says("/recycling")
            await person.taps("week of 29 Nov")
            if person is colleague:
                assert "already exists (REC-1)" in colleague.last
                await colleague.taps("Yes, replace it")
            for typed in (paper, "1", "2", "3", "4", "5", "6"):
                await person.says(typed)
            await person.taps("Skip")
            await person.taps("Confirm and send")
        assert "replaces the earlier report" in colleague.everything
        await colleague.says("/recycling")
        await colleague.taps("week of 29 Nov")
        await colleague.taps("No, keep the old one")
        assert "The old report stays as it was" in colleague.everything
    [report] = reports(sanad)
    assert report.answers["paper_kg"] == 11
    with transaction(sanad.engine) as session:
        [change] = session.exec(select(ReportChange)).all()
    assert (change.field, change.old_value, change.new_value) == ("paper_kg", 10, 11)


async def dies_before_replying(telegram: Telegram, action: Awaitable[object]) -> None:
    """The process stores what `action` sends and is gone before its reply goes out."""

    def die(method: str, params: dict) -> None:
        if method == "sendMessage":
            raise asyncio.CancelledError  # the process is gone at this instant

    telegram.api.on_request = die  # type: ignore[assignment]
    with pytest.raises(asyncio.CancelledError):
        await action
    telegram.api.on_request = None


async def test_after_a_crash_before_the_reply_a_typed_answer_is_not_taken_blindly(
    sanad: Sanad, clock: Clock
) -> None:
    """The process stored Fatima's answer and died before sending the next question: she
    never saw it. What she types next may be meant for the earlier question, so she is asked
    where to go on; Continue shows the question she missed."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        assert "Paper collected" in fatima.last
        await dies_before_replying(telegram, fatima.says("10"))
    restarted = assemble(sanad.settings, clock=clock)  # a new process, same database
    async with Telegram(restarted, telegram.api) as telegram:
        fatima = telegram.person(201, "Fatima", language="en")
        await fatima.says("10")
        assert "unfinished report" in fatima.last
        await fatima.taps("Continue")
        assert "Aluminium collected" in fatima.last
        await fatima.says("4")
        assert "Plastic collected" in fatima.last  # from here on, as if nothing happened
        await fatima.says("6")
        assert "Quantity sold" in fatima.last
    restarted.close()


async def test_after_a_crash_before_the_reply_an_old_button_leads_to_continue(
    sanad: Sanad, clock: Clock
) -> None:
    """She may or may not have the question the dead process stored: it is not sent outright
    (two copies invite two answers), she is asked to continue and gets it then."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        weeks = fatima.keyboard_message
        await fatima.taps("week of 29 Nov")
        await dies_before_replying(telegram, fatima.says("10"))
    restarted = assemble(sanad.settings, clock=clock)  # a new process, same database
    async with Telegram(restarted, telegram.api) as telegram:
        fatima = telegram.person(201, "Fatima", language="en")
        await fatima._do(fatima.user.press(telegram.api.buttons(weeks)[0][1], weeks))
        assert "no longer works" in fatima.everything
        assert "unfinished report" in fatima.last and "Aluminium" not in fatima.everything
        await fatima.taps("Continue")
        assert "Aluminium collected" in fatima.last
    restarted.close()


async def test_resume_after_a_restart_and_after_days(sanad: Sanad, clock: Clock) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        await fatima.says("10")
        await telegram.rebuild()
        await fatima.says("20")  # the next question, as if nothing happened
        assert "Plastic collected" in fatima.last
        clock.advance(days=2)
        await fatima.says("30")
        assert "unfinished report" in fatima.last
        await fatima.taps("Continue")
        assert "Plastic collected" in fatima.last
        await fatima.says("30")
        assert "Quantity sold" in fatima.last
        clock.advance(hours=1)
        await fatima.says("/checkin")
        assert "unfinished report" in fatima.last
        await fatima.taps("Discard")
        assert "When did the activity take place?" in fatima.everything


async def test_the_same_update_twice_is_applied_once(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        update = fatima.user.text("10")
        await telegram.deliver(update)
        sent = len(telegram.api.sent)
        await telegram.deliver(update)
        assert len(telegram.api.sent) == sent, "a redelivered update gets no second reply"
        for typed in ("1", "2", "3", "4", "5", "6"):
            await fatima.says(typed)
        await fatima.taps("Skip")
        confirm = fatima.keyboard_message
        await fatima.taps("Confirm and send")
        data = dict(telegram.api.buttons(confirm))["Confirm and send"]
        await fatima._do(fatima.user.press(data, confirm))  # a double tap on Confirm
        assert "no longer works" in fatima.everything
    assert len(reports(sanad)) == 1


async def test_a_question_shown_twice_takes_either_copy_once(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        menu = fatima.keyboard_message
        await fatima.says("/recycling")
        first_copy = fatima.keyboard_message
        await fatima._do(fatima.user.press(telegram.api.buttons(menu)[0][1], menu))
        assert "no longer works" in fatima.everything and "For which week?" in fatima.last
        second_copy = fatima.keyboard_message
        assert telegram.api.buttons(second_copy) == telegram.api.buttons(first_copy)

        this_week = next(
            data for label, data in telegram.api.buttons(first_copy) if "29 Nov" in plain(label)
        )
        await fatima._do(fatima.user.press(this_week, first_copy))
        assert "Paper collected" in fatima.last, "the earlier copy of the same question works"

        await fatima._do(fatima.user.press(this_week, second_copy))
        assert "no longer works" in fatima.everything, "but only once"


async def test_an_old_button_does_not_repeat_a_typed_question(sanad: Sanad) -> None:
    """Two copies of "(2 of 9) Paper" would invite two answers, the second taken for
    aluminium: after a refused button the person is pointed to the question instead."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        weeks = fatima.keyboard_message
        await fatima.taps("week of 29 Nov")
        assert "Paper collected" in fatima.last
        await fatima._do(fatima.user.press(telegram.api.buttons(weeks)[0][1], weeks))
        assert fatima.texts == [
            "That button belongs to an earlier message and no longer "
            "works.\n\nPlease answer the last question above."
        ]
        await fatima.says("12.5")
        assert "Aluminium collected" in fatima.last


async def test_a_coordinator_has_no_field_forms(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        coordinator = await registered(telegram, "bh_young_ladies", 205, "Huda")
        assert "Recycling output" not in coordinator.buttons
        await coordinator.says("/recycling")
        assert "not for your role" in coordinator.last


@pytest.mark.parametrize("text", ["/unknown", "hello"])
async def test_unexpected_messages_get_a_helpful_answer(sanad: Sanad, text: str) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says(text)
        assert fatima.texts and fatima.texts[0]
