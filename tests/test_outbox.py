"""The outbox and its sender, through the real python-telegram-bot Bot and the fake Bot API."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect
from sqlmodel import Session, select
from telegram import Bot

from bot.app import Sanad
from bot.channels.telegram_delivery import telegram_deliver
from outbox.intents import Intent, reply_for
from outbox.pace import Pace
from outbox.scaled_time import ScaledTime
from outbox.sender import Sender
from outbox.wakeup import on_enqueue
from storage import holders, outbox
from storage.db import alembic_config, make_engine, open_database, transaction
from storage.models import Organization, OutboxMessage, Person, SenderHeartbeat
from storage.types import utcnow
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import FakeBotApi

FIRST_CHAT = 5001


class Sleeper:
    """An asyncio.sleep that moves the test clock instead of waiting."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeBotApi, Bot]]:
    api = FakeBotApi()
    async with Bot("123456:TEST", request=api.request(), get_updates_request=api.request()) as bot:
        yield api, bot


def people(sanad: Sanad, count: int) -> list[int]:
    """`count` people on Telegram (chats FIRST_CHAT, FIRST_CHAT + 1, ...); their ids."""
    with transaction(sanad.engine) as session:
        organization = session.exec(select(Organization)).first()
        assert organization is not None and organization.id is not None
        rows = [
            Person(
                channel="telegram",
                address=str(FIRST_CHAT + n),
                role="worker",
                organization_id=organization.id,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows if row.id is not None]


def chat_of(person_id: int, ids: list[int]) -> int:
    return FIRST_CHAT + ids.index(person_id)


def put(
    sanad: Sanad,
    clock: Clock,
    person_id: int,
    key: str,
    text: str = "",
    options: list[tuple[str, str]] | None = None,
    photo_path: str | None = None,
    **extra,
) -> bool:
    with transaction(sanad.engine) as session:
        return outbox.enqueue(
            session,
            person_id=person_id,
            kind="reminder",
            dedupe_key=key,
            intent=Intent.plain(text or f"message {key}", options or (), photo_path),
            now=clock(),
            **extra,
        )


def text_of(row: OutboxMessage) -> str:
    """What the row says, as the sender would render it."""
    return reply_for(row, None).text


def rows(sanad: Sanad) -> list[OutboxMessage]:
    with transaction(sanad.engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def counts(sanad: Sanad) -> dict[str, int]:
    with transaction(sanad.engine) as session:
        return outbox.counts_by_status(session)


def sender(sanad: Sanad, bot: Bot, clock: Clock, sleeper: Sleeper, **options) -> Sender:
    return Sender(sanad.engine, telegram_deliver(bot), clock=clock, sleep=sleeper, **options)


# --- the table -----------------------------------------------------------------------------


def test_migration_0002_upgrades_a_database_at_0001(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    assert "outbox" not in inspect(engine).get_table_names()
    engine.dispose()
    engine = open_database(database_url)
    assert "outbox" in inspect(engine).get_table_names()
    engine.dispose()


def test_the_same_key_twice_makes_one_message(sanad: Sanad, clock: Clock) -> None:
    [person] = people(sanad, 1)
    key = "reminder:recycling:12:2026-11-29:before:34"
    assert put(sanad, clock, person, key) is True
    assert put(sanad, clock, person, key, text="said differently") is False
    assert [r.dedupe_key for r in rows(sanad)] == [key]
    with transaction(sanad.engine) as session:
        assert outbox.depth(session) == 1


def test_an_enqueue_in_a_rolled_back_transaction_leaves_nothing(sanad: Sanad, clock: Clock) -> None:
    [person] = people(sanad, 1)
    with Session(sanad.engine) as session:
        outbox.enqueue(
            session,
            person_id=person,
            kind="digest",
            dedupe_key="k",
            intent=Intent.plain("t"),
            now=clock(),
        )
        session.rollback()
    assert rows(sanad) == []


def test_two_enqueues_of_one_key_at_the_same_moment_make_one_message(
    sanad: Sanad, clock: Clock
) -> None:
    [person] = people(sanad, 1)
    first = Session(sanad.engine)
    assert outbox.enqueue(
        first,
        person_id=person,
        kind="digest",
        dedupe_key="same",
        intent=Intent.plain("1"),
        now=clock(),
    )
    results: list[bool] = []

    def second() -> None:  # waits for the first transaction's lock, then finds the key
        with transaction(sanad.engine) as session:
            results.append(
                outbox.enqueue(
                    session,
                    person_id=person,
                    kind="digest",
                    dedupe_key="same",
                    intent=Intent.plain("2"),
                    now=clock(),
                )
            )

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.3)
    first.commit()
    first.close()
    thread.join(10)
    assert results == [False]
    assert [text_of(r) for r in rows(sanad)] == ["1"]


async def test_long_texts_and_long_captions_become_several_messages_when_sent(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot], tmp_path: Path
) -> None:
    api, bot = telegram
    [person] = people(sanad, 1)
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nchart")
    long = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # about 10,000 characters
    put(sanad, clock, person, "long", text=long, options=[("OK", "ok")])
    put(sanad, clock, person, "chart", text="y" * 2000, photo_path=str(chart))
    assert [r.dedupe_key for r in rows(sanad)] == ["long", "chart"]  # one row, one intent
    the_sender = sender(sanad, bot, clock, Sleeper(clock))
    assert await the_sender.run_once() + await the_sender.run_once() == 2
    sent = api.messages_to(FIRST_CHAT)
    assert [m.method for m in sent] == ["sendMessage"] * 3 + ["sendPhoto", "sendMessage"]
    assert "".join(m.text for m in sent[:3]) == long
    assert all(len(m.text or "") <= 4096 for m in sent)
    assert [api.buttons(m) for m in sent[:3]] == [[], [], [("OK", "ok")]]
    assert (sent[3].text, sent[3].file_bytes) == (None, chart.read_bytes())
    assert sent[4].text == "y" * 2000


# --- delivering ----------------------------------------------------------------------------


async def test_each_chat_gets_its_messages_once_in_order_and_spaced(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 4)
    for round_ in range(3):
        for person in ids:
            put(
                sanad,
                clock,
                person,
                f"{person}:{round_}",
                text=f"{round_} to {person}",
                options=[("Fill it now", "go:recycling")],
            )
    sleeper = Sleeper(clock)
    times: dict[int, list[float]] = {}

    def note_time(method: str, params: dict) -> None:
        times.setdefault(int(params["chat_id"]), []).append(clock().timestamp())

    api.on_request = note_time
    the_sender = sender(sanad, bot, clock, sleeper)

    finished = 0
    for _ in range(5):
        finished += await the_sender.run_once()
    assert finished == 12
    for person in ids:
        chat = chat_of(person, ids)
        assert [m.text for m in api.messages_to(chat)] == [f"{n} to {person}" for n in range(3)]
        assert all(b - a >= 1 for a, b in zip(times[chat], times[chat][1:], strict=False))
        assert api.buttons(api.last_to(chat)) == [("Fill it now", "go:recycling")]
    assert counts(sanad)["sent"] == 12
    assert all(r.attempts == 1 and r.sent_at is not None for r in rows(sanad))


async def test_a_photo_goes_with_its_text_as_caption(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot], tmp_path: Path
) -> None:
    api, bot = telegram
    [person] = people(sanad, 1)
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nchart")
    put(
        sanad,
        clock,
        person,
        "digest",
        text="Week 48: 3 of 4 reported",
        photo_path=str(chart),
        options=[("Details", "details")],
    )
    put(sanad, clock, person, "lost", text="chart gone", photo_path=str(tmp_path / "gone.png"))
    sleeper = Sleeper(clock)
    the_sender = sender(sanad, bot, clock, sleeper)
    assert await the_sender.run_once() + await the_sender.run_once() == 2
    [sent] = api.messages_to(FIRST_CHAT)
    assert (sent.method, sent.text, sent.file_bytes) == (
        "sendPhoto",
        "Week 48: 3 of 4 reported",
        chart.read_bytes(),
    )
    assert api.buttons(sent) == [("Details", "details")]
    lost = rows(sanad)[1]
    assert lost.status == "failed" and "gone.png" in (lost.error or "")


