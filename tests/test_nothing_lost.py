"""Nothing a person sent is lost between Telegram, the database and the reply.

Polling confirms an update to Telegram only once it is recorded; an update the database could
not take is fetched (polling) or posted (webhook) again; a reply Telegram refuses after the
update was committed waits in the outbox until the sender delivers it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, text
from sqlmodel import Session, select

from bot.app import Sanad, assemble
from bot.channels.telegram import USERNAME_SETTING, NotRecorded, build_telegram, polling
from bot.channels.telegram_delivery import telegram_deliver
from bot.metrics import Metrics
from handlers.dispatcher import Dispatcher
from handlers.messages import Incoming
from outbox.intents import reply_for
from outbox.sender import Sender
from storage.db import transaction
from storage.models import Conversation, OutboxMessage, ProcessedUpdate, Report
from storage.people import recall, remember
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.harness import Telegram, invite, plain, registered
from tests.test_webhook import serving


@contextmanager
def database_fails(
    engine: Engine,
    on: Callable[[str], bool],
    times: int = 1,
    *,
    error: str = "OperationalError",
    after: int = 0,
) -> Iterator[None]:
    """The database refuses the next `times` statements that `on` matches (after letting
    `after` of them through), as a locked SQLite file or a PostgreSQL connection lost in the
    middle would (OperationalError), or as a row another process wrote (IntegrityError)."""
    passed, left = [after], [times]

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if left[0] > 0 and on(statement):
            if passed[0] > 0:
                passed[0] -= 1
                return
            left[0] -= 1
            raise getattr(engine.dialect.dbapi, error)("injected: the database refused it")

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


def saving_a_chat(statement: str) -> bool:
    """The last write of an update: the chat's new state (after its id was inserted)."""
    return (
        statement.lstrip().upper().startswith(("UPDATE CONVERSATION", "INSERT INTO CONVERSATION"))
    )


def recorded(sanad: Sanad) -> set[int]:
    with transaction(sanad.engine) as session:
        keys = session.exec(select(ProcessedUpdate.key)).all()
    return {int(key.split(":")[1]) for key in keys if key.startswith("telegram:")}


async def test_polling_confirms_an_update_only_after_it_is_recorded(sanad: Sanad) -> None:
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    code = invite(sanad, "bh_rural_girls")
    confirmed_unrecorded: list[int] = []

    def check_offset(method: str, params: dict[str, Any]) -> None:
        offset = params.get("offset") if method == "getUpdates" else None
        if offset:
            done = recorded(sanad)
            queued = [int(u["update_id"]) for u in api.pending_updates]
            confirmed_unrecorded.extend(u for u in queued if u < offset and u not in done)

    api.on_request = check_offset  # type: ignore[assignment]
    layla = api.user(311, first_name="Layla", language_code="en")
    async with polling(app, timeout=1):
        layla.command("start", code)
        layla.text("hello")
        layla.text("/help")
        await api.wait_for(
            lambda m: m.chat_id == 311 and "/report" in plain(m.text or ""), timeout=10
        )
    assert not confirmed_unrecorded
    assert len(recorded(sanad)) == 3


async def test_polling_fetches_again_what_the_database_could_not_take(sanad: Sanad) -> None:
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    code = invite(sanad, "bh_rural_girls")
    layla = api.user(312, first_name="Layla", language_code="en")
    with database_fails(sanad.engine, saving_a_chat):
        async with polling(app, timeout=1):
            start = layla.command("start", code)
            await api.wait_for(lambda m: m.chat_id == 312 and bool(m.reply_markup), timeout=15)
    assert recorded(sanad) == {start["update_id"]}
    gets = [params for method, params in api.calls if method == "getUpdates"]
    assert len(gets) >= 2 and not any(p.get("offset") for p in gets[:2]), (
        "the failed update was fetched again before its offset was confirmed"
    )
    texts = [plain(m.text or "") for m in api.messages_to(312)]
    assert not any("Sorry" in t for t in texts), "a refused update is retried, not apologised for"
    assert sum("Which language" in t or "language" in t.lower() for t in texts) == 1


async def test_the_webhook_answers_500_when_the_database_could_not_take_the_update(
    sanad: Sanad,
) -> None:
    async with serving(sanad) as hook:
        user = hook.api.user(404, language_code="en")
        start = user.command("start", invite(sanad, "bh_rural_girls"))
        with database_fails(sanad.engine, saving_a_chat):
            assert await hook.post(start) == 500
        assert recorded(sanad) == set() and hook.api.messages_to(404) == []
        assert await hook.post(start) == 200, "Telegram's redelivery is applied"
        assert recorded(sanad) == {start["update_id"]}
        assert len(hook.api.messages_to(404)) == 1
        assert "sanad_errors_total 1.0" in await hook.scrape()


