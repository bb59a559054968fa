"""Answers bound to their question: a reply to the message of a question already answered is
refused with a short "already answered — here is where you are" and changes nothing; a reply to
the question open now is its answer. On Telegram (a reply to a message) and on WhatsApp (a
quoted message), for live replies and outbox copies alike."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.app import Sanad
from bot.channels.telegram_delivery import telegram_deliver
from bot.channels.whatsapp.parse import Inbound, events
from locales import LANGUAGES, translator
from outbox.sender import Sender
from storage.asked import forget_asked
from storage.db import transaction
from storage.models import AskedQuestion, OutboxMessage, Report
from tests.conftest import Clock
from tests.harness import Telegram, registered
from tests.test_whatsapp_channel import registered as registered_on_whatsapp
from tests.whatsapp_harness import WhatsAppChat

ALREADY = "That question was already answered — here is where you are."


def reports(sanad: Sanad) -> list[Report]:
    with transaction(sanad.engine) as session:
        return list(session.exec(select(Report).order_by(Report.id)).all())


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_reply_to_a_question_already_answered_is_refused_and_changes_nothing(
    sanad: Sanad, language: str
) -> None:
    """Fatima answers the paper and the aluminium, then replies to the paper question again:
    she is told it was answered and where she is; the plastic is still to answer, and the
    paper keeps her first answer."""
    tr = translator(language)
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 351, language=language)
        await fatima.says("/recycling")
        await fatima.taps(fatima.buttons[0])  # the week
        paper = fatima.answers[-1]
        await fatima.says("100")
        await fatima.says("20")  # aluminium
        plastic = fatima.answers[-1]
        await fatima.replies_to(paper, "30")
        assert tr.gettext(ALREADY) in fatima.everything
        assert tr.gettext("Please answer the last question above.") in fatima.everything
        await fatima.replies_to(plastic, "30")
        for typed in ("120", "60", "45", "6"):
            await fatima.says(typed)
        await fatima.taps(tr.gettext("Skip"))
        await fatima.taps(tr.gettext("Confirm and send"))
    [report] = reports(sanad)
    assert (report.answers["paper_kg"], report.answers["aluminium_kg"]) == (100, 20)
    assert report.answers["plastic_kg"] == 30
    assert report.answers["sold_kg"] == 120


async def test_a_reply_to_the_question_open_now_is_its_answer(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 352)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        await fatima.replies_to(fatima.message_asking("Paper collected"), "100")
        assert "Aluminium collected" in fatima.last
        await fatima.replies_to(fatima.message_asking("Aluminium collected"), "20")
        assert "Plastic collected" in fatima.last
        assert ALREADY not in fatima.everything


async def test_a_reply_to_an_old_question_after_the_report_was_sent_shows_the_menu(
    sanad: Sanad,
) -> None:
    """The report is sent; a late reply to one of its questions stores nothing anywhere."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 353)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        paper = fatima.message_asking("Paper collected")
        for typed in ("100", "20", "30", "120", "60", "45", "6"):
            await fatima.says(typed)
        await fatima.taps("Skip")
        await fatima.taps("Confirm and send")
        await fatima.replies_to(paper, "250")
        assert ALREADY in fatima.everything
        assert "What would you like to do?" in fatima.everything
    [report] = reports(sanad)
    assert report.answers["paper_kg"] == 100


async def test_commands_and_replies_to_messages_that_ask_nothing_work_as_always(
    sanad: Sanad,
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 354)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        paper = fatima.message_asking("Paper collected")
        await fatima.says("100")
        await fatima.replies_to(paper, "/help")
        assert ALREADY not in fatima.everything
        await fatima.says("/recycling")  # back to the report: the aluminium
        await fatima.taps("Continue")
        await fatima.replies_to(fatima.message_asking("Aluminium collected"), "20")
        assert "Plastic collected" in fatima.last