async def test_a_flood_wait_is_waited_out_and_is_no_failure(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 2)
    put(sanad, clock, ids[0], "a")
    put(sanad, clock, ids[1], "b")
    api.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 7", retry_after=7
    )
    sleeper = Sleeper(clock)
    start = clock()

    assert await sender(sanad, bot, clock, sleeper).run_once() == 2

    assert (clock() - start).total_seconds() >= 7  # the whole bot waited, in test time
    assert any(wait >= 7 for wait in sleeper.waits)
    assert len(api.sent) == 2
    assert all((r.status, r.attempts, r.error) == ("sent", 1, None) for r in rows(sanad))


async def test_server_errors_are_retried_with_backoff(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    [person] = people(sanad, 1)
    put(sanad, clock, person, "k", text="hello")
    api.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
    the_sender = sender(sanad, bot, clock, Sleeper(clock))

    assert await the_sender.run_once() == 0  # 502: again in 1 s
    [row] = rows(sanad)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "pending",
        1,
        clock() + timedelta(seconds=1),
    )
    assert await the_sender.run_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert await the_sender.run_once() == 0  # 502 again: in 2 s
    clock.advance(seconds=1)
    assert await the_sender.run_once() == 0
    clock.advance(seconds=1)
    assert await the_sender.run_once() == 1

    [row] = rows(sanad)
    assert (row.status, row.attempts, row.error) == ("sent", 3, None)
    assert [m.text for m in api.sent] == ["hello"]