async def test_a_reply_telegram_refused_waits_in_the_outbox_until_it_is_delivered(
    sanad: Sanad,
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 321)
        telegram.api.fail_next("sendMessage", status=502, description="Bad Gateway")
        assert await fatima.says("/recycling") == [], "Telegram did not take the question"
        with transaction(sanad.engine) as session:
            [kept] = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reply")).all()
        assert plain(reply_for(kept, None).text).endswith("(1 of 9) For which week?")
        metrics = Metrics(sanad.engine)
        sender = Sender(
            sanad.engine,
            telegram_deliver(telegram.app.bot),
            clock=sanad.dispatcher.clock,
            on_sent=metrics.sent,
        )
        assert await sender.run_once() == 1
        scraped = metrics.render().decode()
        assert "sanad_send_seconds_count 1.0" in scraped
        assert "sanad_outbox_wait_seconds_count 1.0" in scraped
        delivered = telegram.api.last_to(321)
        assert plain(delivered.text or "").endswith("(1 of 9) For which week?")
        assert [plain(label) for label, _ in telegram.api.buttons(delivered)] == [
            "week of 29 Nov to 5 Dec 2026",
            "week of 22 Nov to 28 Nov 2026",
        ]
        # The buttons of the kept question work: the form goes on from there.
        assert (await fatima.taps("week of 29 Nov"))[-1].startswith("(2 of 9) Paper collected")
        with transaction(sanad.engine) as session:
            waiting = session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            ).one()
        assert waiting == 0


