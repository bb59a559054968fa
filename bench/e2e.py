"""Sanad against a bare python-telegram-bot echo bot, end to end over HTTP, every part in its
own process.

    python -m bench.e2e [--workers N] [--rounds R] [--paced-seconds S] [--database URL]
                        [--with-worker] [--logs DIR]

Three processes beside this one (the load driver):

* the fake Bot API (`bench.fake_bot_server`), serving two tokens, Sanad's and the echo bot's,
  and a control surface the driver uses to queue updates and read what the bots sent;
* Sanad as deployed, `python -m bot run` (long polling; `--without-worker` unless
  `--with-worker`, so that nothing but replies reaches the fake), with TELEGRAM_BASE_URL
  pointing at the fake;
* the echo bot (`bench.echo_bot`): an Application with one TypeHandler, `run_polling`,
  answering every update with one message (and a button press with answerCallbackQuery).

The driver plays `--workers` field workers (registered beforehand, each in its own
association, as `bench.workers.prepare` does) filling the recycling form with the scripts of
`bench.workers` (`sanad_report`, `echo_report`: the same eleven updates to each bot).

* closed load: each worker sends its next answer as soon as the reply to the previous one is
  complete; R rounds of one report per worker, each round the echo bot then Sanad; the ratio
  Sanad/echo (updates/s) is the median of the rounds' ratios (see `bench.workers`).
* paced load: as many fresh workers answering one second after each reply, for S seconds,
  on the echo bot (the floor this machine allows, for reference), then on Sanad; p50/p95 of
  the reply latency.

Latency is from the update being queued at the fake to the request that sends the last message
of its reply arriving there, both stamped in the fake's process. At the end: every confirmed
report stored once (one row per worker and week), every queued update applied once
(ProcessedUpdate rows). Exit 1 when that check fails, 2 when a bot answers something
unexpected or the run cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import create_engine, text

from bench.common import bench_settings, database
from bench.webhook import TOKEN, BotProcess, applied_updates, bot_env
from bench.workers import (
    FIRST_USER_ID,
    ISOLATES,
    WARMUP_WORKERS,
    Answer,
    BenchError,
    Figures,
    FinalTest,
    Outstanding,
    Probe,
    Round,
    Script,
    Worker,
    echo_final,
    echo_report,
    phase,
    prepare,
    row,
    sanad_final,
    sanad_report,
    stored_reports,
    together,
    verdict,
)
from bot.app import assemble
from bot.settings import Settings
from tests.fakes.telegram_bot_api import FakeUser, JSONDict

TARGET_RATIO = {"sqlite": 1.0, "postgresql": 0.9}
TARGET_PACED_P95_MS = 25.0
ECHO_TOKEN = "654321:ECHO-bench"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


# --- talking to the fake's process -----------------------------------------------------------


class RemoteProbe:
    """`bench.workers.Probe` for a fake in another process: the driver queues an update over
    HTTP and learns of the bot's messages from the fake's journal (`Journal.run`)."""

    def __init__(self, final: FinalTest) -> None:
        self.final = final
        self.outstanding: dict[int, Outstanding] = {}
        self.latencies: list[float] = []
        self.updates = 0
        self.stray: list[str] = []

    def reset(self) -> None:
        self.latencies = []
        self.updates = 0

    def on_message(self, message: JSONDict) -> None:
        chat_id = int(message["chat_id"])
        waiting = self.outstanding.get(chat_id)
        if waiting is None:
            self.stray.append(f"{message['method']} to {chat_id}: {message['text']!r}")
            return
        params: JSONDict = {
            "text": message["text"],
            "reply_markup": {
                "inline_keyboard": [[{"callback_data": b}] for b in message["buttons"]]
            },
            "at": message["at"],
        }
        if message["method"] == "sendMessage":
            waiting.texts.append(str(message["text"]).translate(ISOLATES))
        if self.final(message["method"], params):
            del self.outstanding[chat_id]
            waiting.done.set_result(params)

    async def exchange(self, chat_id: int, act: Callable[[], Awaitable[float]]) -> Answer:
        """Queue one update (`act`, which answers when the fake queued it) and wait for the
        complete reply to it."""
        waiting = Outstanding(0.0, asyncio.get_running_loop().create_future())
        self.outstanding[chat_id] = waiting
        queued_at = await act()
        self.updates += 1
        final = await waiting.done
        self.latencies.append(float(final["at"]) - queued_at)
        return Answer(waiting.texts, final)


class RemoteUser:
    """A worker's phone: `text` and `press` queue an update at the fake (see `Worker.says`)."""

    def __init__(self, client: httpx.AsyncClient, bot: str, user_id: int) -> None:
        self.client = client
        self.bot = bot
        self.id = user_id

    async def text(self, typed: str) -> float:
        return await self._queue({"chat": self.id, "text": typed})

    async def press(self, data: str) -> float:
        return await self._queue({"chat": self.id, "press": data})

    async def _queue(self, body: JSONDict) -> float:
        response = await self.client.post(f"/control/{self.bot}/update", json=body)
        if response.status_code != 200:
            raise BenchError(f"the fake refused {body}: {response.text}")
        return float(response.json()["at"])


