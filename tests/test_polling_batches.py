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


def statements_on(engine: Engine, into: list[str]) -> Any:
    """A listener that keeps each statement about chats' rows or applied updates (the marks of
    sent replies aside), upper-cased, one entry per execution (many rows at once count once)."""

    def keep(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = " ".join(statement.split()).upper()
        if ("CONVERSATION" in text or "PROCESSEDUPDATE" in text) and "REPLIED_VERSION=" not in text:
            into.append(text)

    event.listen(engine, "before_cursor_execute", keep)
    return keep


async def registered(sanad: Sanad, api: FakeBotApi, ids: list[int]) -> None:
    """These people joined through an invitation and chose English."""
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    people = [api.user(i, first_name=f"Worker {i}", language_code="en") for i in ids]
    for person in people:
        person.command("start", invite(sanad, "bh_rural_girls"))
    async with polling(app, timeout=1):
        for person in people:
            await api.wait_for(
                lambda m, who=person.id: m.chat_id == who and bool(m.reply_markup), timeout=10
            )
            message = api.messages_to(person.id)[-1]
            data = next(d for t, d in api.buttons(message) if plain(t).startswith("English"))
            person.press(data, message)
        for person in people:
            await api.wait_for(
                lambda m, who=person.id: (
                    m.chat_id == who and "What would you like to do" in plain(m.text or "")
                ),
                timeout=10,
            )


async def polled_until_helped(sanad: Sanad, api: FakeBotApi, chats: tuple[int, ...]) -> None:
    """Sanad polls until each of `chats` got the answer to /help (it lists /report)."""
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    async with polling(app, timeout=1):
        for chat in chats:
            await api.wait_for(
                lambda m, who=chat: m.chat_id == who and "/report" in plain(m.text or ""),
                timeout=10,
            )


async def test_three_people_writing_at_once_are_read_and_saved_in_one_statement_each(
    sanad: Sanad,
) -> None:
    """What each update reads first (was it applied before, its chat and who writes in it) is
    read for the whole batch at once, and the chats' new states are written together at its
    end: three people asking for help at the same moment cost the statements of one."""
    api = FakeBotApi()
    await registered(sanad, api, [440, 441, 442])
    for chat in (440, 441, 442):
        api.user(chat, first_name=f"Worker {chat}", language_code="en").command("help")

    statements: list[str] = []
    listener = statements_on(sanad.engine, statements)
    try:
        await polled_until_helped(sanad, api, (440, 441, 442))
    finally:
        event.remove(sanad.engine, "before_cursor_execute", listener)

    assert sum(s.startswith("INSERT INTO PROCESSEDUPDATE") for s in statements) == 1
    assert sum(s.startswith("SELECT CONVERSATION.") for s in statements) == 1
    assert sum(s.startswith("UPDATE CONVERSATION") for s in statements) == 1
    with transaction(sanad.engine) as session:
        chats = session.exec(
            select(Conversation).where(
                Conversation.chat_key.in_(  # type: ignore[attr-defined]
                    ["telegram:440", "telegram:441", "telegram:442"]
                )
            )
        ).all()
    assert [c.version for c in chats] == [3, 3, 3], "start, language, help: each saved"
    for chat in (440, 441, 442):
        texts = [plain(m.text or "") for m in api.messages_to(chat)]
        assert sum("/report" in t for t in texts) == 1, texts


async def test_states_that_cannot_be_saved_together_are_saved_one_by_one(
    sanad: Sanad, caplog: pytest.LogCaptureFixture
) -> None:
    """Writing the batch's states at its end collides with another process's write: nothing
    of the batch is kept, its updates are applied one by one, and each person is answered
    once, never with a "sorry"."""
    caplog.set_level(logging.INFO, logger="handlers.dispatcher")
    api = FakeBotApi()
    await registered(sanad, api, [450, 451])
    for chat in (450, 451):
        api.user(chat, first_name=f"Worker {chat}", language_code="en").command("help")

    def saving_states(statement: str) -> bool:
        return statement.lstrip().upper().startswith("UPDATE CONVERSATION SET PERSON_ID")

    with database_fails(sanad.engine, saving_states, error="IntegrityError"):
        await polled_until_helped(sanad, api, (450, 451))

    assert any(
        "a batch of 2 updates is applied one by one (IntegrityError)" in r.getMessage()
        for r in caplog.records
    )
    for chat in (450, 451):
        texts = [plain(m.text or "") for m in api.messages_to(chat)]
        assert sum("/report" in t for t in texts) == 1, texts
        assert not any("Sorry" in t for t in texts), texts


async def test_a_batch_the_database_cannot_read_is_fetched_again(
    sanad: Sanad, caplog: pytest.LogCaptureFixture
) -> None:
    """The database refuses the batch's first read (a lost connection): nothing of it is
    stored or answered, Telegram keeps it, and the next poll applies and answers it once."""
    api = FakeBotApi()
    await registered(sanad, api, [460, 461])
    helps = [
        api.user(chat, first_name=f"Worker {chat}", language_code="en").command("help")
        for chat in (460, 461)
    ]

    def reading_ahead(statement: str) -> bool:
        return statement.lstrip().upper().startswith("INSERT INTO PROCESSEDUPDATE")

    with database_fails(sanad.engine, reading_ahead):
        await polled_until_helped(sanad, api, (460, 461))

    assert any(
        "the database could not take it (OperationalError)" in r.getMessage()
        for r in caplog.records
    )
    assert {int(h["update_id"]) for h in helps} <= recorded(sanad)
    for chat in (460, 461):
        texts = [plain(m.text or "") for m in api.messages_to(chat)]
        assert sum("/report" in t for t in texts) == 1, texts