async def test_a_typed_answer_after_a_reply_kept_in_the_outbox_is_not_taken_blindly(
    sanad: Sanad,
) -> None:
    """The question waits in the outbox; Fatima, seeing nothing, types her answer again. It may
    be meant for the question before, so she is asked to continue first."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 322)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        telegram.api.fail_next("sendMessage", status=502, description="Bad Gateway")
        assert await fatima.says("12.5") == [], "Telegram did not take 'Aluminium collected'"
        await fatima.says("12.5")
        assert "unfinished report, Recycling output, with 2 answers" in fatima.last
        sender = Sender(
            sanad.engine, telegram_deliver(telegram.app.bot), clock=sanad.dispatcher.clock
        )
        assert await sender.run_once() == 1
        assert "Aluminium collected" in plain(telegram.api.last_to(322).text or "")
        await fatima.taps("Continue")
        assert "Aluminium collected" in fatima.last
        await fatima.says("3")
        assert "Plastic collected" in fatima.last


async def test_two_processes_given_the_same_chat_at_once_apply_its_updates_one_after_the_other(
    sanad: Sanad,
) -> None:
    """Two web processes each get a message of the same person at the same instant (she typed
    twice, the balancer split them). The first holds the chat's row while it works; the second
    waits for it, then sees the first's answer (not the state before it, which it would
    overwrite). As she typed before seeing the question the first answer opened, her second
    message is not taken for its answer: she is asked where to go on."""
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 331)
        await fatima.says("/recycling")
        await fatima.taps("week of 29 Nov")
        assert "Paper collected" in fatima.last
    with transaction(sanad.engine) as session:
        before = session.exec(
            select(Conversation.version).where(Conversation.chat_key == "telegram:331")
        ).one()
    other = assemble(sanad.settings, clock=sanad.dispatcher.clock)  # the second process
    slow = [True]

    def linger_holding_the_chat(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if slow[0] and "FROM conversation" in statement:
            slow[0] = False
            time.sleep(0.6)  # the first process is busy with the chat, its row held

    event.listen(sanad.engine, "after_cursor_execute", linger_holding_the_chat)
    try:

        def answer(dispatcher: Dispatcher, update_id: int, text: str) -> list[str]:
            incoming = Incoming(
                channel="telegram", chat_id="331", sender="331", update_id=str(update_id), text=text
            )
            return [plain(reply.text) for reply in dispatcher.handle(incoming)]

        first = asyncio.create_task(asyncio.to_thread(answer, sanad.dispatcher, 9001, "12"))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(asyncio.to_thread(answer, other.dispatcher, 9002, "3"))
        first_replies, second_replies = await asyncio.gather(first, second)
    finally:
        event.remove(sanad.engine, "after_cursor_execute", linger_holding_the_chat)
        other.close()
    assert first_replies[-1].startswith("(3 of 9) Aluminium collected")
    assert "unfinished report, Recycling output, with 2 answers" in second_replies[-1]
    with transaction(sanad.engine) as session:
        [chat] = session.exec(
            select(Conversation).where(Conversation.chat_key == "telegram:331")
        ).all()
    assert chat.state["draft"]["answers"]["paper_kg"] == 12
    assert "aluminium_kg" not in chat.state["draft"]["answers"]
    assert chat.version == before + 2, "both updates were applied, one after the other"


async def test_two_workers_confirming_the_same_week_at_once_in_two_processes(sanad: Sanad) -> None:
    """Fatima and Layla, of one association, confirm the same week's report at the same
    instant, through two web processes. The second collides with the first's report; it is
    applied again and sees it: Layla is asked whether hers replaces it. Nothing is dropped."""
    async with Telegram(sanad) as telegram:
        workers = []
        for user_id, name in ((341, "Fatima"), (342, "Layla")):
            worker = await registered(telegram, "bh_rural_girls", user_id, name)
            await worker.says("/recycling")
            await worker.taps("week of 29 Nov")
            for typed in ("100", "20", "30", "120", "60", "45", "6"):
                await worker.says(typed)
            await worker.taps("Skip")
            assert "Please check your report" in worker.everything
            workers.append(worker)
        presses = [
            dict(telegram.api.buttons(w.keyboard_message))["Confirm and send"] for w in workers
        ]
    other = assemble(sanad.settings, clock=sanad.dispatcher.clock)  # the second process
    slow = [True]

    def linger_after_storing_the_report(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if slow[0] and statement.lstrip().upper().startswith("INSERT INTO REPORT"):
            slow[0] = False
            time.sleep(0.6)  # the first process has stored the report, not yet committed

    event.listen(sanad.engine, "after_cursor_execute", linger_after_storing_the_report)
    try:

        def confirm(dispatcher: Dispatcher, user_id: int, update_id: int, data: str) -> str:
            incoming = Incoming(
                channel="telegram",
                chat_id=str(user_id),
                sender=str(user_id),
                update_id=str(update_id),
                choice=data,
            )
            return "\n".join(plain(reply.text) for reply in dispatcher.handle(incoming))

        first = asyncio.create_task(
            asyncio.to_thread(confirm, sanad.dispatcher, 341, 9101, presses[0])
        )
        await asyncio.sleep(0.2)
        second = asyncio.create_task(
            asyncio.to_thread(confirm, other.dispatcher, 342, 9102, presses[1])
        )
        fatima_reads, layla_reads = await asyncio.gather(first, second)
    finally:
        event.remove(sanad.engine, "after_cursor_execute", linger_after_storing_the_report)
        other.close()
    assert "Saved. Your reference number is REC-1" in fatima_reads
    assert "already exists (REC-1). Replace it with this one?" in layla_reads
    with transaction(sanad.engine) as session:
        assert len(session.exec(select(Report)).all()) == 1


async def test_a_connection_the_database_closed_costs_one_redelivery(sanad: Sanad) -> None:
    """The dispatcher keeps its connection from one update to the next; a database restart
    closes it under it. That update is fetched again and the next connection takes it."""
    if sanad.engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no server to close the connection")
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_rural_girls", 341)
        with sanad.engine.begin() as admin:  # what a restart does to every other session
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() "
                    "AND application_name = current_setting('application_name') "
                    "AND pid <> pg_backend_pid()"
                )
            )
        update = fatima.user.text("/recycling")
        with pytest.raises(NotRecorded):
            await telegram.deliver(update)
        assert await fatima._do(update) != [], "the redelivery is applied"
        assert fatima.last.endswith("(1 of 9) For which week?")
        assert await fatima.taps("week of 29 Nov")


async def test_two_processes_starting_together_both_remember_the_bot_username(sanad: Sanad) -> None:
    """Each process writes down the bot's username when it starts; the second of two starting
    at once used to find no row, insert one too, and die of the duplicate key."""
    if sanad.engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file takes one writer at a time")
    failures: list[BaseException] = []
    with Session(sanad.engine) as first, Session(sanad.engine) as second:
        remember(first, USERNAME_SETTING, "sanad_bot")
        first.flush()  # its row is written, not yet committed

        def second_starts() -> None:
            try:
                remember(second, USERNAME_SETTING, "sanad_bot")
                second.commit()
            except BaseException as error:
                failures.append(error)

        starting = threading.Thread(target=second_starts)
        starting.start()
        await asyncio.sleep(0.3)  # the second now waits for the first's row
        first.commit()
        starting.join(10)
    assert failures == []
    with transaction(sanad.engine) as session:
        assert recall(session, USERNAME_SETTING) == "sanad_bot"
