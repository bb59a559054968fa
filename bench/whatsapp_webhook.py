"""Signed WhatsApp events vs Telegram updates through one `python -m bot webhook` process.

    python -m bench.whatsapp_webhook [--people 20] [--paced-people 60] [--seconds 12]
        [--turn 2] [--paced-turn 0.5] [--database URL]

One webhook process serves both channels (`POST /telegram`, `POST /whatsapp`), without the
scheduler and sender. This process plays both platforms: the fake Bot API and the fake Cloud
API answer the bot's replies over HTTP (their limits raised out of the way: this measures the
webhook, not the platforms' rates), and the bench posts the events itself: Telegram updates
with the secret header, WhatsApp notifications signed with the app secret.

The same registered workers (English) on each channel repeat the same two messages, "/menu"
(a reply with options: an inline keyboard, a WhatsApp list) and "/help" (a long text). A
request's time is the POST's round trip: both webhooks answer after the event is committed
and its replies sent. Loads, one channel at a time:

* closed: every worker (`--people`) posts its next message as soon as the previous one was
  answered;
* paced: every worker (`--paced-people`, more of them: a p95 needs samples) waits 0.5 to
  1.5 s after each answer (1 s on average, drawn: not in step with the channels' turns), their
  first messages spread over the first second (started at once, they would stay in step:
  bursts of simultaneous messages, not a paced load).

The channels take turns of `--turn` seconds (Telegram, WhatsApp, Telegram, ...; paced:
`--paced-turn`, shorter, as few messages are in flight), the same workers going on: a change
in the shared machine's other load falls on both. A turn ends once its messages in flight were
answered (none is posted meanwhile), so that its time and the webhook's CPU are its channel's
alone.

Printed: messages/s, p50 and p95 per channel and load, the samples, the webhook process's CPU
milliseconds per message (the A/B figure on a busy machine), and the ratios WhatsApp/Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import select

from bench.idle import cpu_seconds
from bot.app import assemble
from bot.settings import Settings
from storage.db import transaction
from storage.deliveries import seen_inbound
from storage.models import Organization, Person
from storage.network import apply_network, read_network
from storage.types import utcnow
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import serving
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ROOT / "examples" / "network.yaml"
TOKEN = "123456:BENCH-never-logged"
SECRET = "bench-webhook-SECRET"
WA_TOKEN = "EAAG-bench-never-logged"
WA_SECRET = "bench-app-secret"
MESSAGES = ("/menu", "/help")
FIRST_CHAT = 7000
FIRST_WA = 97336000000


@dataclass
class Figures:
    count: int
    seconds: float
    latencies: list[float]
    cpu: float = 0.0  # the webhook process's CPU seconds meanwhile

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_ms(self) -> float:
        """The webhook process's CPU milliseconds per message."""
        return self.cpu * 1000 / self.count

    def percentile(self, q: int) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))] * 1000


def prepare(database_url: str, data_dir: Path, people: int) -> None:
    """The example network and `people` workers on each channel."""
    settings = Settings(_env_file=None, database_url=database_url, data_dir=data_dir)
    sanad = assemble(settings)
    with transaction(sanad.engine) as session:
        apply_network(session, read_network(NETWORK))
        organization = session.exec(
            select(Organization).where(Organization.key == "bh_rural_girls")
        ).one()
        assert organization.id is not None
        for n in range(people):
            for channel, address in (
                ("telegram", str(FIRST_CHAT + n)),
                ("whatsapp", str(FIRST_WA + n)),
            ):
                session.add(
                    Person(
                        channel=channel,
                        address=address,
                        display_name=f"Worker {n}",
                        role="worker",
                        language="en",
                        organization_id=organization.id,
                    )
                )
            seen_inbound(session, "whatsapp", str(FIRST_WA + n), utcnow())
    sanad.close()


Post = Callable[[httpx.AsyncClient, int, str], Awaitable[int]]


