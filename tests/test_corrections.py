"""Corrections, review and history through Telegram: a worker corrects a number within the
window, a coordinator queries a report and the worker answers by correcting it, the
coordinator marks it checked, and /history shows who changed what and when."""

from __future__ import annotations

from sqlmodel import select

from bot.app import Sanad
from bot.channels.telegram_delivery import telegram_deliver
from outbox.intents import reply_for
from outbox.sender import Sender
from storage.db import transaction
from storage.models import OutboxMessage, Person, Report, ReportChange
from tests.conftest import Clock
from tests.harness import Person as Chat
from tests.harness import Telegram, invite, plain, report_recycling


async def join(telegram: Telegram, org: str, user_id: int, name: str, role: str = "worker") -> Chat:
    chat = telegram.person(user_id, name, language="en")
    await chat.says(f"/start {invite(telegram.sanad, org, role)}")
    await chat.taps("English")
    return chat


async def reported(worker: Chat) -> None:
    await report_recycling(worker)
    assert "REC-1" in worker.everything


def the_report(sanad: Sanad) -> Report:
    with transaction(sanad.engine) as session:
        return session.exec(select(Report)).one()


def person_id(sanad: Sanad, chat: Chat) -> int:
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.address == str(chat.user.id))).one()
        assert person.id is not None
        return person.id


async def test_a_worker_corrects_a_number_and_history_shows_it(sanad: Sanad, clock: Clock) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 801, "Fatima")
        await reported(fatima)

        await fatima.says("/myreports")
        assert "REC-1" in fatima.last
        await fatima.taps("Correct a report")
        assert "Which report do you want to correct?" in fatima.last
        await fatima.taps("REC-1")
        assert "Plastic: 30 kg" in fatima.buttons
        await fatima.taps("Plastic")
        assert "Current answer: 30 kg" in fatima.last
        await fatima.says("1,250")
        assert "Did you mean 1.25 or 1,250?" in fatima.last
        await fatima.taps("1,250")
        assert "from: 30 kg\nto: 1,250 kg" in fatima.last
        await fatima.taps("Save the correction")
        assert "Corrected. REC-1: Plastic is now 1,250 kg." in fatima.everything

        await fatima.says("/history REC-1")
        assert "History of REC-1, Recycling output:" in fatima.last
        assert "Sent on" in fatima.last
        assert "Fatima: Plastic: 30 kg → 1,250 kg (corrected)" in fatima.last
        assert "29/11/2026" in fatima.last or "11/29/26" in fatima.last  # Bahrain time

        clock.advance(days=8)
        await fatima.says("/correct REC-1")
        assert "can be corrected for 7 days" in fatima.last
        assert "ask your coordinator" in fatima.last

    report = the_report(sanad)
    assert report.answers["plastic_kg"] == 1250
    assert report.person_id == person_id(sanad, fatima)
    with transaction(sanad.engine) as session:
        [change] = session.exec(select(ReportChange)).all()
    assert (change.field, change.old_value, change.new_value, change.reason) == (
        "plastic_kg",
        30,
        1250,
        "corrected",
    )


async def test_a_coordinator_queries_the_worker_corrects_and_it_is_checked(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 811, "Fatima")
        huda = await join(telegram, "bh_young_ladies", 812, "Huda", "coordinator")
        await reported(fatima)
        clock.advance(days=10)  # past the window: an open query may still be answered

        await huda.says("/review")
        assert "Which report do you want to review?" in huda.last
        await huda.taps("REC-1")
        assert "REC-1, Recycling output, sent by Fatima" in huda.last
        assert "Review: not reviewed yet" in huda.last
        await huda.taps("Query it")
        assert "Fatima will receive it" in huda.last
        await huda.says("Paper 100 kg but only 60 kg sold?")
        assert "Your question about REC-1 was sent to Fatima." in huda.everything

        with transaction(sanad.engine) as session:
            [query] = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "query")).all()
        assert query.person_id == person_id(sanad, fatima)
        said = reply_for(query, None)
        assert "Huda has a question about your report REC-1" in plain(said.text)
        assert "Paper 100 kg but only 60 kg sold?" in plain(said.text)
        assert [(o.label, o.value) for o in said.options] == [("Correct it", "go:correct REC-1")]

        sender = Sender(sanad.engine, telegram_deliver(telegram.app.bot), clock=clock)
        assert await sender.run_once() == 1
        assert "Paper 100 kg but only 60 kg sold?" in plain(
            telegram.api.messages_to(fatima.user.id)[-1].text or ""
        )

        await fatima.taps("Correct it")
        assert "REC-1, Recycling output. Which answer" in fatima.last
        await fatima.taps("Sold")
        await fatima.says("95")
        await fatima.taps("Save the correction")
        assert "Sold is now 95 kg" in fatima.everything

        assert await sender.run_once() == 1  # Huda learns of the correction
        assert "Fatima corrected REC-1 after your question: Sold." in plain(
            telegram.api.messages_to(huda.user.id)[-1].text or ""
        )
        await huda.taps("Review it")
        assert "Review: query: Paper 100 kg but only 60 kg sold?" in huda.last
        await huda.taps("Mark as checked")
        assert "REC-1 is marked as checked." in huda.everything

        await huda.says("/history REC-1")
        history = huda.last
        assert "Huda: Review: query: Paper 100 kg but only 60 kg sold?" in history
        assert "Fatima: Sold: 120 kg → 95 kg (corrected)" in history
        assert "Huda: Review: checked" in history
        assert history.index("query") < history.index("95 kg") < history.index("checked")

    report = the_report(sanad)
    assert (report.review, report.review_comment) == ("checked", None)
    assert report.answers["sold_kg"] == 95
    with transaction(sanad.engine) as session:
        marks = session.exec(
            select(ReportChange).where(ReportChange.field == "_review").order_by(ReportChange.id)
        ).all()
    assert [m.new_value for m in marks] == [
        {"review": "query", "comment": "Paper 100 kg but only 60 kg sold?"},
        {"review": "checked", "comment": None},
    ]
    assert marks[1].old_value == {"review": "query", "comment": "Paper 100 kg but only 60 kg sold?"}


