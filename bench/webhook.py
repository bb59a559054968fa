"""Field workers filling the recycling form through real bot processes: the webhook endpoint
(one and two `python -m bot webhook` processes on PostgreSQL) and the polling process
(`python -m bot run` on SQLite).

    python -m bench.webhook [--web N ...] [--senders 50] [--seconds S] [--database URL]

The bot runs as separate processes, as deployed, and reaches the fake Bot API over HTTP
(`tests.fakes.telegram_bot_server.serving`, in this process, given as TELEGRAM_BASE_URL). For the
webhook, this process also plays Telegram (`pushing_webhooks`): each update is POSTed to one
of the web processes in turn, up to 40 at once but one at a time per chat, and posted again
until a process answers 200. The polling process fetches the same queue with getUpdates.

Load: `--senders` registered workers (each of its own association) fill the recycling form
as fast as replies come: each sends its next answer once the bot's reply to the previous one
is complete (see `bench.workers`, whose workers, reply detection and figures this reuses),
for `--seconds` after a warm-up. Latency is from the update being queued at the fake Bot API
to the request that sends the last message of its reply arriving there.

At the end the database is checked for exactly-once: every queued update applied once
(ProcessedUpdate rows), every confirmed report stored once (one row per worker and week).
The web and polling processes run without the scheduler and sender (`--without-worker`),
so that nothing but replies reaches the fake Bot API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import select

from bench.common import bench_settings, database
from bench.workers import (
    WARMUP_WORKERS,
    Answer,
    BenchError,
    Figures,
    Probe,
    Script,
    Worker,
    expect,
    make_workers,
    phase,
    prepare,
    sanad_final,
    stored_reports,
)
from bot.app import Sanad, assemble
from bot.settings import Settings
from storage.db import transaction
from storage.models import ProcessedUpdate
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import WebhookPusher, pushing_webhooks, serving

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOKEN = "123456:BENCH-never-logged"
SECRET = "bench-webhook-SECRET"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
WARMUP_REPORTS = 2


@dataclass
class Run:
    """One configuration: how updates reach the bot, how many processes, which database."""

    mode: str  # "webhook" or "polling"
    processes: int
    database_url: str | None  # None: a fresh SQLite file


@dataclass
class Result:
    run: Run
    database: str
    figures: Figures
    errors: int
    redeliveries: int | None  # None: polling (no webhook to redeliver)
    stored: int
    expected: int
    applied: int
    queued: int
    resumes: int  # "continue where you stopped?" asked of a worker who had just been asked
    bot_cpu: float  # CPU seconds the bot processes spent in the measured phase
    bench_cpu: float  # CPU seconds this process (fake Bot API, Telegram, workers) spent

    @property
    def exactly_once(self) -> bool:
        return self.stored == self.expected and self.applied == self.queued


# --- the workers' script ----------------------------------------------------------------------

RESUME = "You have an unfinished report"
MAX_RESUMES = 500  # a safety net only: under strict round robin a chat can loop for a while


@dataclass
class Resumes:
    """How often the bot asked "continue where you stopped?" in the middle of a report."""

    count: int = 0


def reporting(resumes: Resumes) -> Script:
    """`bench.workers.sanad_report` (the recycling form, a week, replace if asked, 7 numbers,
    Skip, Confirm), except that a typed answer met by "You have an unfinished report ...
    Continue?" is counted, Continue is pressed and the answer typed again. No such question
    is expected: each worker answers the question it was just asked."""

    async def typed(worker: Worker, text: str) -> Answer:
        answer = await worker.step(worker.says(text))
        for _ in range(MAX_RESUMES):
            if RESUME not in answer.last:
                return answer
            resumes.count += 1
            await worker.step(worker.taps(answer.button("continue")))
            answer = await worker.step(worker.says(text))
        raise BenchError(f"worker {worker.number}: asked to resume {MAX_RESUMES} times in a row")

    async def report(worker: Worker, number: int) -> None:
        answer = await typed(worker, "/recycling")
        expect(worker, answer, "For which week?")
        weeks = answer.buttons()
        if len(weeks) != 2:
            raise BenchError(f"worker {worker.number}: expected two weeks, got {weeks}")
        week = weeks[number % 2]
        answer = await worker.step(worker.taps(week))
        replacing = "already exists" in answer.last
        if replacing:
            answer = await worker.step(worker.taps(answer.button("yes")))
        expect(worker, answer, "(2 of 9) Paper collected")
        for value in worker.numbers(number):
            answer = await typed(worker, value)
        expect(worker, answer, "(9 of 9) Notes (optional)")
        answer = await worker.step(worker.taps(answer.button("skip")))
        expect(worker, answer, "Please check your report")
        answer = await worker.step(worker.taps(answer.button("confirm")))
        saved = "It replaces the earlier report" if replacing else "Your reference number is REC-"
        if not any(saved in t for t in answer.texts):
            raise BenchError(f"worker {worker.number}: not saved: {answer.texts}")
        worker.weeks.add(week.partition(":")[2])
        worker.reports += 1
        worker.replaced += replacing

    return report


# --- bot processes ---------------------------------------------------------------------------


@dataclass
class BotProcess:
    process: asyncio.subprocess.Process
    log: Path
    url: str | None = None  # the webhook URL

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def errors(self) -> int:
        """ERROR lines and tracebacks in the process's log."""
        text = self.log.read_text(errors="replace")
        return sum(
            1 for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback")
        )

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def bot_processes(
    run: Run, env: dict[str, str], logs: Path, profiles: Path | None = None
) -> AsyncIterator[list[BotProcess]]:
    """Start the run's bot processes (under cProfile, writing to `profiles`, if given); stop
    them (SIGTERM, then SIGKILL) at the end."""
    started: list[BotProcess] = []
    try:
        for number in range(run.processes):
            log = logs / f"{run.mode}-{run.processes}-{number}.log"
            if run.mode == "webhook":
                port = free_port()
                args = ["webhook", "--host", "127.0.0.1", "--port", str(port), "--without-worker"]
                url: str | None = f"http://127.0.0.1:{port}/telegram"
            else:
                args, url = ["run", "--without-worker"], None
            profile = (
                []
                if profiles is None
                else ["-m", "cProfile", "-o", str(profiles / log.with_suffix(".prof").name)]
            )
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    *profile,
                    "-m",
                    "bot",
                    *args,
                    cwd=ROOT,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                )
            started.append(BotProcess(process, log, url))
        yield started
    finally:
        for bot in started:
            if bot.process.returncode is None:
                # uvicorn re-raises SIGTERM after its shutdown, which would kill cProfile
                # before it writes; SIGINT ends in a KeyboardInterrupt it survives.
                bot.process.send_signal(signal.SIGTERM if profiles is None else signal.SIGINT)
        for bot in started:
            try:
                await asyncio.wait_for(bot.process.wait(), 15)
            except TimeoutError:
                bot.process.kill()
                await bot.process.wait()


