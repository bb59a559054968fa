"""What is stored is what the person meant: the whole report is checked at Confirm, /back
while changing an answer keeps the old one, units are converted or refused, amounts carry the
group's currency, cross-field rules are shown, and typed text cannot reorder what others read."""

from __future__ import annotations

from sqlmodel import select

from bot.app import Sanad
from storage.db import transaction
from storage.models import Report
from tests.harness import Person, Telegram, registered


def reports(sanad: Sanad) -> list[Report]:
    with transaction(sanad.engine) as session:
        return list(session.exec(select(Report).order_by(Report.id)).all())


async def beneficiaries(person: Person, new: str = "12", continuing: str = "48") -> None:
    await person.says("/beneficiaries")
    await person.taps(person.buttons[0])
    for typed in ["42", "15", "9", "60", new, continuing]:
        await person.says(typed)
    await person.taps("Skip")


async def test_back_while_changing_an_answer_keeps_the_old_one(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await beneficiaries(fatima)
        await fatima.taps("Change an answer")
        await fatima.taps("3.")  # working children
        assert "Current answer: 15" in fatima.last
        await fatima.says("/back")
        assert "Working children: 15" in fatima.last
        await fatima.taps("Confirm and send")
        assert "BEN-1" in fatima.everything
    [report] = reports(sanad)
    assert report.answers["working_children"] == 15


async def test_a_broken_hard_rule_hides_confirm_until_it_is_fixed(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await beneficiaries(fatima, new="12", continuing="40")
        assert "New plus continuing must equal the families reached." in fatima.last
        assert "Confirm and send" not in fatima.buttons
        await fatima.taps("Change an answer")
        await fatima.taps("7.")  # continuing
        await fatima.says("48")
        assert "must equal" not in fatima.last
        await fatima.taps("Confirm and send")
    [report] = reports(sanad)
    assert report.answers["continuing_beneficiaries"] == 48


async def test_units_are_converted_and_shown_or_refused(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        assert "In kg; you may also write t, g after the number." in fatima.last
        await fatima.says("12 tonnes")
        await fatima.says("12 lb")
        assert "This question takes these units: kg, t, g." in fatima.last
        await fatima.says("500 g")
        await fatima.says("30 كغ")
        await fatima.says("12,030.5")  # sold, within what was collected
        assert "Amount in BHD." in fatima.last  # revenue: the group's currency
        await fatima.says("120 EGP")
        assert "Please send the amount in BHD" in fatima.last
        await fatima.says("120 bhd")
        await fatima.says("45.5")
        await fatima.says("6 women")
        assert "Please send only the number, without a unit." in fatima.last
        await fatima.says("6")
        await fatima.taps("Skip")
        summary = fatima.last
        assert "Paper: 12 tonnes → 12,000 kg" in summary
        assert "Aluminium: 500 g → 0.5 kg" in summary
        assert "Revenue: 120 BHD" in summary
        assert "Paid to women: 45.5 BHD" in summary
        await fatima.taps("Confirm and send")
    [report] = reports(sanad)
    assert report.answers["paper_kg"] == 12000
    assert report.answers["aluminium_kg"] == 0.5
    assert report.answers["plastic_kg"] == 30


async def test_a_soft_rule_asks_to_check_and_lets_confirm(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        for typed in ("10", "10", "10", "30", "50", "80", "4"):
            await fatima.says(typed)
        await fatima.taps("Skip")
        assert "The amount paid to the women is more than the revenue." in fatima.last
        assert "quantity sold" not in fatima.last
        await fatima.taps("Confirm and send")
        assert "REC-1" in fatima.everything
    assert len(reports(sanad)) == 1


async def test_text_answers_lose_invisible_controls_and_say_their_limit(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/checkin")
        await fatima.taps("Today")
        await fatima.taps("Other")
        assert "At most 200 characters." in fatima.last
        await fatima.says("x" * 250)
        assert "Your answer has 250 characters; the limit is 200." in fatima.last
        await fatima.says("Sewing \u202egnihsaw\u202c workshop\u200b \u2066ok\u2069")
        await fatima.says("Sitra")
        await fatima.says("8")
        await fatima.taps("No")
        await fatima.taps("Skip")
        assert "Description: Sewing gnihsaw workshop ok" in fatima.last
        await fatima.taps("Confirm and send")
    [report] = reports(sanad)
    assert report.answers["activity_other"] == "Sewing gnihsaw workshop ok"


async def test_a_correction_that_breaks_a_hard_rule_needs_the_other_answer_too(
    sanad: Sanad,
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await beneficiaries(fatima)
        await fatima.taps("Confirm and send")
        await fatima.says("/correct BEN-1")
        await fatima.taps("Families")
        await fatima.says("65")
        assert "from: 60\nto: 65?" in fatima.last
        assert "New plus continuing must equal the families reached." in fatima.last
        assert "Save the correction" not in fatima.buttons
        await fatima.taps("Correct another answer")
        await fatima.taps("New")
        await fatima.says("17")
        assert "from: 12\nto: 17?" in fatima.last
        assert "must equal" not in fatima.last
        await fatima.taps("Save the correction")
        assert "Corrected. BEN-1: Families is now 65." in fatima.everything
        assert "Corrected. BEN-1: New is now 17." in fatima.everything
    [report] = reports(sanad)
    assert (report.answers["families_reached"], report.answers["new_beneficiaries"]) == (65, 17)


async def test_a_correction_converts_units_too(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        for typed in ("100", "20", "30", "120", "60", "45", "6"):
            await fatima.says(typed)
        await fatima.taps("Skip")
        await fatima.taps("Confirm and send")
        await fatima.says("/correct REC-1")
        await fatima.taps("Paper")
        await fatima.says("2 miles")
        assert "This question takes these units: kg, t, g." in fatima.last
        await fatima.says("0.5 t")
        assert "to: 0.5 t → 500 kg?" in fatima.last
        await fatima.taps("Save the correction")
    [report] = reports(sanad)
    assert report.answers["paper_kg"] == 500