async def read_journal(client: httpx.AsyncClient, probes: dict[str, RemoteProbe]) -> None:
    """Hand every message the bots send to the probe of its bot, in order, until cancelled."""
    cursor = 0
    while True:
        response = await client.get("/control/sent", params={"after": cursor, "timeout": 5})
        answer = response.json()
        for message in answer["messages"]:
            probes[message["bot"]].on_message(message)
        cursor = int(answer["next"])


async def stats(client: httpx.AsyncClient, bot: str) -> JSONDict:
    return cast(JSONDict, (await client.get(f"/control/{bot}/stats")).json())


# --- processes -------------------------------------------------------------------------------


@dataclass
class Processes:
    fake: BotProcess
    sanad: BotProcess
    echo: BotProcess
    root: str  # the fake's URL

    @property
    def all(self) -> list[BotProcess]:
        return [self.fake, self.sanad, self.echo]


async def start(command: list[str], env: dict[str, str], log: Path) -> BotProcess:
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *command,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    return BotProcess(process, log)


async def stop(bot: BotProcess) -> None:
    if bot.process.returncode is None:
        bot.process.terminate()
    try:
        await asyncio.wait_for(bot.process.wait(), 15)
    except TimeoutError:
        bot.process.kill()
        await bot.process.wait()


async def fake_root(fake: BotProcess) -> str:
    """The fake's URL, from the line it prints once it serves."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if fake.process.returncode is not None:
            raise BenchError(f"the fake Bot API ended:\n{fake.tail()}")
        for line in fake.log.read_text(errors="replace").splitlines():
            if line.startswith("listening "):
                return line.removeprefix("listening ").strip()
        await asyncio.sleep(0.05)
    raise BenchError(f"the fake Bot API did not start:\n{fake.tail()}")


@contextlib.asynccontextmanager
async def processes(
    settings: Settings, args: argparse.Namespace, logs: Path
) -> AsyncIterator[Processes]:
    """The fake, then Sanad and the echo bot against it; all stopped at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env["PYTHONUNBUFFERED"] = "1"
    started: list[BotProcess] = []
    try:
        fake = await start(
            ["bench.fake_bot_server", "--bot", f"sanad={TOKEN}", "--bot", f"echo={ECHO_TOKEN}"],
            env,
            logs / "fake.log",
        )
        started.append(fake)
        root = await fake_root(fake)
        base_url = f"{root}/bot"
        run = ["bot", "run"] if args.with_worker else ["bot", "run", "--without-worker"]
        sanad = await start(run, bot_env(settings, base_url), logs / "sanad.log")
        started.append(sanad)
        echo_env = dict(env, TELEGRAM_BOT_TOKEN=ECHO_TOKEN, TELEGRAM_BASE_URL=base_url)
        echo = await start(["bench.echo_bot"], echo_env, logs / "echo.log")
        started.append(echo)
        yield Processes(fake, sanad, echo, root)
    finally:
        for bot in reversed(started):
            await stop(bot)