async def wait_ready(run: Run, bots: list[BotProcess], api: FakeBotApi) -> None:
    """Until every web process answers /health, or the polling process polls."""
    deadline = time.monotonic() + START_TIMEOUT
    async with httpx.AsyncClient(timeout=2) as client:
        for bot in bots:
            while True:
                if bot.process.returncode is not None:
                    raise BenchError(
                        f"a bot process ended ({bot.process.returncode}):\n{bot.tail()}"
                    )
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"a bot process did not start in {START_TIMEOUT:g} s:\n{bot.tail()}"
                    )
                if run.mode == "polling":
                    if any(method == "getUpdates" for method, _ in api.calls):
                        break
                else:
                    assert bot.url is not None
                    with contextlib.suppress(httpx.HTTPError):
                        health = bot.url.removesuffix("/telegram") + "/health"
                        if (await client.get(health)).status_code == 200:
                            break
                await asyncio.sleep(0.1)


# --- one run ---------------------------------------------------------------------------------


def applied_updates(sanad: Sanad) -> int:
    with transaction(sanad.engine) as session:
        return int(session.exec(select(func.count()).select_from(ProcessedUpdate)).one())


def bot_env(settings: Settings, base_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "DATABASE_URL", "DATA_DIR"))
    }
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=base_url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        DATABASE_URL=settings.database_url,
        DATA_DIR=str(settings.data_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


async def measure(
    run: Run,
    args: argparse.Namespace,
    api: FakeBotApi,
    probe: Probe,
    bots: list[BotProcess],
    script: Script,
) -> tuple[Figures, list[Worker], float, float]:
    """Warm-up, then the measured load; returns its figures, every worker, and the CPU seconds
    of the bot processes and of this process during the measured load."""
    warm = make_workers(api, probe, 0, WARMUP_WORKERS)
    await phase(f"{run.mode} warm-up", probe, warm, script, WARMUP_REPORTS)
    deadline = time.perf_counter() + args.seconds
    workers = make_workers(api, probe, WARMUP_WORKERS, args.senders, deadline=deadline)
    bot_cpu = sum(b.cpu_seconds() for b in bots)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = await phase(f"{run.mode} x{run.processes}", probe, workers, script, None)
    after = resource.getrusage(resource.RUSAGE_SELF)
    bench_cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return figures, warm + workers, sum(b.cpu_seconds() for b in bots) - bot_cpu, bench_cpu


async def one_run(run: Run, args: argparse.Namespace) -> Result:
    with (
        tempfile.TemporaryDirectory(prefix="sanad-bench-webhook-") as tmp,
        database(run.database_url, Path(tmp)) as (url, shown),
    ):
        settings = bench_settings(url, Path(tmp), TOKEN)
        sanad = assemble(settings)
        try:
            before = prepare(sanad, WARMUP_WORKERS + args.senders)
            applied_before = applied_updates(sanad)
            api = FakeBotApi()
            probe = Probe(api, sanad_final)
            resumes = Resumes()
            script = reporting(resumes)
            pusher: WebhookPusher | None = None
            logs = Path(args.logs) if args.logs else Path(tmp)
            logs.mkdir(parents=True, exist_ok=True)
            async with (
                serving(api) as base_url,
                bot_processes(
                    run,
                    bot_env(settings, base_url),
                    logs,
                    Path(args.profile_bots) if args.profile_bots else None,
                ) as bots,
            ):
                try:
                    await wait_ready(run, bots, api)
                    if run.mode == "webhook":
                        urls = [b.url for b in bots if b.url is not None]
                        async with pushing_webhooks(api, urls, SECRET) as pusher:
                            figures, workers, bot_cpu, bench_cpu = await measure(
                                run, args, api, probe, bots, script
                            )
                            await pusher.drain(timeout=10)
                    else:
                        figures, workers, bot_cpu, bench_cpu = await measure(
                            run, args, api, probe, bots, script
                        )
                except BenchError as error:
                    tails = "\n".join(f"--- {b.log.name}\n{b.tail()}" for b in bots)
                    raise BenchError(f"{error}\n{tails}") from None
                errors = sum(b.errors() for b in bots)
            stored = stored_reports(sanad) - before
            applied = applied_updates(sanad) - applied_before
        finally:
            sanad.close()
    return Result(
        run,
        shown,
        figures,
        errors,
        pusher.retried if pusher else None,
        stored,
        sum(len(w.weeks) for w in workers),
        applied,
        api._update_seq,
        resumes.count,
        bot_cpu,
        bench_cpu,
    )


# --- report ----------------------------------------------------------------------------------


def database_name(url: str | None) -> str:
    if url is None:
        return "SQLite"
    backend = make_url(url).get_backend_name()
    return {"postgresql": "PostgreSQL", "sqlite": "SQLite"}.get(backend, backend)


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.senders} workers filling the recycling form as fast as replies come, "
        f"{args.seconds:g} s after a warm-up; {os.cpu_count()} CPUs shared by everything"
    )
    print(
        f"  {'mode':<8}{'procs':>6}  {'database':<11}{'updates':>8}{'updates/s':>10}"
        f"{'reports/s':>10}{'p50 ms':>8}{'p95 ms':>8}{'errors':>7}{'redeliv.':>9}"
        f"{'resumes':>8}{'reports stored/expected':>25}{'updates applied/queued':>24}"
        f"{'bot CPU':>9}{'bench CPU':>10}"
    )
    for r in results:
        f = r.figures
        stored = f"{r.stored}/{r.expected} {'OK' if r.stored == r.expected else 'WRONG'}"
        applied = f"{r.applied}/{r.queued} {'OK' if r.applied == r.queued else 'WRONG'}"
        print(
            f"  {r.run.mode:<8}{r.run.processes:>6}  {database_name(r.run.database_url):<11}"
            f"{f.updates:>8}{f.updates_per_s:>10.1f}{f.reports_per_s:>10.2f}"
            f"{f.percentile(50):>8.1f}{f.percentile(95):>8.1f}{r.errors:>7}"
            f"{'-' if r.redeliveries is None else r.redeliveries:>9}{r.resumes:>8}"
            f"{stored:>25}{applied:>24}"
            f"{r.bot_cpu / f.seconds:>9.0%}{r.bench_cpu / f.seconds:>10.0%}"
        )
    print("""
  errors: ERROR lines in the bots' logs; redeliv.: posts Telegram had to make again (non-2xx
  or no answer); resumes: "You have an unfinished report ... continue?" asked in the middle
  of a report, which should not happen (the worker then presses Continue and types again,
  counted as updates); stored/applied: the exactly-once check over the whole run, warm-up
  included; bot CPU: the bot processes' CPU time over the measured time (100% = one core);
  bench CPU: this process's (fake Bot API over HTTP, Telegram's webhook side, the workers).""")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process: {rss:.0f} MiB")