async def test_a_retry_keeps_the_order_of_a_persons_messages(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    [person] = people(sanad, 1)
    put(sanad, clock, person, "first", text="first")
    put(sanad, clock, person, "second", text="second")
    api.fail_next("sendMessage", status=502, description="Bad Gateway")
    the_sender = sender(sanad, bot, clock, Sleeper(clock))
    assert await the_sender.run_once() == 0
    clock.advance(seconds=0.5)
    assert await the_sender.run_once() == 0  # "second" waits for "first"
    with transaction(sanad.engine) as session:
        assert outbox.next_due(session) == clock() + timedelta(seconds=0.5)
    clock.advance(seconds=0.5)
    assert await the_sender.run_once() + await the_sender.run_once() == 2
    assert [m.text for m in api.sent] == ["first", "second"]


async def test_a_message_that_keeps_failing_is_given_up(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    [person] = people(sanad, 1)
    put(sanad, clock, person, "k")
    api.fail_next("sendMessage", status=500, description="Internal Server Error", times=10)
    the_sender = sender(sanad, bot, clock, Sleeper(clock), max_attempts=4)
    for _ in range(4):
        await the_sender.run_once()
        clock.advance(minutes=5)
    [row] = rows(sanad)
    assert (row.status, row.attempts) == ("failed", 4)
    assert "Internal Server Error" in (row.error or "")
    assert [the_sender.backoff(n) for n in (1, 2, 3, 9, 20)] == [1, 2, 4, 256, 300]


async def test_a_person_who_blocked_the_bot_becomes_unreachable(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 3)
    for person in ids:
        put(sanad, clock, person, f"k{person}")
    api.blocked.add(FIRST_CHAT)
    api.fail_next(
        "sendMessage", status=400, description="Bad Request: chat not found", chat_id=FIRST_CHAT + 1
    )

    assert await sender(sanad, bot, clock, Sleeper(clock)).run_once() == 3

    assert [r.status for r in rows(sanad)] == ["blocked", "blocked", "sent"]
    with transaction(sanad.engine) as session:
        reachable = [session.get(Person, person).reachable for person in ids]  # type: ignore
    assert reachable == [False, False, True]


async def test_a_refused_message_fails_at_once(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    [person] = people(sanad, 1)
    put(sanad, clock, person, "k")
    api.fail_next("sendMessage", status=400, description="Bad Request: BUTTON_DATA_INVALID")
    assert await sender(sanad, bot, clock, Sleeper(clock)).run_once() == 1
    [row] = rows(sanad)
    assert (row.status, row.attempts) == ("failed", 1)
    with transaction(sanad.engine) as session:
        assert session.get(Person, person).reachable is True  # type: ignore[union-attr]


# --- crashes -------------------------------------------------------------------------------


async def test_after_a_crash_claimed_messages_go_out_and_only_in_flight_ones_twice(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 5)
    for person in ids:
        put(sanad, clock, person, f"k{person}")
    with transaction(sanad.engine) as session:  # a sender claims three, then dies ...
        claimed = outbox.claim(session, clock(), 3)
    first = claimed[0]  # ... while the first was in flight: Telegram got it
    await bot.send_message(chat_of(first.person_id, ids), text_of(first))
    clock.advance(minutes=1)

    the_sender = sender(sanad, bot, clock, Sleeper(clock), stale_after=timedelta(minutes=10))
    assert the_sender.recover() == 0  # a live sender may still be on them
    assert await the_sender.run_once() == 2  # the unclaimed two go out meanwhile
    assert the_sender.recover(older_than=timedelta(0)) == 3
    assert await the_sender.run_once() == 3

    sent = Counter(m.chat_id for m in api.sent)
    assert sent == {chat_of(p, ids): 2 if p == first.person_id else 1 for p in ids}
    assert counts(sanad)["sent"] == 5
    with transaction(sanad.engine) as session:
        assert outbox.resent_total(session) == 3


async def test_run_forever_recovers_delivers_what_comes_and_stops(
    sanad: Sanad, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 4)
    clock = Clock(utcnow() - timedelta(seconds=1))
    put(sanad, clock, ids[0], "left by a dead sender")
    with transaction(sanad.engine) as session:
        assert len(outbox.claim(session, clock(), 10)) == 1
    the_sender = Sender(
        sanad.engine, telegram_deliver(bot), idle_seconds=0.05, stale_after=timedelta(0)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(the_sender.run_forever(stop))
    await api.wait_for(lambda m: m.chat_id == FIRST_CHAT, timeout=5)
    for person in ids[1:]:
        put(sanad, clock, person, f"k{person}")
    the_sender.wake()
    await api.wait_for(lambda m: len(api.sent) == 4, timeout=5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert counts(sanad)["sent"] == 4
    assert the_sender.stats["recovered"] == 1


# --- limits and several senders ------------------------------------------------------------


async def test_the_limits_are_kept_on_a_faster_clock(
    sanad: Sanad, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 40)
    time = ScaledTime(factor=10)
    api.limits(per_second_overall=30, per_chat_per_second=1, clock=time.timestamp)
    for round_ in range(3):
        for person in ids:
            with transaction(sanad.engine) as session:
                outbox.enqueue(
                    session,
                    person_id=person,
                    kind="broadcast",
                    dedupe_key=f"{person}:{round_}",
                    intent=Intent.plain(str(round_)),
                    now=time.now(),
                )
    the_sender = Sender(sanad.engine, telegram_deliver(bot), clock=time.now, sleep=time.sleep)

    start = time.elapsed()
    finished = 0
    while finished < 120:
        finished += await the_sender.run_once()
    elapsed = time.elapsed() - start

    assert api.rejected_429 == 0
    # Never faster than 30 a second once the starting burst is spent (the rate a property of
    # the limiter, on the scaled clock; how fast it gets there is bench/sender.py's business).
    burst = the_sender.limiter.burst
    assert elapsed >= (120 - burst) / 30, "never faster than 30 a second after the burst"
    for person in ids:
        assert [m.text for m in api.messages_to(chat_of(person, ids))] == ["0", "1", "2"]


async def test_two_senders_never_claim_the_same_message(
    sanad: Sanad, clock: Clock, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: one sender")
    ids = people(sanad, 6)
    for person in ids:
        put(sanad, clock, person, f"k{person}")
    with Session(sanad.engine) as first, Session(sanad.engine) as second:
        mine = outbox.claim(first, clock(), 4)  # locked, not yet committed
        theirs = outbox.claim(second, clock(), 10)  # skips the locked rows
        assert {m.id for m in mine} & {m.id for m in theirs} == set()
        assert len(mine) + len(theirs) == 6
        first.commit()
        second.commit()


# --- holders, heartbeats, wake-ups and the shared pace ------------------------------------


def age_heartbeat(sanad: Sanad, holder: str, seconds: float) -> None:
    with transaction(sanad.engine) as session:
        row = session.get(SenderHeartbeat, holder)
        assert row is not None
        row.seen_at = utcnow() - timedelta(seconds=seconds)
        session.add(row)


async def test_the_claims_of_a_silent_holder_go_back_in_seconds_not_after_the_timeout(
    sanad: Sanad, clock: Clock, telegram: tuple[FakeBotApi, Bot]
) -> None:
    api, bot = telegram
    ids = people(sanad, 3)
    for person in ids:
        put(sanad, clock, person, f"k{person}")
    dead = sender(sanad, bot, clock, Sleeper(clock), holder="dead")
    alive = sender(sanad, bot, clock, Sleeper(clock), holder="alive")
    dead.beat()
    alive.beat()
    with transaction(sanad.engine) as session:  # the first sender claims two, then is killed
        assert len(outbox.claim(session, clock(), 2, holder="dead")) == 2

    assert alive.release_dead() == 0  # its heartbeat is fresh: it may be at work
    age_heartbeat(sanad, "dead", holders.SILENT_AFTER.total_seconds() + 1)
    assert alive.release_dead() == 2  # silent: its claims go back, long before stale_after
    while await alive.run_once():
        pass
    assert counts(sanad)["sent"] == 3
    assert Counter(m.chat_id for m in api.sent) == {chat_of(p, ids): 1 for p in ids}
    with transaction(sanad.engine) as session:
        assert outbox.resent_total(session) == 2  # they may have reached their person twice


async def test_an_enqueue_wakes_the_sender_when_it_is_committed(sanad: Sanad, clock: Clock) -> None:
    [person] = people(sanad, 1)
    woken: list[str] = []
    stop = on_enqueue(sanad.engine, lambda: woken.append("woken"))
    try:
        with pytest.raises(RuntimeError), transaction(sanad.engine) as session:
            outbox.enqueue(
                session,
                person_id=person,
                kind="reminder",
                dedupe_key="a",
                intent=Intent.plain("a"),
                now=clock(),
            )
            raise RuntimeError("rolled back")
        assert woken == []
        put(sanad, clock, person, "b")
        assert woken == ["woken"]
        counts(sanad)  # reading wakes nobody
        assert woken == ["woken"]
    finally:
        stop()


class PaceClock:
    """Seconds that pass only when the pace sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_after_a_flood_wait_sending_resumes_at_the_steady_rate() -> None:
    time = PaceClock()
    pace = Pace(30, 1.0, time, time.sleep, burst=5)
    for _ in range(5):
        await pace.acquire()
    pace.pause(3)
    granted = []
    for _ in range(10):
        await pace.acquire()
        granted.append(time.now)
    assert granted[0] >= 1003  # nothing before the wait is over ...
    gaps = [later - earlier for earlier, later in zip(granted, granted[1:], strict=False)]
    assert min(gaps) >= 1 / 30 - 1e-9  # ... and no burst after it


async def test_no_second_holds_more_than_the_limit_even_with_a_burst() -> None:
    time = PaceClock()
    pace = Pace(30, 1.0, time, time.sleep, burst=10)
    granted = []
    for n in range(100):
        await pace.acquire()
        granted.append(time.now)
        pace.done(("telegram", str(n)))  # answered at once
    assert max(sum(1 for t in granted if start <= t < start + 1) for start in granted) <= 30


async def test_replies_and_outbox_messages_share_the_spacing_of_a_chat() -> None:
    time = PaceClock()
    pace = Pace(30, 1.0, time, time.sleep)
    chat = ("telegram", "5001")
    pace.done(chat, outbox=True)  # an outbox message reached the chat ...
    start = time.now
    await pace.reply_turn(chat)  # ... so a reply waits its second
    assert time.now - start >= 1.0
    pace.done(chat, outbox=False)
    start = time.now
    await pace.wait_chat(chat)  # and the next outbox message waits after the reply
    assert time.now - start >= 1.0
    start = time.now
    await pace.reply_turn(chat)  # a reply after a reply goes at the person's pace
    assert time.now == start
