"""Long polling fetches updates in batches, and Sanad stores a batch in one transaction.

A commit is most of what an update costs the database, so people writing at the same moment
share one. What must not change with it: nobody is answered before their update is stored, a
chat's messages are taken in turn as when they come one by one, and an update that cannot be
stored with the others costs the others nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import select

from bot.app import Sanad
from bot.channels.telegram import build_telegram, polling
from storage.db import transaction
from storage.models import Conversation, Person
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.harness import invite, plain
from tests.test_nothing_lost import database_fails, recorded, saving_a_chat

ANSWERS = ("sendMessage", "answerCallbackQuery")


@contextmanager
def commits_counted(engine: Engine) -> Iterator[list[int]]:
    """How many transactions were committed on `engine` while the block runs."""
    count = [0]

    def counted(*args: Any) -> None:
        count[0] += 1

    event.listen(engine, "commit", counted)
    try:
        yield count
    finally:
        event.remove(engine, "commit", counted)


def people_registered(sanad: Sanad) -> set[str]:
    with transaction(sanad.engine) as session:
        return set(session.exec(select(Person.address)).all())


async def test_three_people_writing_at_once_share_one_commit_and_are_answered_after_it(
    sanad: Sanad,
) -> None:
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    people = [api.user(400 + n, first_name=f"Worker {n}", language_code="en") for n in range(3)]
    starts = {
        person.id: person.command("start", invite(sanad, "bh_rural_girls")) for person in people
    }
    answered_unstored: list[str] = []
    at_first_answer: list[tuple[int, set[int]]] = []  # commits so far, updates stored

    with commits_counted(sanad.engine) as commits:

        def check(method: str, params: dict[str, Any]) -> None:
            if method == "getUpdates" and not at_first_answer:
                commits[0] = 0  # what the start-up stored does not count
            if method in ANSWERS:
                committed = commits[0]
                stored = recorded(sanad)  # (reading commits too)
                if not at_first_answer:
                    at_first_answer.append((committed, stored))
                chat = int(params.get("chat_id") or 0) or None
                if chat is not None and starts[chat]["update_id"] not in stored:
                    answered_unstored.append(f"{method} to {chat}")

        api.on_request = check  # type: ignore[assignment]
        async with polling(app, timeout=1):
            for person in people:
                await api.wait_for(
                    lambda m, who=person.id: (
                        m.chat_id == who and "language" in plain(m.text or "").lower()
                    ),
                    timeout=10,
                )

    assert not answered_unstored, "someone was answered before their update was stored"
    [(commits_then, stored_then)] = at_first_answer
    assert commits_then == 1 and {s["update_id"] for s in starts.values()} <= stored_then, (
        "the three updates were stored in one commit, before anyone was answered"
    )
    assert people_registered(sanad) >= {"400", "401", "402"}


async def test_two_answers_fetched_together_answer_two_questions_in_turn(sanad: Sanad) -> None:
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    fatima = api.user(410, first_name="Fatima", language_code="en")

    async def reply_containing(words: str) -> str:
        message = await api.wait_for(
            lambda m: m.chat_id == 410 and words in plain(m.text or ""), timeout=10
        )
        return plain(message.text or "")

    def press(label: str) -> None:
        message = next(m for m in reversed(api.messages_to(410)) if m.reply_markup)
        data = next(d for text, d in api.buttons(message) if plain(text).startswith(label))
        fatima.press(data, message)

    async with polling(app, timeout=1):
        fatima.command("start", invite(sanad, "bh_rural_girls"))
        await reply_containing("language")
        press("English")
        await reply_containing("What would you like to do")
        fatima.command("recycling")
        await reply_containing("For which week")
        press("week of 29 Nov")
        await reply_containing("(2 of 9) Paper collected")
        fatima.text("12.5")  # typed quickly, one after the other: one batch
        fatima.text("3")
        await reply_containing("(4 of 9)")

    texts = [plain(m.text or "") for m in api.messages_to(410)]
    assert not any("unfinished report" in t for t in texts)
    with transaction(sanad.engine) as session:
        chat = session.exec(
            select(Conversation).where(Conversation.chat_key == "telegram:410")
        ).one()
    assert chat.state["draft"]["answers"]["paper_kg"] == 12.5
    assert chat.state["draft"]["answers"]["aluminium_kg"] == 3


async def test_an_update_that_collides_in_a_batch_costs_the_others_nothing(
    sanad: Sanad, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.dispatcher")
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    people = [api.user(420 + n, first_name=f"Worker {n}", language_code="en") for n in range(3)]
    starts = [person.command("start", invite(sanad, "bh_rural_girls")) for person in people]

    # The second person's chat collides with a row another process wrote meanwhile.
    with database_fails(sanad.engine, saving_a_chat, error="IntegrityError", after=1):
        async with polling(app, timeout=1):
            for person in people:
                await api.wait_for(
                    lambda m, who=person.id: (
                        m.chat_id == who and "language" in plain(m.text or "").lower()
                    ),
                    timeout=10,
                )

    assert any(
        "applied on its own instead of in a batch (IntegrityError)" in r.getMessage()
        for r in caplog.records
    ), "the batch was rolled back and applied one by one"
    assert {int(s["update_id"]) for s in starts} <= recorded(sanad)
    assert people_registered(sanad) >= {"420", "421", "422"}
    for person in people:
        texts = [plain(m.text or "") for m in api.messages_to(person.id)]
        assert not any("Sorry" in t for t in texts), texts
        assert sum("language" in t.lower() for t in texts) == 1, "each answered once"


async def test_an_answer_that_fails_after_the_commit_does_not_stop_the_others(sanad: Sanad) -> None:
    """Telegram refuses Layla's reply and the outbox cannot keep it either (the database is
    gone for that moment): her update is stored, the error is logged, and Omar, whose update
    came in the same batch, is answered all the same; so is his next message."""
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    layla = api.user(430, first_name="Layla", language_code="en")
    omar = api.user(431, first_name="Omar", language_code="en")
    layla.command("start", invite(sanad, "bh_rural_girls"))
    omar.command("start", invite(sanad, "bh_rural_girls"))
    api.fail_next("sendMessage", status=500, description="Internal Server Error", chat_id=430)

    def keeping_in_the_outbox(statement: str) -> bool:
        return statement.lstrip().upper().startswith("INSERT INTO OUTBOX")

    with database_fails(sanad.engine, keeping_in_the_outbox):
        async with polling(app, timeout=1):
            await api.wait_for(
                lambda m: m.chat_id == 431 and "language" in plain(m.text or "").lower(), timeout=10
            )
            omar.text("/help")
            await api.wait_for(
                lambda m: m.chat_id == 431 and "/report" in plain(m.text or ""), timeout=10
            )

    assert people_registered(sanad) >= {"430", "431"}
