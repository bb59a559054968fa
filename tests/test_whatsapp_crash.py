"""kill -9 of the WhatsApp webhook process while workers report: Meta posts again what did not
get a 2xx, every event is applied once, and every confirmed report is stored once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlmodel import select

from outbox.intents import Intent
from outbox.sender import concurrency_for
from storage import outbox
from storage.db import make_engine, open_database, transaction
from storage.deliveries import seen_inbound
from storage.models import Organization, Person, Report
from storage.network import apply_network, read_network
from storage.types import utcnow
from tests.conftest import EXAMPLE_NETWORK, ROOT
from tests.fakes.whatsapp_cloud import FakeCloudApi, Sent, serving_cloud
from tests.harness import plain
from tests.test_whatsapp_cli import free_port

ORGANIZATIONS = [
    "bh_rural_girls",
    "bh_sitra_women",
    "bh_hamad_women",
    "eg_partner_1",
    "eg_partner_2",
    "lb_partner_1",
    "sd_partner_1",
    "ma_partner_1",
]
FIRST = 97338000000
NUMBERS = ("100", "20", "30", "120", "60", "45", "6")
KILLS = 3


def prepare(url: str) -> None:
    engine = open_database(url)
    with transaction(engine) as session:
        apply_network(session, read_network(EXAMPLE_NETWORK))
        for n, key in enumerate(ORGANIZATIONS):
            organization = session.exec(select(Organization).where(Organization.key == key)).one()
            assert organization.id is not None
            session.add(
                Person(
                    channel="whatsapp",
                    address=str(FIRST + n),
                    display_name=f"Worker {n}",
                    role="worker",
                    language="en",
                    organization_id=organization.id,
                )
            )
            seen_inbound(session, "whatsapp", str(FIRST + n), utcnow())
    engine.dispose()


class Webhook:
    """`python -m bot webhook` for WhatsApp, which the test kills and starts again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "webhook", "--without-worker"]
                + ["--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert self.process.poll() is None, self.log.read_text()[-3000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise TimeoutError("the webhook did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()  # a killed process is gone at once

    async def stop(self) -> None:
        """SIGTERM, waited for off the loop: the fake Cloud API serves from this loop, and the
        process may be sending it a reply."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.kill()
                raise


async def pumping(api: FakeCloudApi, stop: asyncio.Event) -> None:
    """Meta's side: post what is queued, again and again until each gets a 2xx."""
    while not stop.is_set():
        if api.queue:
            with contextlib.suppress(TimeoutError):
                await api.push(rounds=1, timeout=5.0)
            if api.queue:
                await asyncio.sleep(0.1)
        else:
            await asyncio.sleep(0.005)


def choice(message: Sent, suffix: str) -> str | None:
    return next((title for ident, title in message.choices if ident.endswith(suffix)), None)


async def report(api: FakeCloudApi, n: int) -> None:
    """One worker fills the recycling report, answering what the bot last asked; when a reply
    never comes (it was lost with the process), the worker asks for the report again."""
    wa_id = str(FIRST + n)
    user = api.user(wa_id, f"Worker {n}")
    typed = 0
    action = user.text("/recycling")
    for _ in range(200):
        seen = len(api.to(wa_id))
        for _ in range(400):  # until Meta got the 2xx for this action: the replies are out
            if any(_ids(body) & {action} for body in api.delivered):
                break
            await asyncio.sleep(0.025)
        answers = api.to(wa_id)[seen:]
        if not answers:
            action = user.text("/recycling")
            continue
        last = answers[-1]
        text = plain("\n".join(m.text for m in answers))
        if "Your reference number is REC-" in text or "It replaces the earlier report" in text:
            return
        if resume := choice(last, ":continue"):
            action = user.press(last, resume)
        elif "For which week?" in text and last.choices:
            action = user.press(last, last.choices[0][1])
        elif yes := (choice(last, ":yes") if "already exists" in text else None):
            action = user.press(last, yes)
        elif confirm := choice(last, ":confirm"):
            action = user.press(last, confirm)
        elif skip := choice(last, ":skip"):
            action = user.press(last, skip)
        elif "of 9)" in text:
            step = int(re.findall(r"\((\d) of 9\)", text)[-1])
            typed = step - 2
            action = user.text(NUMBERS[typed])
        else:
            action = user.text("/recycling")
    raise AssertionError(f"worker {n} did not finish: {api.to(wa_id)[-1].text}")


def _ids(body: dict[str, object]) -> set[str]:
    return {
        message["id"]
        for entry in body["entry"]  # type: ignore[attr-defined]
        for change in entry["changes"]
        for message in change["value"].get("messages", [])
    }


@contextlib.asynccontextmanager
async def running(webhook: Webhook) -> AsyncIterator[Webhook]:
    await webhook.start()
    try:
        yield webhook
    finally:
        await webhook.stop()


async def test_kill_minus_9_of_the_webhook_loses_and_doubles_nothing(
    database_url: str, tmp_path: Path
) -> None:
    prepare(database_url)
    api = FakeCloudApi(token="EAAG-crash", app_secret="crash-secret")
    api.statuses = False
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_"))}
    async with serving_cloud(api) as base:
        env |= {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "DATA_DIR": str(tmp_path / "data"),
            "WHATSAPP_TOKEN": api.token,
            "WHATSAPP_PHONE_NUMBER_ID": api.phone_number_id,
            "WHATSAPP_APP_SECRET": api.app_secret,
            "WHATSAPP_VERIFY_TOKEN": "crash",
            "WHATSAPP_BASE_URL": base,
        }
        webhook = Webhook(env, tmp_path / "webhook.log")
        api.webhook_url = f"{webhook.url}/whatsapp"
        stop = asyncio.Event()
        async with running(webhook):
            pump = asyncio.create_task(pumping(api, stop))
            workers = asyncio.gather(*(report(api, n) for n in range(len(ORGANIZATIONS))))
            kills = 0
            try:
                while not workers.done() and kills < KILLS:
                    await asyncio.wait({workers}, timeout=random.uniform(0.5, 1.5))
                    if workers.done():
                        break
                    webhook.kill()
                    kills += 1
                    await webhook.start()
                await asyncio.wait_for(workers, timeout=120)
            finally:
                stop.set()
                await pump
    engine = make_engine(database_url)
    with transaction(engine) as session:
        reports = session.exec(select(Report)).all()
        assert sorted(r.organization_id for r in reports) == sorted(
            {r.organization_id for r in reports}
        )  # one report per association: none stored twice
        assert len(reports) == len(ORGANIZATIONS)  # none lost
        for stored in reports:
            assert stored.answers["paper_kg"] == 100 and stored.answers["women_working"] == 6
    engine.dispose()
    assert kills >= 1
    assert any(answer != 200 for answer in api.answers)  # deliveries lost with the process ...
    assert not api.queue  # ... were posted again until taken


BROADCAST = 300


def enqueue_broadcast(url: str) -> None:
    engine = open_database(url)
    with transaction(engine) as session:
        apply_network(session, read_network(EXAMPLE_NETWORK))
        organization = session.exec(
            select(Organization).where(Organization.key == "bh_rural_girls")
        ).one()
        assert organization.id is not None
        people = [
            Person(
                channel="whatsapp",
                address=str(FIRST + n),
                role="worker",
                language="en",
                organization_id=organization.id,
            )
            for n in range(BROADCAST)
        ]
        session.add_all(people)
        session.flush()
        for person in people:
            assert person.id is not None
            seen_inbound(session, "whatsapp", person.address, utcnow())
            outbox.enqueue(
                session,
                person_id=person.id,
                kind="broadcast",
                dedupe_key=f"broadcast:1:{person.id}",
                intent=Intent.plain(
                    f"Announcement for {person.address}: the conference is 14 June."
                ),
                now=utcnow(),
                broadcast_id=1,
            )
    engine.dispose()


async def test_kill_minus_9_of_the_worker_mid_broadcast(database_url: str, tmp_path: Path) -> None:
    enqueue_broadcast(database_url)
    api = FakeCloudApi(token="EAAG-worker", app_secret="worker-secret")
    api.statuses = False
    for n in range(BROADCAST):
        api.last_inbound[str(FIRST + n)] = api.clock()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_"))}
    log = tmp_path / "worker.log"
    async with serving_cloud(api) as base:
        env |= {
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "DATA_DIR": str(tmp_path / "data"),
            "WHATSAPP_TOKEN": api.token,
            "WHATSAPP_PHONE_NUMBER_ID": api.phone_number_id,
            "WHATSAPP_APP_SECRET": api.app_secret,
            "WHATSAPP_VERIFY_TOKEN": "worker",
            "WHATSAPP_BASE_URL": base,
            "OUTBOX_CLAIM_TIMEOUT": "2",
        }

        def announcements() -> list[str]:
            return [m.to for m in api.sent if m.text.startswith("Announcement")]

        def start() -> subprocess.Popen[bytes]:
            with log.open("ab") as output:
                return subprocess.Popen(
                    [sys.executable, "-m", "bot", "worker"],
                    env=env,
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )

        worker = start()
        try:
            await api.wait_for_all(lambda m: m.text.startswith("Announcement"), 60, timeout=60)
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait)
            killed_at = len(announcements())
            worker = start()
            await api.wait_for_all(lambda m: m.text.startswith("Announcement"), BROADCAST, 120)
            engine = make_engine(database_url)
            for _ in range(200):  # the last outcomes are committed just after the sends
                with transaction(engine) as session:
                    counts = outbox.counts_by_status(session, broadcast_id=1)
                    resent = outbox.resent_total(session)
                if counts["sent"] == BROADCAST:
                    break
                await asyncio.sleep(0.05)
            engine.dispose()
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.to_thread(worker.wait, 30)
    sent = announcements()
    assert set(sent) == {str(FIRST + n) for n in range(BROADCAST)}  # nobody missed it
    assert counts["sent"] == BROADCAST
    doubled = len(sent) - BROADCAST
    in_flight = concurrency_for([80.0])  # the worker's sender, at WhatsApp's 80 a second
    assert doubled <= resent <= in_flight  # only what was in flight at the kill, and counted
    assert 60 <= killed_at < BROADCAST
    assert api.token not in log.read_text(errors="replace")