async def test_an_outbox_copy_of_a_question_is_bound_to_it_too(sanad: Sanad, clock: Clock) -> None:
    """The aluminium question does not reach Fatima and waits in the outbox; the copy arrives
    while it is still open, and a reply to it is its answer. A second reply to the copy, once
    answered, is refused."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 355)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        telegram.api.fail_next("sendMessage", status=502, description="Bad Gateway")
        assert await fatima.says("100") == [], "Telegram did not take 'Aluminium collected'"
        sender = Sender(sanad.engine, telegram_deliver(telegram.app.bot), clock=clock)
        assert await sender.run_once() == 1
        copy = telegram.api.last_to(355)
        assert "Aluminium collected" in (copy.text or "")
        await fatima.replies_to(copy, "20")
        assert "Plastic collected" in fatima.last, "the copy is surely seen: no resume offered"
        await fatima.replies_to(copy, "30")
        assert ALREADY in fatima.everything
        await fatima.replies_to(fatima.message_asking("Plastic collected"), "30")
        assert "Quantity sold" in fatima.last
    with transaction(sanad.engine) as session:
        [kept] = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    assert kept.status == "sent"


async def test_what_messages_asked_is_forgotten_after_a_week(sanad: Sanad, clock: Clock) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 356)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
    sanad.dispatcher.write_delivered()
    with transaction(sanad.engine) as session:
        assert session.exec(select(AskedQuestion)).all() != []
    clock.advance(days=8)
    assert forget_asked(sanad.engine, clock()) > 0
    with transaction(sanad.engine) as session:
        assert session.exec(select(AskedQuestion)).all() == []


# --- WhatsApp ---------------------------------------------------------------------------------


async def test_on_whatsapp_a_quoted_question_already_answered_is_refused(sanad: Sanad) -> None:
    async with WhatsAppChat(sanad) as wa:
        maryam = await registered_on_whatsapp(wa)
        await maryam.taps("Recycling output")
        await maryam.taps(maryam.titles[0])  # the week
        paper = maryam.message_asking("Paper collected")
        await maryam.replies_to(paper, "100")
        assert "Aluminium collected" in maryam.last
        await maryam.replies_to(paper, "20")
        assert ALREADY in maryam.everything
        await maryam.replies_to(maryam.message_asking("Aluminium collected"), "20")
        assert "Plastic collected" in maryam.last
        assert wa.api.refused == []


def test_whatsapp_tells_which_message_a_reply_or_a_press_answers() -> None:
    def body(message: dict[str, object]) -> dict[str, object]:
        value = {"contacts": [{"wa_id": "973", "profile": {"name": "M"}}], "messages": [message]}
        return {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": value}]}],
        }

    quoted = {"from": "973", "id": "wamid.IN1", "type": "text", "text": {"body": "20"}}
    quoted["context"] = {"from": "97317000000", "id": "wamid.OUT7"}
    pressed = {
        "from": "973",
        "id": "wamid.IN2",
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "ab:yes", "title": "Yes"}},
        "context": {"from": "97317000000", "id": "wamid.OUT8"},
    }
    plain = {"from": "973", "id": "wamid.IN3", "type": "text", "text": {"body": "hi"}}
    found = [events(body(m))[0] for m in (quoted, pressed, plain)]
    assert all(isinstance(event, Inbound) for event in found)
    answers = [event.incoming.answers for event in found if isinstance(event, Inbound)]
    assert answers == ["wamid.OUT7", "wamid.OUT8", None]


async def test_on_whatsapp_an_outbox_copy_of_a_question_is_bound_to_it_too(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        maryam = await registered_on_whatsapp(wa)
        await maryam.taps("Recycling output")
        await maryam.taps(maryam.titles[0])  # the week
        wa.api.fail_next(1, status=500, code=131000)
        assert await maryam.says("100") == [], "WhatsApp did not take 'Aluminium collected'"
        sender = Sender(sanad.engine, wa.whatsapp.deliver, clock=clock)
        assert await sender.run_once() == 1
        copy = maryam.message_asking("Aluminium collected")
        await maryam.replies_to(copy, "20")
        assert "Plastic collected" in maryam.last
        await maryam.replies_to(copy, "30")
        assert ALREADY in maryam.everything
        await maryam.says("30")
        assert "Quantity sold" in maryam.last