async def wait_polling(client: httpx.AsyncClient, bots: dict[str, BotProcess]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for name, bot in bots.items():
        while (await stats(client, name))["polls"] < 1:
            if bot.process.returncode is not None:
                raise BenchError(f"{name} ended ({bot.process.returncode}):\n{bot.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not poll in {START_TIMEOUT:g} s:\n{bot.tail()}")
            await asyncio.sleep(0.1)


async def settle(probe: RemoteProbe, quiet: float = 5.0, limit: float = 120.0) -> int:
    """With the scheduler running, what it sends at start (reminders due today to the
    registered workers) arrives with no update outstanding: wait until nothing has come for
    `quiet` seconds and count it, so that only what comes later is a stray."""
    deadline = time.monotonic() + limit
    seen, since = -1, time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise BenchError(f"Sanad's background still sending after {limit:g} s")
        if len(probe.stray) != seen:
            seen, since = len(probe.stray), time.monotonic()
        await asyncio.sleep(0.2)
    background = len(probe.stray)
    probe.stray.clear()
    return background


# --- the loads -------------------------------------------------------------------------------


def make_workers(
    client: httpx.AsyncClient,
    bot: str,
    probe: RemoteProbe,
    first: int,
    count: int,
    *,
    think: float = 0.0,
    deadline: float | None = None,
) -> list[Worker]:
    return [
        Worker(
            first + i,
            cast(FakeUser, RemoteUser(client, bot, FIRST_USER_ID + first + i)),
            cast(Probe, probe),
            think,
            deadline,
        )
        for i in range(count)
    ]


@dataclass
class Cpu:
    """CPU seconds each process spent in the phases of one bot."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, spent: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + spent


async def measured(
    name: str,
    probe: RemoteProbe,
    workers: list[Worker],
    script: Script,
    reports: int | None,
    running: Processes,
    cpu: Cpu,
    **kwargs: Any,
) -> Figures:
    before = {p.log.stem: p.cpu_seconds() for p in running.all}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = await phase(name, cast(Probe, probe), workers, script, reports, **kwargs)
    after = resource.getrusage(resource.RUSAGE_SELF)
    for process in running.all:
        cpu.add(process.log.stem, process.cpu_seconds() - before[process.log.stem])
    cpu.add("driver", after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
    return figures


class CommitProbe:
    """The database's own commit time while Sanad's paced load runs (PostgreSQL): a
    one-row insert committed every 20 ms on a connection of its own, for reference, as the
    echo bot is for HTTP. A commit waits for the write-ahead log to reach the disk, and a
    stall of the disk holds up every reply of a bot that only answers what it stored."""

    INTERVAL = 0.02

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-probe", daemon=True)

    def __enter__(self) -> CommitProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                connection.execute(text("CREATE TEMPORARY TABLE commit_probe (x integer)"))
                connection.commit()
                while not self._stop.wait(self.INTERVAL):
                    started = time.perf_counter()
                    connection.execute(text("INSERT INTO commit_probe VALUES (1)"))
                    connection.commit()
                    self.latencies.append(time.perf_counter() - started)
        finally:
            engine.dispose()

    def summary(self) -> str:
        figures = Figures("commits", 0, 0, 0, 1.0, self.latencies)
        slow = sum(latency > TARGET_PACED_P95_MS / 1000 for latency in self.latencies)
        worst = max(self.latencies, default=0.0) * 1000
        return (
            f"{len(self.latencies)} commits, p50 {figures.percentile(50):.1f} ms, "
            f"p95 {figures.percentile(95):.1f} ms, longest {worst:.1f} ms, "
            f"{slow} over {TARGET_PACED_P95_MS:g} ms"
        )


@dataclass
class E2eFigures:
    rounds: list[Round]
    echo_paced: Figures
    paced: Figures
    commits: CommitProbe | None
    echo_cpu: Cpu
    sanad_cpu: Cpu
    expected_rows: int
    replaced: int

    @property
    def ratio(self) -> float:
        return statistics.median(r.ratio for r in self.rounds)


async def loads(
    client: httpx.AsyncClient, running: Processes, args: argparse.Namespace
) -> E2eFigures:
    echo_probe, sanad_probe = RemoteProbe(echo_final), RemoteProbe(sanad_final)
    reader = asyncio.create_task(read_journal(client, {"echo": echo_probe, "sanad": sanad_probe}))
    try:
        await wait_polling(client, {"sanad": running.sanad, "echo": running.echo})
        if args.with_worker:
            background = await settle(sanad_probe)
            print(f"sent by Sanad's scheduler and sender before the loads: {background}")
        echo_cpu, sanad_cpu, spare = Cpu(), Cpu(), Cpu()
        await measured(
            "echo warm-up",
            echo_probe,
            make_workers(client, "echo", echo_probe, 0, WARMUP_WORKERS),
            echo_report,
            1,
            running,
            spare,
        )
        warm = make_workers(client, "sanad", sanad_probe, 0, WARMUP_WORKERS)
        await measured("sanad warm-up", sanad_probe, warm, sanad_report, 2, running, spare)
        echo_workers = make_workers(client, "echo", echo_probe, WARMUP_WORKERS, args.workers)
        closed = make_workers(client, "sanad", sanad_probe, WARMUP_WORKERS, args.workers)
        rounds = []
        for number in range(args.rounds):
            echo = await measured(
                "echo",
                echo_probe,
                echo_workers,
                echo_report,
                1,
                running,
                echo_cpu,
                first_report=number,
            )
            sanad = await measured(
                "sanad",
                sanad_probe,
                closed,
                sanad_report,
                1,
                running,
                sanad_cpu,
                first_report=number,
            )
            rounds.append(Round(echo, sanad))
        echo_paced_workers = make_workers(
            client,
            "echo",
            echo_probe,
            WARMUP_WORKERS + args.workers,
            args.workers,
            think=args.think,
            deadline=time.perf_counter() + args.paced_seconds,
        )
        echo_paced = await measured(
            "echo paced",
            echo_probe,
            echo_paced_workers,
            echo_report,
            None,
            running,
            spare,
            stagger=args.think,
        )
        deadline = time.perf_counter() + args.paced_seconds
        paced_workers = make_workers(
            client,
            "sanad",
            sanad_probe,
            WARMUP_WORKERS + args.workers,
            args.workers,
            think=args.think,
            deadline=deadline,
        )
        database_url = args.database or ""
        commits = CommitProbe(database_url) if database_url.startswith("postgresql") else None
        with commits or contextlib.nullcontext():
            paced = await measured(
                "sanad paced",
                sanad_probe,
                paced_workers,
                sanad_report,
                None,
                running,
                spare,
                stagger=args.think,
            )
    except BenchError as error:
        tails = "\n".join(f"--- {p.log.name}\n{p.tail()}" for p in running.all)
        raise BenchError(f"{error}\n{tails}") from None
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    everyone = warm + closed + paced_workers
    return E2eFigures(
        rounds,
        echo_paced,
        paced,
        commits,
        echo_cpu,
        sanad_cpu,
        sum(len(w.weeks) for w in everyone),
        sum(w.replaced for w in everyone),
    )


# --- report ----------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_line(name: str, cpu: Cpu, seconds: float) -> str:
    shares = ", ".join(f"{p} {100 * s / seconds:.0f}%" for p, s in cpu.seconds.items())
    return f"  CPU during the {name} rounds (100% = one core): {shares}"


def print_figures(figures: E2eFigures, args: argparse.Namespace, kind: str) -> bool:
    head = (
        f"  {'':<14}{'updates':>8}{'reports':>9}{'updates/s':>11}{'reports/s':>11}"
        f"{'p50 ms':>9}{'p95 ms':>9}"
    )
    print(
        f"\nclosed load: {args.workers} workers, one report each per round (next answer as "
        f"soon as the reply is complete); {len(figures.rounds)} rounds, each the echo bot "
        "then Sanad"
    )
    print(head)
    if args.verbose:
        for number, round_ in enumerate(figures.rounds, 1):
            for bot in (round_.echo, round_.sanad):
                print(row(f"{number}. {bot.name}", bot))
            print(f"  {'':<14}ratio {round_.ratio:.2f}")
    echo = together([r.echo for r in figures.rounds])
    sanad = together([r.sanad for r in figures.rounds])
    print(row("echo", echo))
    print(row("sanad", sanad))
    print(cpu_line("echo", figures.echo_cpu, echo.seconds))
    print(cpu_line("Sanad", figures.sanad_cpu, sanad.seconds))
    ratios = sorted(r.ratio for r in figures.rounds)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"  ratio of the rounds: lowest {ratios[0]:.2f}, quartiles {quartiles[0]:.2f} / "
        f"{quartiles[1]:.2f} / {quartiles[2]:.2f}, highest {ratios[-1]:.2f}; of all rounds "
        f"together {sanad.updates_per_s / echo.updates_per_s:.2f}"
    )
    target = TARGET_RATIO[kind]
    ratio = figures.ratio
    ratio_ok = ratio >= target
    print(
        f"  throughput ratio sanad/echo (updates/s, median of the rounds): {ratio:.2f}    "
        f"target >= {target} ({kind})  {verdict(ratio_ok)}"
    )
    paced = figures.paced
    print(
        f"\npaced load: {args.workers} workers answering {args.think:g} s after each reply, "
        f"{args.paced_seconds:g} s, the echo bot (for reference) then Sanad"
    )
    print(head)
    print(row(figures.echo_paced.name, figures.echo_paced))
    print(row(paced.name, paced))
    for figures_of in (figures.echo_paced, paced):
        print(f"  p95 by fifth of the run, {figures_of.name}: {by_fifth(figures_of)}")
    if figures.commits is not None:
        print(f"  the database meanwhile, alone: {figures.commits.summary()}")
    p95 = paced.percentile(95)
    p95_ok = p95 <= TARGET_PACED_P95_MS
    print(
        f"  p50 {paced.percentile(50):.1f} ms, p95 {p95:.1f} ms    "
        f"target p95 <= {TARGET_PACED_P95_MS:g} ms  {verdict(p95_ok)}"
    )
    return ratio_ok and p95_ok


def by_fifth(figures: Figures) -> str:
    """The p95 of each fifth of a phase's replies, in the order they came: a stall of the
    machine (or of a database's checkpoint) shows as one bad fifth, a slow bot as five."""
    size = max(1, len(figures.latencies) // 5)
    parts = [figures.latencies[i * size : (i + 1) * size] for i in range(5)]
    return (
        " / ".join(
            f"{Figures('', 0, 0, 0, 1.0, part).percentile(95):.1f}" for part in parts if part
        )
        + " ms"
    )


async def main_async(args: argparse.Namespace) -> int:
    kind = "postgresql" if (args.database or "").startswith("postgresql") else "sqlite"
    print(f"load average at start: {load_average()} ({os.cpu_count()} CPUs)")
    with (
        tempfile.TemporaryDirectory(prefix="sanad-bench-e2e-") as tmp,
        database(args.database, Path(tmp)) as (url, shown),
    ):
        print(f"database: {shown}")
        print(f"Sanad: python -m bot run{'' if args.with_worker else ' --without-worker'}")
        settings = bench_settings(url, Path(tmp), TOKEN)
        sanad = assemble(settings)
        try:
            before = prepare(sanad, WARMUP_WORKERS + 2 * args.workers)
            applied_before = applied_updates(sanad)
            logs = Path(args.logs) if args.logs else Path(tmp)
            logs.mkdir(parents=True, exist_ok=True)
            async with processes(settings, args, logs) as running:
                # Idle connections are dropped before uvicorn's own 5 s keep-alive ends: reusing one
                # the server is closing at that moment fails the request (httpx.ReadError).
                limits = httpx.Limits(
                    max_connections=None, max_keepalive_connections=None, keepalive_expiry=2.0
                )
                async with httpx.AsyncClient(
                    base_url=running.root, limits=limits, timeout=30
                ) as client:
                    figures = await loads(client, running, args)
                    queued = int((await stats(client, "sanad"))["queued"])
                errors = running.sanad.errors()
            stored = stored_reports(sanad) - before
            applied = applied_updates(sanad) - applied_before
        finally:
            sanad.close()
    targets_met = print_figures(figures, args, kind)
    exactly_once = stored == figures.expected_rows and applied == queued
    print(
        f"\nexactly once: reports stored {stored} (expected {figures.expected_rows}; "
        f"{figures.replaced} more were replacements), updates applied {applied} of {queued} "
        f"queued  {'OK' if exactly_once else 'WRONG'}"
    )
    print(f"ERROR lines in Sanad's log: {errors}")
    print(f"load average at the end: {load_average()}")
    print(f"targets: {'all met' if targets_met else 'missed (see MISS above)'}")
    return 0 if exactly_once else 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, default=50, help="workers per load (50)")
    parser.add_argument(
        "--rounds", type=int, default=15, help="closed-load rounds, each echo then Sanad (15)"
    )
    parser.add_argument(
        "--paced-seconds", type=float, default=25.0, help="length of the paced load (25)"
    )
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds a paced worker takes to answer (1)"
    )
    parser.add_argument(
        "--database",
        help="a database URL; PostgreSQL gets a private schema dropped at the end "
        "(default: a fresh SQLite file)",
    )
    parser.add_argument(
        "--with-worker",
        action="store_true",
        help="run Sanad with its scheduler and sender (default: --without-worker)",
    )
    parser.add_argument("--logs", help="keep the processes' logs in this folder")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.rounds < 1:
        parser.error("--workers and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(main_async(args))
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