def telegram_poster(api: FakeBotApi) -> Post:
    async def post(client: httpx.AsyncClient, n: int, text: str) -> int:
        update = api.user(FIRST_CHAT + n, f"Worker {n}", language_code="en").text(text)
        api._pending.clear()  # nobody polls: the bench posts each update itself
        answer = await client.post(
            "/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        return answer.status_code

    return post


def whatsapp_poster(api: FakeCloudApi) -> Post:
    async def post(client: httpx.AsyncClient, n: int, text: str) -> int:
        api.user(str(FIRST_WA + n), f"Worker {n}").text(text)
        body = api.queue.pop().body
        headers = {"X-Hub-Signature-256": api.signature(body), "Content-Type": "application/json"}
        answer = await client.post("/whatsapp", content=body, headers=headers)
        return answer.status_code

    return post


async def load(
    root: str,
    posters: dict[str, Post],
    people: int,
    seconds: float,
    pause: float,
    turn: float,
    pid: int,
) -> dict[str, Figures]:
    """`people` workers posting for `seconds` a channel, the channels taking turns of `turn`
    seconds: at the end of a turn no new message is posted until those in flight were
    answered, so that each turn's time and the webhook's CPU are its channel's alone."""
    figures = {name: Figures(0, 0.0, []) for name in posters}
    current = next(iter(posters))
    open_ = asyncio.Event()
    quiet = asyncio.Event()
    in_flight = failures = 0
    done = False

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        nonlocal failures, in_flight
        step = 0
        drawn = random.Random(n)
        await asyncio.sleep(pause * n / people)  # paced: spread over the first pause
        while True:
            await open_.wait()
            if done:
                return
            if not open_.is_set():  # the turn ended before this worker's wake-up came
                continue
            name, in_flight = current, in_flight + 1
            quiet.clear()
            started = time.perf_counter()
            status = await posters[name](client, n, MESSAGES[step % 2])
            figures[name].latencies.append(time.perf_counter() - started)
            in_flight -= 1
            if not in_flight:
                quiet.set()
            failures += status != 200
            step += 1
            if pause:  # about `pause` on average: not in step with the turns
                await asyncio.sleep(pause * drawn.uniform(0.5, 1.5))

    async def turns() -> None:
        nonlocal current, done
        names = list(posters)
        for number in range(round(seconds / turn) * len(names)):
            current = names[number % len(names)]
            began, cpu = time.perf_counter(), cpu_seconds(pid)
            open_.set()
            await asyncio.sleep(turn)
            open_.clear()
            if in_flight:
                await quiet.wait()
            figures[current].seconds += time.perf_counter() - began
            figures[current].cpu += cpu_seconds(pid) - cpu
        done = True
        open_.set()

    limits = httpx.Limits(max_connections=people + 4)
    async with httpx.AsyncClient(base_url=root, timeout=60, limits=limits) as client:
        await asyncio.gather(turns(), *(worker(n, client) for n in range(people)))
    if failures:
        raise RuntimeError(f"{failures} requests were not answered 200")
    for result in figures.values():
        result.count = len(result.latencies)
    return figures


@contextlib.asynccontextmanager
async def webhook_process(
    env: dict[str, str], port: int, log: Path
) -> AsyncIterator[tuple[str, int]]:
    """The webhook process, serving: its root URL and process id."""
    root = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "webhook",
            "--without-worker",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(600):
                    if process.returncode is not None:
                        raise RuntimeError(log.read_text()[-2000:])
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{root}/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            yield root, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            await process.wait()


def forget(telegram: FakeBotApi, whatsapp: FakeCloudApi) -> None:
    """Drop what the fakes recorded: kept, the replies of a run grow this process's heap, and
    its collections of the oldest generation (which walk all of it) then stall both fakes and
    the workers (tens of milliseconds in a paced load's p95)."""
    telegram.clear()
    whatsapp.sent.clear()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Run:
    people: int  # closed load
    paced_people: int
    seconds: float  # each load, each channel
    turn: float  # seconds, closed load
    paced_turn: float
    database_url: str | None


async def main(run: Run) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = run.database_url or f"sqlite:///{folder}/sanad.db"
        prepare(url, Path(folder) / "data", max(run.people, run.paced_people))
        telegram = FakeBotApi()
        whatsapp = FakeCloudApi(token=WA_TOKEN, app_secret=WA_SECRET)
        whatsapp.messages_per_second = 1e9
        whatsapp.pair_burst = 10**9
        whatsapp.statuses = False
        async with serving(telegram) as bot_api, serving_cloud(whatsapp) as graph:
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WHATSAPP_"))
            }
            env |= {
                "PYTHONPATH": str(ROOT),
                "DATABASE_URL": url,
                "DATA_DIR": f"{folder}/data",
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_BASE_URL": bot_api,
                "TELEGRAM_WEBHOOK_SECRET": SECRET,
                "WHATSAPP_TOKEN": WA_TOKEN,
                "WHATSAPP_PHONE_NUMBER_ID": whatsapp.phone_number_id,
                "WHATSAPP_APP_SECRET": WA_SECRET,
                "WHATSAPP_VERIFY_TOKEN": "bench",
                "WHATSAPP_BASE_URL": graph,
                "LOG_FORMAT": "text",
            }
            log = Path(folder) / "webhook.log"
            async with webhook_process(env, free_port(), log) as (root, pid):
                posters = {
                    "telegram": telegram_poster(telegram),
                    "whatsapp": whatsapp_poster(whatsapp),
                }
                await load(root, posters, run.paced_people, 2.0, 0.0, 2.0, pid)  # warm-up
                forget(telegram, whatsapp)
                gc.freeze()  # what this process keeps for good: no collection walks it again
                results: dict[tuple[str, str], Figures] = {}
                loads = (
                    ("closed", run.people, 0.0, run.turn),
                    ("paced 1 s", run.paced_people, 1.0, run.paced_turn),
                )
                for label, people, pause, turn in loads:
                    figures = await load(root, posters, people, run.seconds, pause, turn, pid)
                    forget(telegram, whatsapp)
                    results |= {(label, name): each for name, each in figures.items()}
            errors = sum(" ERROR " in line for line in log.read_text(errors="replace").splitlines())
        refused = len(whatsapp.refused)
    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(
        f"closed: {run.people} workers a channel, paced: {run.paced_people}; {run.seconds:g} s "
        f"a load and channel in turns of {run.turn:g} s (paced: {run.paced_turn:g} s); "
        f"{database}, one webhook process"
    )
    print(
        f"{'load':<10} {'channel':<9} {'msg/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'samples':>8} "
        f"{'CPU ms/msg':>11}"
    )
    for (label, name), each in results.items():
        print(
            f"{label:<10} {name:<9} {each.rate:8.1f} {each.percentile(50):8.1f} "
            f"{each.percentile(95):8.1f} {each.count:8d} {each.cpu_ms:11.2f}"
        )
    for label in ("closed", "paced 1 s"):
        tg, wa = results[(label, "telegram")], results[(label, "whatsapp")]
        print(
            f"{label}: throughput ratio WhatsApp/Telegram {wa.rate / tg.rate:.2f}, "
            f"p95 ratio {wa.percentile(95) / tg.percentile(95):.2f}, "
            f"CPU per message ratio {wa.cpu_ms / tg.cpu_ms:.2f}"
        )
    print(f"errors logged: {errors}; messages the fake Cloud API refused: {refused}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20, help="closed load")
    parser.add_argument("--paced-people", type=int, default=60, help="paced load")
    parser.add_argument("--seconds", type=float, default=12.0, help="a load and channel")
    parser.add_argument("--turn", type=float, default=2.0, help="seconds of a channel's turn")
    parser.add_argument("--paced-turn", type=float, default=0.5, help="the same, paced")
    parser.add_argument("--database", default=None, help="a PostgreSQL URL; default SQLite")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            Run(
                arguments.people,
                arguments.paced_people,
                arguments.seconds,
                arguments.turn,
                arguments.paced_turn,
                arguments.database,
            )
        )
    )
