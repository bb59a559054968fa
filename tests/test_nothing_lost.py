"""Nothing a person sent is lost between Telegram, the database and the reply.

Polling confirms an update to Telegram only once it is recorded; an update the database could
not take is fetched (polling) or posted (webhook) again; a reply Telegram refuses after the
update was committed waits in the outbox until the sender delivers it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, func
from sqlmodel import select

from bot.app import Sanad
from bot.channels.fake_bot_api import FakeBotApi
from bot.channels.telegram import build_application, polling
from bot.channels.telegram_delivery import telegram_deliver
from bot.metrics import Metrics
from outbox.sender import Sender
from storage.db import transaction
from storage.models import OutboxMessage, ProcessedUpdate
from tests.harness import Telegram, invite, plain
from tests.test_webhook import serving


@contextmanager
def database_fails(engine: Engine, on: Callable[[str], bool], times: int = 1) -> Iterator[None]:
    """The database refuses the next `times` statements that `on` matches, as a locked SQLite
    file or a PostgreSQL connection lost in the middle would (OperationalError)."""
    left = [times]

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if left[0] > 0 and on(statement):
            left[0] -= 1
            raise engine.dialect.dbapi.OperationalError("injected: the database is gone")

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


def saving_a_chat(statement: str) -> bool:
    """The last write of an update: the chat's new state (after its id was inserted)."""
    return statement.lstrip().upper().startswith(("UPDATE CONVERSATION",
                                                  "INSERT INTO CONVERSATION"))


def recorded(sanad: Sanad) -> set[int]:
    with transaction(sanad.engine) as session:
        keys = session.exec(select(ProcessedUpdate.key)).all()
    return {int(key.split(":")[1]) for key in keys if key.startswith("telegram:")}


async def test_polling_confirms_an_update_only_after_it_is_recorded(sanad: Sanad) -> None:
    api = FakeBotApi()
    app = build_application(sanad, request=api.request(), get_updates_request=api.request())
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
        await api.wait_for(lambda m: m.chat_id == 311 and "/report" in plain(m.text or ""),
                           timeout=10)
    assert not confirmed_unrecorded
    assert len(recorded(sanad)) == 3


async def test_polling_fetches_again_what_the_database_could_not_take(sanad: Sanad) -> None:
    api = FakeBotApi()
    app = build_application(sanad, request=api.request(), get_updates_request=api.request())
    code = invite(sanad, "bh_rural_girls")
    layla = api.user(312, first_name="Layla", language_code="en")
    with database_fails(sanad.engine, saving_a_chat):
        async with polling(app, timeout=1):
            start = layla.command("start", code)
            await api.wait_for(lambda m: m.chat_id == 312 and bool(m.reply_markup), timeout=15)
    assert recorded(sanad) == {start["update_id"]}
    gets = [params for method, params in api.calls if method == "getUpdates"]
    assert len(gets) >= 2 and not any(p.get("offset") for p in gets[:2]), \
        "the failed update was fetched again before its offset was confirmed"
    texts = [plain(m.text or "") for m in api.messages_to(312)]
    assert not any("Sorry" in t for t in texts), "a refused update is retried, not apologised for"
    assert sum("Which language" in t or "language" in t.lower() for t in texts) == 1


async def test_the_webhook_answers_500_when_the_database_could_not_take_the_update(
        sanad: Sanad) -> None:
    async with serving(sanad) as hook:
        user = hook.api.user(404, language_code="en")
        start = user.command("start", invite(sanad, "bh_rural_girls"))
        with database_fails(sanad.engine, saving_a_chat):
            assert await hook.post(start) == 500
        assert recorded(sanad) == set() and hook.api.messages_to(404) == []
        assert await hook.post(start) == 200, "Telegram's redelivery is applied"
        assert recorded(sanad) == {start["update_id"]}
        assert len(hook.api.messages_to(404)) == 1
        metrics = (await hook.client.get("/metrics")).text
        assert "sanad_errors_total 1.0" in metrics


async def test_a_reply_telegram_refused_waits_in_the_outbox_until_it_is_delivered(
        sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        fatima = telegram.person(321, language="en")
        await fatima.says(f"/start {invite(sanad, 'bh_rural_girls')}")
        await fatima.taps("English")
        telegram.api.fail_next("sendMessage", status=502, description="Bad Gateway")
        assert await fatima.says("/recycling") == [], "Telegram did not take the question"
        with transaction(sanad.engine) as session:
            [kept] = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reply")).all()
        assert plain(kept.text).endswith("(1 of 9) For which week?")
        metrics = Metrics(sanad.engine)
        sender = Sender(sanad.engine, telegram_deliver(telegram.app.bot),
                        clock=sanad.dispatcher.clock, on_sent=metrics.sent)
        assert await sender.run_once() == 1
        scraped = metrics.render().decode()
        assert "sanad_send_seconds_count 1.0" in scraped
        assert "sanad_outbox_wait_seconds_count 1.0" in scraped
        delivered = telegram.api.last_to(321)
        assert plain(delivered.text or "").endswith("(1 of 9) For which week?")
        assert [plain(label) for label, _ in telegram.api.buttons(delivered)] == [
            "week of 29 Nov to 5 Dec 2026", "week of 22 Nov to 28 Nov 2026"]
        # The buttons of the kept question work: the form goes on from there.
        assert (await fatima.taps("week of 29 Nov"))[-1].startswith("(2 of 9) Paper collected")
        with transaction(sanad.engine) as session:
            waiting = session.exec(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.status == "pending")).one()
        assert waiting == 0
