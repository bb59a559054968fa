"""Crash drill: Sanad's processes are killed with SIGKILL at random moments while 100 field
workers fill the recycling form and a broadcast goes out, and started again at once.

On SQLite one process does everything (`python -m bot run`: polling, scheduler, sender); on
PostgreSQL two web processes (`python -m bot webhook --without-worker`, updates posted to them
in turn as by a load balancer) and a worker (`python -m bot worker`). Telegram is the fake Bot
API served over HTTP; it keeps an update until polling confirms it or a webhook answers 2xx.

The workers behave as people do: they answer whatever the bot last asked; when the bot stays
silent they send their last message again. Afterwards:

* every report a worker confirmed is stored exactly once, with the values the worker typed,
  and none was replaced (a replacement would mean a report stored twice);
* every conversation got to its end: no draft is left, so each one went on from its question;
* every update Telegram holds was applied once;
* neither the bot token nor the webhook secret appears in any process's log;
* each recipient got the broadcast once, except messages in flight to Telegram at a kill:
  those are sent again (Telegram has no idempotency key, so whether they arrived cannot be
  known; re-sending favours "nothing lost"), at most the sender's concurrency per kill, and
  the broadcast's report counts them.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from sqlmodel import col, select

from bench.common import partner_network
from bench.workers import typed_numbers
from bot.app import Sanad, assemble
from bot.settings import Settings
from monitoring.monitor import Monitor
from outbox.intents import reply_for
from outbox.sender import concurrency_for
from storage import broadcasts
from storage.broadcasts import Audience
from storage.db import transaction
from storage.models import (
    Conversation,
    Organization,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    Report,
    ReportChange,
)
from storage.network import apply_network
from storage.types import utcnow
from tests.fakes.telegram_bot_api import FakeBotApi, SentMessage
from tests.fakes.telegram_bot_server import pushing_webhooks, serving
from tests.harness import plain

WORKERS = 100
ONLOOKERS = 300  # more people for the broadcast, so that it is still going when kills come
FIRST_CHAT = 700_000
TOKEN = "123456:CRASH-DRILL"
SECRET = "crash-drill-secret"
# Seconds without an answer before a worker sends its last message again: longer than a
# restart with its backlog takes, so that what is sent again is a message whose reply was
# lost, not one whose reply is late. A typed answer sent again after its reply merely came
# late is taken for the next question: the bot cannot tell it apart. With two CPU-bound
# processes beside the drill a start takes 5-10 s, and a kill soon after a restart can come
# before the backlog is through, so a reply may be 30 s late (seen): 60 s.
SILENCE = 60.0
READ_FOR = 0.3  # seconds a worker reads; what arrives meanwhile is read too
# The drill takes as long as the machine needs (a loaded one is slow, not wrong); it fails
# when nothing moves: no message sent by the bot for STALL seconds (a monitoring tick, which
# reports the broadcast, comes every 60 s).
STALL = 150.0
KILLS = 6
KILL_EVERY = (1.0, 4.0)  # seconds from a restart being at work to the next kill, at random
READY = ("polling for updates", "webhook ready on", "scheduler and sender started")
DOWN_FOR = 0.3  # seconds a killed process stays down
BROADCAST = "Crash drill announcement"
QUESTION = re.compile(r"\((\d+) of 9\)")
SAVED = re.compile(r"Saved\. .*REC-\d+")


# --- the network and the people ------------------------------------------------------------


def prepare(sanad: Sanad) -> int:
    """An association per worker, the workers and onlookers registered, an admin; the
    broadcast to all of them created (its messages wait in the outbox). Returns its id."""
    spec = partner_network("drill", WORKERS)
    now = utcnow()
    with transaction(sanad.engine) as session:
        apply_network(session, spec)
        session.flush()
        orgs = {o.key: o.id for o in session.exec(select(Organization)).all()}
        people = [
            Person(
                channel="telegram",
                address=str(FIRST_CHAT + i),
                display_name=f"Worker {i}",
                language="en",
                role="worker",
                organization_id=orgs[f"drill_{i % WORKERS}"],
                created_at=now,
            )
            for i in range(WORKERS + ONLOOKERS)
        ]
        admin = Person(
            channel="telegram",
            address=str(FIRST_CHAT - 1),
            display_name="Admin",
            language="en",
            role="admin",
            organization_id=orgs["drill_network"],
            created_at=now,
        )
        session.add_all([*people, admin])
        session.flush()
        assert admin.id is not None
        broadcast = broadcasts.create(
            session,
            created_by=admin.id,
            texts={"*": BROADCAST},
            photo=None,
            audience=Audience(roles=["worker"]),
            now=now,
        )
        assert broadcast.id is not None
        return broadcast.id


def expected_answers(worker: int, report: int) -> list[str]:
    """What worker `worker` types for questions 2..8 of report `report` (as people type)."""
    return typed_numbers(worker, report)


def stored_values(worker: int, report: int) -> dict[str, float]:
    typed = [float(value.removesuffix(" kg")) for value in expected_answers(worker, report)]
    fields = [
        "paper_kg",
        "aluminium_kg",
        "plastic_kg",
        "sold_kg",
        "revenue",
        "paid_to_women",
        "women_working",
    ]
    return dict(zip(fields, typed, strict=True))


# --- a field worker ------------------------------------------------------------------------


@dataclass
class Worker:
    number: int
    api: FakeBotApi
    todo: list[int] = field(default_factory=lambda: [0, 1])  # reports (weeks) left
    scanned: int = 0  # how much of the api's sent messages this worker has looked at
    sent: int = 0  # updates
    repeats: int = 0
    last: tuple[str, str, SentMessage | None] | None = None

    @property
    def chat(self) -> int:
        return FIRST_CHAT + self.number

    def says(self, text: str) -> None:
        self.last = ("text", text, None)
        self.sent += 1
        self.api.user(self.chat, language_code="en").text(text)

    def taps(self, message: SentMessage, label: str, nth: int = 0) -> None:
        """Press the `nth` button whose label starts with `label`."""
        matching = [
            data
            for text, data in self.api.buttons(message)
            if plain(text).lower().startswith(label.lower())
        ]
        if len(matching) > nth:
            self.last = ("press", matching[nth], message)
            self.sent += 1
            self.api.user(self.chat, language_code="en").press(matching[nth], message)
            return
        raise AssertionError(
            f"worker {self.number}: no button {label!r} in "
            f"{self.api.buttons(message)} of {plain(message.text or '')!r}"
        )

    def again(self) -> None:
        """The bot stays silent: send the last message again, as a person would."""
        self.repeats += 1
        if self.last is None:
            self.says("/recycling")
        elif self.last[0] == "text":
            self.says(self.last[1])
        else:
            message = self.last[2]
            assert message is not None
            self.sent += 1
            self.api.user(self.chat, language_code="en").press(self.last[1], message)

    async def run(self) -> None:
        self.says("/recycling")
        while self.todo:
            messages = await self.next_messages()
            if not messages:
                self.again()
            else:  # the latest message that asks for something; explanations are read only
                any(self.act(message) for message in reversed(messages))

    async def next_messages(self) -> list[SentMessage]:
        """What the bot sent since last time (broadcasts aside), or nothing after SILENCE
        seconds of nothing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SILENCE
        while not (new := self.collect()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self.api._sent_signal.wait(remaining)
        # A person reads before answering: what else arrives meanwhile (the rest of the same
        # reply, the reply to a message sent twice) is read too.
        while more := await self.more_within(READ_FOR):
            new += more
        return new

    async def more_within(self, seconds: float) -> list[SentMessage]:
        await asyncio.sleep(seconds)
        return self.collect()

    def collect(self) -> list[SentMessage]:
        """The bot's messages to this worker since the last look."""
        sent = self.api.sent
        mine = [
            m
            for m in sent[self.scanned :]
            if m.chat_id == self.chat
            and m.method == "sendMessage"
            and BROADCAST not in (m.text or "")
        ]
        self.scanned = len(sent)
        return mine

    def act(self, message: SentMessage) -> bool:
        """Do what `message` asks for; False if it asks for nothing."""
        text = plain(message.text or "")
        report = self.todo[0]
        question = QUESTION.search(text)
        if "already exists" in text:
            self.taps(message, "No")  # my own report, saved before its answer got lost
        elif SAVED.search(text) or "stays as it was" in text:
            self.todo.pop(0)  # saved (or it had been, before a reply was lost)
            if self.todo:
                self.says("/recycling")
        elif "unfinished report" in text:
            self.taps(message, "Continue")
        elif "For which week?" in text:
            self.taps(message, "week of", nth=report)  # report 0: this week, 1: the one before
        elif "Please check your report" in text:
            self.taps(message, "Confirm")
        elif question and question.group(1) == "9":
            self.taps(message, "Skip")
        elif question:
            self.says(expected_answers(self.number, report)[int(question.group(1)) - 2])
        elif "What would you like to do?" in text:
            self.says("/recycling")
        else:  # a refused old button, an explanation: wait for what follows
            return False
        return True


# --- the processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process:
    """One `python -m bot ...` process that can be killed and started again."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.env = name, args, env
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None
        self.started_at = 0  # where this run's lines begin in the log
        self.kills = 0

    async def ready(self) -> None:
        """Wait until this run says it is at work (a start takes seconds: imports, migrations;
        a kill before that would test less than it should), or fail if it ended."""
        while not any(marker in self.since_start() for marker in READY):
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} ended:\n{self.since_start()[-3000:]}")
            await asyncio.sleep(0.1)

    def since_start(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self.started_at)
            return log.read().decode(errors="replace")

    def start(self) -> None:
        self.log = self.log_path.open("ab")
        self.started_at = self.log.tell()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "bot", *self.args],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        assert self.popen is not None and self.log is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self.log.close()
        self.kills += 1

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.log is not None:
            self.log.close()


async def kill_at_random(processes: list[Process], chance: random.Random) -> None:
    """KILLS times: wait a little, SIGKILL one of the processes, start it again."""
    for _ in range(KILLS):
        await asyncio.gather(*(process.ready() for process in processes))
        await asyncio.sleep(chance.uniform(*KILL_EVERY))
        victim = chance.choice(processes)
        victim.kill()
        await asyncio.sleep(DOWN_FOR)
        victim.start()


# --- the drill -----------------------------------------------------------------------------


async def drill(sanad: Sanad, tmp_path: Path, database_url: str) -> None:
    broadcast_id = prepare(sanad)
    api = FakeBotApi()
    workers = [Worker(i, api) for i in range(WORKERS)]
    chance = random.Random(20261129)
    async with serving(api) as base_url:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": base_url,
            "DATABASE_URL": database_url,
            "DATA_DIR": str(tmp_path / "data"),
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "OUTBOX_CLAIM_TIMEOUT": "3",
            "PYTHONUNBUFFERED": "1",
        }
        logs = tmp_path / "logs"
        logs.mkdir()
        if database_url.startswith("sqlite"):
            processes = [Process("bot", ["run"], env, logs)]
            urls: list[str] = []
        else:
            ports = [free_port(), free_port()]
            processes = [
                Process(f"web{n}", ["webhook", "--port", str(port), "--without-worker"], env, logs)
                for n, port in enumerate(ports, 1)
            ]
            processes.append(Process("worker", ["worker"], env, logs))
            urls = [f"http://127.0.0.1:{port}/telegram" for port in ports]
        for process in processes:
            process.start()
        try:
            async with pushing_webhooks(api, urls, SECRET) if urls else _nothing():
                killer = asyncio.create_task(kill_at_random(processes, chance))
                everyone = asyncio.gather(*(w.run() for w in workers))
                try:
                    await _until(everyone.done, api)
                except TimeoutError:
                    everyone.cancel()
                    raise AssertionError(stuck(api, workers, processes)) from None
                everyone.result()
                await _until(lambda: _broadcast_done(sanad, broadcast_id), api)
                await killer
                await _until(lambda: not api.pending_updates, api)
                await _until(lambda: _reported(api, broadcast_id), api)
        finally:
            for process in processes:
                process.stop()
        kills = sum(process.kills for process in processes)
        check(sanad, api, workers, broadcast_id, kills)
        for process in processes:  # secrets never reach the logs, whatever happened
            logged = process.log_path.read_text(errors="replace")
            assert process.name == "worker" or "applied (person" in logged
            assert TOKEN.split(":")[1] not in logged and SECRET not in logged


def stuck(api: FakeBotApi, workers: list[Worker], processes: list[Process]) -> str:
    """What the workers still waiting last saw, and the end of each process's log."""
    lines = []
    for process in processes:
        tail = process.log_path.read_text(errors="replace").splitlines()[-25:]
        lines += [f"--- {process.name} ({process.kills} kills)", *tail]
    for worker in workers[:10]:
        if worker.todo:
            last = [plain(m.text or "")[-80:] for m in api.messages_to(worker.chat)][-2:]
            lines.append(
                f"worker {worker.number}: todo {worker.todo}, last "
                f"{worker.last[:2] if worker.last else None}, saw {last}"
            )
    lines.append(f"pending updates: {len(api.pending_updates)}")
    return "\n".join(lines)


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def _until(condition: Callable[[], bool], progress: FakeBotApi | float) -> None:
    """Wait until `condition` holds. Given the fake Telegram, fail only when the bot sent
    nothing for STALL seconds; given a number of seconds, fail after them (a target)."""
    loop = asyncio.get_running_loop()
    moved, sent = loop.time(), -1
    while not condition():
        if isinstance(progress, FakeBotApi):
            if len(progress.sent) != sent:
                moved, sent = loop.time(), len(progress.sent)
            limit = STALL
        else:
            limit = progress
        if loop.time() - moved > limit:
            raise TimeoutError(f"not reached, nothing moved for {limit:g} s: {condition}")
        await asyncio.sleep(0.2)


def _broadcast_done(sanad: Sanad, broadcast_id: int) -> bool:
    with transaction(sanad.engine) as session:
        return broadcasts.figures(session, broadcast_id).waiting == 0


def _reported(api: FakeBotApi, broadcast_id: int) -> bool:
    return any(
        f"Broadcast #{broadcast_id} is done" in plain(m.text or "")
        for m in api.messages_to(FIRST_CHAT - 1)
    )


def check(
    sanad: Sanad, api: FakeBotApi, workers: list[Worker], broadcast_id: int, kills: int
) -> None:
    with transaction(sanad.engine) as session:
        reports = session.exec(select(Report)).all()
        by_org = {o.id: o.key for o in session.exec(select(Organization)).all()}
        changes = session.exec(select(ReportChange)).all()
        drafts = [
            c.chat_key for c in session.exec(select(Conversation)).all() if c.state.get("draft")
        ]
        applied = len(session.exec(select(ProcessedUpdate.key)).all())
        figures = broadcasts.figures(session, broadcast_id)
    # Every confirmed report once, with what was typed; none stored twice or replaced.
    stored = Counter((by_org[r.organization_id], r.period) for r in reports)
    assert len(reports) == 2 * WORKERS and set(stored.values()) == {1}
    assert not changes, "no report was replaced (stored twice over itself)"
    weeks = sorted({r.period for r in reports})
    assert len(weeks) == 2
    for report in reports:
        worker = int(by_org[report.organization_id].removeprefix("drill_"))
        index = 0 if report.period == weeks[-1] else 1  # report 0 is this week's
        for name, value in stored_values(worker, index).items():
            assert float(report.answers[name]) == value, (
                f"worker {worker}, report {index}: {name} is {report.answers[name]}, typed "
                f"{value}; the bot said:\n"
                + "\n".join(
                    plain(m.text or "")[-70:].replace("\n", " | ")
                    for m in api.messages_to(FIRST_CHAT + worker)
                )
            )
    # Every conversation went on to its end.
    assert drafts == []
    # Every update the workers sent was applied (once: its id is the key), none was lost.
    assert applied == sum(w.sent for w in workers)
    # The broadcast: once each, but for in-flight messages at a kill, which are counted.
    received = Counter(
        m.chat_id for m in api.sent if m.method == "sendMessage" and BROADCAST in (m.text or "")
    )
    recipients = WORKERS + ONLOOKERS
    assert set(received) == {FIRST_CHAT + i for i in range(recipients)}
    twice = sum(count - 1 for count in received.values())
    assert figures.delivered == recipients and figures.waiting == 0
    concurrency = concurrency_for([30.0])  # the bot's sender, at Telegram's 30 a second
    assert twice <= figures.resent <= concurrency * kills
    report = next(
        plain(m.text or "")
        for m in api.messages_to(FIRST_CHAT - 1)
        if f"Broadcast #{broadcast_id} is done" in plain(m.text or "")
    )
    assert f"Sent again after a lost answer or a restart: {figures.resent}" in report
    print(
        f"\ncrash drill: {kills} kills, {sum(w.repeats for w in workers)} messages sent "
        f"again by workers, {figures.resent} broadcast messages re-sent, {twice} received "
        f"twice, {len(reports)} reports, {applied} updates applied"
    )


async def test_kill_9_at_random_loses_nothing_and_stores_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        telegram_bot_token=TOKEN,
        database_url=database_url,
        data_dir=tmp_path / "data",
    )
    sanad = assemble(settings)
    try:
        await drill(sanad, tmp_path, database_url)
    finally:
        sanad.close()