async def main_async(args: argparse.Namespace) -> int:
    runs = [Run("webhook", n, args.database) for n in args.web]
    if not args.no_polling:
        runs.append(Run("polling", 1, args.polling_database))
    results = []
    for run in runs:
        print(f"{run.mode} x{run.processes} on {database_name(run.database_url)} ...", flush=True)
        results.append(await one_run(run, args))
        print(f"  database: {results[-1].database}", flush=True)
    print_table(results, args)
    return 0 if all(r.exactly_once for r in results) else 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhook",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--web",
        type=int,
        nargs="*",
        default=[1, 2],
        metavar="N",
        help="web process counts to measure (default: 1 2; none: skip)",
    )
    parser.add_argument("--senders", type=int, default=50, help="concurrent workers (50)")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measured time per run, after the warm-up (20)"
    )
    parser.add_argument(
        "--database",
        default=POSTGRES_URL,
        help=f"database of the webhook runs; PostgreSQL gets a fresh schema "
        f"that is dropped at the end (default: {POSTGRES_URL})",
    )
    parser.add_argument(
        "--polling-database",
        default=None,
        help="database of the polling run (default: a fresh SQLite file)",
    )
    parser.add_argument("--no-polling", action="store_true", help="skip the polling run")
    parser.add_argument("--logs", help="keep the bot processes' logs in this directory")
    parser.add_argument(
        "--profile-bots",
        metavar="DIR",
        help="run the bot processes under cProfile, writing DIR/*.prof",
    )
    args = parser.parse_args(argv)
    if args.senders < 1 or args.seconds <= 0 or any(n < 1 for n in args.web):
        parser.error("--senders, --seconds and --web counts must be positive")
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