async def test_a_coordinator_corrects_without_a_window_and_the_report_stays_the_workers(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 821, "Fatima")
        huda = await join(telegram, "bh_young_ladies", 822, "Huda", "coordinator")
        await reported(fatima)
        clock.advance(days=30)
        await huda.says("/correct REC-1")
        await huda.taps("Women working")
        await huda.says("7")
        await huda.taps("Save the correction")
        assert "is now 7" in huda.everything
        await fatima.says("/history REC-1")
        assert "Huda: Women working: 6 → 7 (corrected)" in fatima.last
    report = the_report(sanad)
    assert report.answers["women_working"] == 7
    assert report.person_id == person_id(sanad, fatima)


async def test_period_and_invalid_values_are_refused_like_in_the_form(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 831, "Fatima")
        await reported(fatima)
        await fatima.says("/correct REC-1")
        await fatima.taps("Week")
        assert "The period of a report cannot be corrected" in fatima.last
        await fatima.taps("Women working")
        await fatima.says("6.5")
        assert "whole number" in fatima.last
        await fatima.says("-1")
        assert "at least 0" in fatima.last
        await fatima.taps("Cancel")
        assert "Nothing was changed." in fatima.everything
    assert the_report(sanad).answers["women_working"] == 6


async def test_nobody_else_sees_or_corrects_the_report(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 841, "Fatima")
        zainab = await join(telegram, "bh_sitra_women", 842, "Zainab")
        omar = await join(telegram, "eg_supportive", 843, "Omar", "coordinator")
        await reported(fatima)

        for command in ("/correct REC-1", "/history REC-1"):
            await zainab.says(command)
            assert "I found no report REC-1 among the reports you can see." in zainab.everything
        await zainab.says("/review REC-1")
        assert "not for your role" in zainab.last
        await zainab.says("/correct")
        assert "There is no report you can correct now." in zainab.everything

        for command in ("/review REC-1", "/correct REC-1", "/history REC-1"):
            await omar.says(command)
            assert "I found no report REC-1" in omar.everything
        await omar.says("/review")
        assert "Your group has no report yet." in omar.everything
    assert the_report(sanad).answers["plastic_kg"] == 30


async def test_a_replayed_old_button_does_nothing_but_say_so(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 851, "Fatima")
        await reported(fatima)
        await fatima.says("/correct REC-1")
        fields = fatima.keyboard_message
        await fatima.taps("Paper")
        data = dict(
            (plain(label).split(":")[0], value) for label, value in telegram.api.buttons(fields)
        )["Aluminium"]
        await fatima._do(fatima.user.press(data, fields))
        assert "no longer works" in fatima.everything
        assert "Current answer: 100 kg" in fatima.last  # still waiting for the paper
        await fatima.says("110")
        await fatima.taps("Save the correction")
        await fatima._do(fatima.user.press(data, fields))
        assert "no longer works" in fatima.everything
    report = the_report(sanad)
    assert report.answers["paper_kg"] == 110
    assert report.answers["aluminium_kg"] == 20


async def test_an_admin_sees_the_history_of_any_report_and_a_worker_has_no_review(
    sanad: Sanad,
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await join(telegram, "bh_sitra_women", 861, "Fatima")
        salma = await join(telegram, "arab_network", 862, "Salma", "admin")
        await reported(fatima)
        await salma.says("/history rec-1")
        assert "History of REC-1, Recycling output:" in salma.last
        assert "No change since it was sent." in salma.last
        await salma.says("/review")
        await salma.taps("REC-1")
        await salma.taps("Mark as checked")
        assert "REC-1 is marked as checked." in salma.everything
        await fatima.says("/history REC-1")
        assert "Salma: Review: checked" in fatima.last
        await fatima.says("/history")
        assert "for example /history REC-12" in fatima.last