# --- several workers: kill -9 of the lease holder -------------------------------------------

LEASE_HELD = "scheduler lease held"
TAKEN_BACK_WITHIN = 30.0  # seconds: a dead worker's claims go out again within this


async def test_kill_9_of_the_lease_holder_hands_over_its_claims_and_its_schedule(
    database_url: str, tmp_path: Path
) -> None:
    """Two `python -m bot worker` processes on PostgreSQL: one holds the scheduler lease, both
    send the broadcast. The holder is killed while it holds claims: the other worker sends
    them (well before OUTBOX_CLAIM_TIMEOUT), takes the lease and runs the schedule; nothing
    scheduled is enqueued twice or missed."""
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers share a PostgreSQL database")
    settings = Settings(
        _env_file=None, telegram_bot_token=TOKEN, database_url=database_url, data_dir=tmp_path
    )
    sanad = assemble(settings)
    try:
        broadcast_id = prepare(sanad)
        api = FakeBotApi()
        async with serving(api) as base_url:
            env = {
                **os.environ,
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_BASE_URL": base_url,
                "DATABASE_URL": database_url,
                "DATA_DIR": str(tmp_path / "data"),
                "PYTHONUNBUFFERED": "1",
            }
            logs = tmp_path / "logs"
            logs.mkdir()
            workers = [Process(f"worker{n}", ["worker"], env, logs) for n in (1, 2)]
            for process in workers:
                process.start()
            try:
                await asyncio.gather(*(process.ready() for process in workers))
                await _until(lambda: any(LEASE_HELD in p.since_start() for p in workers), api)
                [holder] = [p for p in workers if LEASE_HELD in p.since_start()]
                [other] = [p for p in workers if p is not holder]
                await _until(lambda: _claimed_by_both(sanad), api)
                holder.kill()
                left = _claimed(sanad)  # the dead holder's claims, and the other's
                assert left
                await _until(lambda: _all_sent(sanad, left), TAKEN_BACK_WITHIN)
                await _until(lambda: LEASE_HELD in other.since_start(), api)
                await _until(lambda: _broadcast_done(sanad, broadcast_id), api)
                await _until(lambda: _reported(api, broadcast_id), api)
            finally:
                for process in workers:
                    process.stop()
        monitor = Monitor(
            sanad.engine, sanad.dispatcher.services.forms, settings.charts_dir, utcnow
        )
        assert monitor.tick() == 0, "the schedule the dead holder ran is not missed ..."
        with transaction(sanad.engine) as session:
            scheduled = session.exec(
                select(OutboxMessage).where(col(OutboxMessage.kind) != "broadcast")
            ).all()
            figures = broadcasts.figures(session, broadcast_id)
        for message in scheduled:  # ... nor sent twice but for a claim in flight at the kill
            opening = plain(reply_for(message, None).text).splitlines()[0]
            copies = api.messages_to(_chat(sanad, message.person_id))
            assert (
                sum(plain(m.text or "").startswith(opening) for m in copies) <= 1 + message.resent
            )
        received = Counter(
            m.chat_id for m in api.sent if m.method == "sendMessage" and BROADCAST in (m.text or "")
        )
        assert set(received) == {FIRST_CHAT + i for i in range(WORKERS + ONLOOKERS)}
        twice = sum(count - 1 for count in received.values())
        assert twice <= figures.resent
        print(
            f"\nlease drill: {len(left)} claims held at the kill sent by the other worker; "
            f"{figures.resent} broadcast messages re-sent, {twice} received twice"
        )
    finally:
        sanad.close()


def _claimed(sanad: Sanad) -> set[int]:
    with transaction(sanad.engine) as session:
        return {
            m.id
            for m in session.exec(
                select(OutboxMessage).where(OutboxMessage.status == "sending")
            ).all()
            if m.id is not None
        }


def _claimed_by_both(sanad: Sanad) -> bool:
    """Both workers hold claims at this moment."""
    with transaction(sanad.engine) as session:
        holders = session.exec(
            select(OutboxMessage.claimed_by).where(OutboxMessage.status == "sending")
        ).all()
    return len(set(holders) - {None}) >= 2


def _all_sent(sanad: Sanad, ids: set[int]) -> bool:
    with transaction(sanad.engine) as session:
        statuses = session.exec(
            select(OutboxMessage.status).where(col(OutboxMessage.id).in_(ids))
        ).all()
    return all(status in ("sent", "blocked", "failed") for status in statuses)


def _chat(sanad: Sanad, person_id: int) -> int:
    with transaction(sanad.engine) as session:
        person = session.get(Person, person_id)
        assert person is not None
        return int(person.address)
