"""Field workers filling the recycling form, through Sanad's Telegram channel in this process.

    python -m bench.workers [--workers N] [--reports K] [--rounds R] [--database URL]
                            [--profile]

Both bots run as in production. Sanad polls the fake Bot API's getUpdates with
`bot.channels.telegram.polling` (each batch applied before its offset is confirmed). The
baseline is the cheapest useful bot: a python-telegram-bot Application with one TypeHandler
that answers every update with one message, polling with PTB's own Updater. Two loads:

* closed: every worker sends its next answer as soon as the reply to its previous one is
  complete; N workers, K reports each per round (weeks alternate from report to report, so
  the third report of a worker replaces its first: "Yes, replace it"). Both bots poll all
  along and the load goes to one, then the other, R short rounds; the ratio is the median of
  the rounds' ratios, so that a busy stretch of the machine lands on one round rather than on
  one bot.
* paced: N workers answer one second after each reply, as people typing, for a fixed time.

Latency is from the update being queued at the fake Bot API to the request that sends the last
message of its reply. Workers are registered (Person rows) before anything is measured.

Bots, fake Bot API and workers share one event loop, and the fake answers without real I/O, so
a bot works through its batch of updates without yielding: under the closed load a
worker can only queue its next update once the bot has drained the queue. The load then comes
in rounds of N updates and the closed-load latency is mostly an update's place in its round
(about N x the time per update at worst). Throughput is unaffected (the bot is never idle
for long); the paced load, where updates rarely queue up, gives the latency a person sees.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bench.common import bench_settings, database, partner_network
from bot.app import Sanad, assemble
from bot.channels.telegram import TelegramBot, build_telegram, polling
from storage.db import transaction
from storage.models import Organization, Person, Report
from storage.network import apply_network
from storage.types import utcnow
from tests.fakes.telegram_bot_api import (
    SEND_METHODS,
    FakeBotApi,
    FakeUser,
    JSONDict,
    running_polling,
)

TARGET_RATIO = 0.5
TARGET_PACED_P95_MS = 25.0
WARMUP_WORKERS = 2
FIRST_USER_ID = 500_000
STALL_TIMEOUT = 20.0

#: The question Sanad asks ends every reply that does not carry buttons ("(3 of 9) Plastic...");
#: values put into translated texts are wrapped in bidi isolates (U+2068 ... U+2069).
QUESTION = re.compile(r"^\(\u2068?\d+\u2069? of \u2068?\d+\u2069?\) ", re.MULTILINE)
ISOLATES = str.maketrans("", "", "\u2068\u2069")


class BenchError(Exception):
    """The bot answered something a worker did not expect; the figures would be meaningless."""


class Stop(Exception):
    """A paced worker's time is up; its unfinished report is abandoned (nothing is stored)."""


# --- knowing when a reply is complete --------------------------------------------------------

FinalTest = Callable[[str, JSONDict], bool]


def sanad_final(method: str, params: JSONDict) -> bool:
    """Whether this request sends the last message of Sanad's reply to an update.

    Read from handlers/: every reply ends with a message the person acts on next, which is
    either a message with buttons (menu after "Saved", the week question, notes with Skip, the
    summary, "replace it?", "did you mean", "continue or discard") or a numbered question from
    `reporting.ask` ("(4 of 9) ..."), possibly after an error line. What comes before it in
    the same reply - the answer to the button press, taking the buttons off the pressed message,
    the form's title, "Saved. Your reference ..." - never has buttons or a numbered question.
    Each run checks this: a message to a chat with no update outstanding is a "stray" and
    fails the run (see Probe).
    """
    if method != "sendMessage":
        return False
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    if isinstance(markup, dict) and markup.get("inline_keyboard"):
        return True
    return QUESTION.search(str(params.get("text") or "")) is not None


def echo_final(method: str, params: JSONDict) -> bool:
    """The echo bot answers every update with exactly one message."""
    return method == "sendMessage"


@dataclass
class Outstanding:
    """The one update a worker is waiting on."""

    queued_at: float
    done: asyncio.Future[JSONDict]
    texts: list[str] = field(default_factory=list)


@dataclass
class Answer:
    """The bot's reply to one update: the texts of its messages and the last message sent."""

    texts: list[str]
    final: JSONDict

    @property
    def last(self) -> str:
        return self.texts[-1] if self.texts else ""

    def button(self, value: str) -> str:
        """The callback data of the button whose value (after Sanad's nonce) is `value`."""
        for data in self.buttons():
            if data.partition(":")[2] == value:
                return data
        raise BenchError(f"no button {value!r} in {self.buttons()} of {self.last!r}")

    def buttons(self) -> list[str]:
        markup = self.final.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        rows = markup.get("inline_keyboard") or []
        return [str(b.get("callback_data", "")) for row in rows for b in row]


class Probe:
    """Watches every request the bot makes to the fake Bot API (`FakeBotApi.on_request`, called
    synchronously before the fake answers) and completes a worker's wait when the last message
    of the reply to its update is sent. Costs a dict lookup per request, for both bots alike."""

    def __init__(self, fake: FakeBotApi, final: FinalTest) -> None:
        self.final = final
        self.outstanding: dict[int, Outstanding] = {}
        self.latencies: list[float] = []
        self.updates = 0
        self.stray: list[str] = []
        fake.on_request = self.on_request

    def reset(self) -> None:
        self.latencies = []
        self.updates = 0

    def on_request(self, method: str, params: JSONDict) -> None:
        if method not in SEND_METHODS:
            return None
        chat_id = int(params.get("chat_id") or 0)
        waiting = self.outstanding.get(chat_id)
        if waiting is None:
            self.stray.append(f"{method} to {chat_id}: {params.get('text')!r}")
            return None
        if method == "sendMessage":
            waiting.texts.append(str(params.get("text") or "").translate(ISOLATES))
        if self.final(method, params):
            del self.outstanding[chat_id]
            self.latencies.append(time.perf_counter() - waiting.queued_at)
            waiting.done.set_result(params)
        return None

    async def exchange(self, chat_id: int, act: Callable[[], JSONDict]) -> Answer:
        """Queue one update (`act`) and wait for the complete reply to it."""
        waiting = Outstanding(time.perf_counter(), asyncio.get_running_loop().create_future())
        self.outstanding[chat_id] = waiting
        act()
        self.updates += 1
        final = await waiting.done
        return Answer(waiting.texts, final)


# --- workers ---------------------------------------------------------------------------------


@dataclass
class Worker:
    """One person with a phone: sends, waits for the reply, thinks, sends again."""

    number: int
    user: FakeUser
    probe: Probe
    think: float = 0.0
    deadline: float | None = None
    weeks: set[str] = field(default_factory=set)
    reports: int = 0
    replaced: int = 0

    async def step(self, act: Callable[[], JSONDict]) -> Answer:
        if self.think:
            await asyncio.sleep(self.think)
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            raise Stop
        return await self.probe.exchange(self.user.id, act)

    def says(self, typed: str) -> Callable[[], JSONDict]:
        return lambda: self.user.text(typed)

    def taps(self, data: str) -> Callable[[], JSONDict]:
        return lambda: self.user.press(data)

    def numbers(self, report: int) -> list[str]:
        return typed_numbers(self.number, report)


async def sanad_report(worker: Worker, report: int) -> None:
    """/recycling, a week (alternating), replace if asked, 7 numbers, Skip, Confirm and send."""
    answer = await worker.step(worker.says("/recycling"))
    expect(worker, answer, "For which week?")
    weeks = answer.buttons()
    if len(weeks) != 2:
        raise BenchError(f"worker {worker.number}: expected two weeks, got {weeks}")
    week = weeks[report % 2]
    answer = await worker.step(worker.taps(week))
    if "already exists" in answer.last:
        answer = await worker.step(worker.taps(answer.button("yes")))
        replacing = True
    else:
        replacing = False
    expect(worker, answer, "(2 of 9) Paper collected")
    for typed in worker.numbers(report):
        answer = await worker.step(worker.says(typed))
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


async def echo_report(worker: Worker, report: int) -> None:
    """The same eleven updates (texts and button presses) to the echo bot."""
    await worker.step(worker.says("/recycling"))
    await worker.step(worker.taps("week"))
    for typed in worker.numbers(report):
        await worker.step(worker.says(typed))
    await worker.step(worker.taps("skip"))
    await worker.step(worker.taps("confirm"))
    worker.reports += 1


def expect(worker: Worker, answer: Answer, wanted: str) -> None:
    if wanted not in answer.last:
        raise BenchError(f"worker {worker.number}: expected {wanted!r}, got {answer.texts}")


Script = Callable[[Worker, int], Awaitable[None]]


async def work(
    worker: Worker, script: Script, reports: int | None, start_after: float, first_report: int = 0
) -> None:
    """Fill `reports` reports in a row (None: until the deadline), numbered from
    `first_report` on."""
    await asyncio.sleep(start_after)
    report = first_report
    try:
        while reports is None or report < first_report + reports:
            await script(worker, report)
            report += 1
    except Stop:
        pass


# --- phases ----------------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    workers: int
    updates: int
    reports: int
    seconds: float
    latencies: list[float]

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.seconds

    @property
    def reports_per_s(self) -> float:
        return self.reports / self.seconds

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


async def phase(
    name: str,
    probe: Probe,
    workers: list[Worker],
    script: Script,
    reports: int | None,
    stagger: float = 0.0,
    first_report: int = 0,
) -> Figures:
    probe.reset()
    before = sum(w.reports for w in workers)
    # Every phase starts with a clean heap: a full collection (200+ ms here, the heap holds
    # both bots and everything the fake recorded) then lands in no phase, rather than in
    # whichever phase crossed the threshold.
    gc.collect()
    started = time.perf_counter()
    runners = asyncio.gather(
        *(
            work(w, script, reports, stagger * i / len(workers), first_report)
            for i, w in enumerate(workers)
        )
    )
    stalled: list[str] = []
    dog = asyncio.create_task(watchdog(probe, runners, stalled))
    try:
        await runners
    except asyncio.CancelledError:
        if not stalled:
            raise
        raise BenchError(f"{name}: {stalled[0]}") from None
    finally:
        dog.cancel()
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.2)  # anything the bot still sends now is a stray: a wrong "final"
    if probe.stray or probe.outstanding:
        raise BenchError(
            f"{name}: reply detection is wrong: stray {probe.stray[:5]}, "
            f"unanswered chats {sorted(probe.outstanding)[:5]}"
        )
    done = sum(w.reports for w in workers) - before
    return Figures(name, len(workers), probe.updates, done, seconds, list(probe.latencies))


async def watchdog(probe: Probe, runners: asyncio.Future[Any], stalled: list[str]) -> None:
    """Stop the phase when no reply at all has come for STALL_TIMEOUT seconds (a hang)."""
    seen, quiet_since = -1, time.perf_counter()
    while True:
        await asyncio.sleep(1.0)
        now = time.perf_counter()
        if len(probe.latencies) != seen or not probe.outstanding:
            seen, quiet_since = len(probe.latencies), now
        elif now - quiet_since > STALL_TIMEOUT:
            waiting = {chat: w.texts for chat, w in list(probe.outstanding.items())[:3]}
            stalled.append(f"no reply for {STALL_TIMEOUT:g} s; waiting: {waiting}")
            runners.cancel()
            return


def make_workers(
    fake: FakeBotApi,
    probe: Probe,
    first: int,
    count: int,
    *,
    think: float = 0.0,
    deadline: float | None = None,
) -> list[Worker]:
    return [
        Worker(
            first + i,
            fake.user(FIRST_USER_ID + first + i, f"Worker {first + i}", language_code="en"),
            probe,
            think,
            deadline,
        )
        for i in range(count)
    ]


def echo_application() -> tuple[Application, FakeBotApi]:  # type: ignore[type-arg]
    """The baseline: one TypeHandler answering every update with one message."""
    fake = FakeBotApi()
    application = fake.application_builder().build()

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is not None:
            await context.bot.send_message(chat.id, "echo")

    application.add_handler(TypeHandler(Update, echo))
    return application, fake


@dataclass
class Round:
    echo: Figures
    sanad: Figures

    @property
    def ratio(self) -> float:
        return self.sanad.updates_per_s / self.echo.updates_per_s


@dataclass
class BenchFigures:
    rounds: list[Round]
    paced: Figures
    expected_rows: int
    replaced: int
    profile: str | None

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios: each round runs both bots back to back, so a
        stretch of the machine being busy falls on one round instead of on one bot."""
        return statistics.median(r.ratio for r in self.rounds)


async def closed_and_paced(sanad: Sanad, args: argparse.Namespace) -> BenchFigures:
    """Both bots polling at once; the closed load alternates between them, round by round."""
    echo, echo_fake = echo_application()
    sanad_fake = FakeBotApi()
    telegram: TelegramBot = build_telegram(
        sanad, request=sanad_fake.request(), get_updates_request=sanad_fake.request()
    )
    async with running_polling(echo, timeout=1), polling(telegram, timeout=1):
        echo_probe, sanad_probe = Probe(echo_fake, echo_final), Probe(sanad_fake, sanad_final)
        await phase(
            "echo warm-up",
            echo_probe,
            make_workers(echo_fake, echo_probe, 0, WARMUP_WORKERS),
            echo_report,
            1,
        )
        warm = make_workers(sanad_fake, sanad_probe, 0, WARMUP_WORKERS)
        await phase("sanad warm-up", sanad_probe, warm, sanad_report, 2)
        echo_workers = make_workers(echo_fake, echo_probe, WARMUP_WORKERS, args.workers)
        closed_workers = make_workers(sanad_fake, sanad_probe, WARMUP_WORKERS, args.workers)
        profiler = cProfile.Profile() if args.profile else None
        rounds = []
        for number in range(args.rounds):
            first = number * args.reports  # weeks keep alternating from round to round
            echo_figures = await phase(
                "echo", echo_probe, echo_workers, echo_report, args.reports, first_report=first
            )
            if profiler is not None:
                profiler.enable()
            sanad_figures = await phase(
                "sanad", sanad_probe, closed_workers, sanad_report, args.reports, first_report=first
            )
            if profiler is not None:
                profiler.disable()
            rounds.append(Round(echo_figures, sanad_figures))
        deadline = time.perf_counter() + args.paced_seconds
        paced_workers = make_workers(
            sanad_fake,
            sanad_probe,
            WARMUP_WORKERS + args.workers,
            args.workers,
            think=args.think,
            deadline=deadline,
        )
        # Workers start spread over one think time, as people do not type in step.
        paced = await phase(
            "sanad paced", sanad_probe, paced_workers, sanad_report, None, stagger=args.think
        )
        everyone = warm + closed_workers + paced_workers
    return BenchFigures(
        rounds,
        paced,
        sum(len(w.weeks) for w in everyone),
        sum(w.replaced for w in everyone),
        _profile_text(profiler),
    )


def _profile_text(profiler: cProfile.Profile | None, top: int = 30) -> str | None:
    if profiler is None:
        return None
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- database and people ---------------------------------------------------------------------


def prepare(sanad: Sanad, people: int) -> int:
    """One group with an association per worker, each worker registered in its own association
    (as an invitation would have done). Returns the number of reports already stored."""
    spec = partner_network("bench", people)
    with transaction(sanad.engine) as session:
        apply_network(session, spec)
        session.flush()
        orgs = {o.key: o.id for o in session.exec(select(Organization)).all()}
        now = utcnow()
        for i in range(people):
            organization_id = orgs[f"bench_{i}"]
            assert organization_id is not None
            session.add(
                Person(
                    channel="telegram",
                    address=str(FIRST_USER_ID + i),
                    display_name=f"Worker {i}",
                    language="en",
                    role="worker",
                    organization_id=organization_id,
                    created_at=now,
                )
            )
    return stored_reports(sanad)


def stored_reports(sanad: Sanad) -> int:
    with transaction(sanad.engine) as session:
        return int(session.exec(select(func.count()).select_from(Report)).one())


# --- report ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_figures(figures: BenchFigures, args: argparse.Namespace) -> None:
    head = (
        f"  {'':<14}{'updates':>8}{'reports':>9}{'updates/s':>11}{'reports/s':>11}"
        f"{'p50 ms':>9}{'p95 ms':>9}"
    )
    print(
        f"\nclosed load: {args.workers} workers, {args.reports} report(s) each per round "
        f"(answer as soon as the reply is complete); {len(figures.rounds)} rounds, each "
        "the echo bot then Sanad"
    )
    print(head)
    for number, round_ in enumerate(figures.rounds, 1):
        for bot in (round_.echo, round_.sanad):
            print(row(f"{number}. {bot.name}", bot))
        print(f"  {'':<14}ratio {round_.ratio:.2f}")
    print("  all rounds")
    echo, sanad = (
        together([r.echo for r in figures.rounds]),
        together([r.sanad for r in figures.rounds]),
    )
    for bot in (echo, sanad):
        print(row(bot.name, bot))
    ratios = sorted(r.ratio for r in figures.rounds)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(
        f"  ratio of the rounds: lowest {ratios[0]:.2f}, quartiles {quartiles[0]:.2f} / "
        f"{quartiles[1]:.2f} / {quartiles[2]:.2f}, highest {ratios[-1]:.2f}; of all rounds "
        f"together {sanad.updates_per_s / echo.updates_per_s:.2f}"
    )
    ratio = figures.ratio
    print(
        f"  throughput ratio sanad/echo (updates/s, median of the rounds): {ratio:.2f}    "
        f"target >= {TARGET_RATIO}  {verdict(ratio >= TARGET_RATIO)}"
    )
    paced = figures.paced
    print(
        f"\npaced load: {args.workers} workers answering {args.think:g} s after each reply, "
        f"{args.paced_seconds:g} s"
    )
    print(head)
    print(row(paced.name, paced))
    p95 = paced.percentile(95)
    print(
        f"  p95 latency: {p95:.1f} ms    target <= {TARGET_PACED_P95_MS:g} ms  "
        f"{verdict(p95 <= TARGET_PACED_P95_MS)}"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {rss:.1f} MiB")


def row(name: str, figures: Figures) -> str:
    return (
        f"  {name:<14}{figures.updates:>8}{figures.reports:>9}"
        f"{figures.updates_per_s:>11.1f}{figures.reports_per_s:>11.2f}"
        f"{figures.percentile(50):>9.1f}{figures.percentile(95):>9.1f}"
    )


def together(phases: list[Figures]) -> Figures:
    return Figures(
        phases[0].name,
        phases[0].workers,
        sum(f.updates for f in phases),
        sum(f.reports for f in phases),
        sum(f.seconds for f in phases),
        [latency for f in phases for latency in f.latencies],
    )


async def main_async(args: argparse.Namespace) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="sanad-bench-") as tmp,
        database(args.database, Path(tmp)) as (url, shown),
    ):
        print(f"database: {shown}")
        sanad = assemble(bench_settings(url, Path(tmp)))
        try:
            before = prepare(sanad, WARMUP_WORKERS + 2 * args.workers)
            figures = await closed_and_paced(sanad, args)
            stored = stored_reports(sanad) - before
        finally:
            sanad.close()
    print_figures(figures, args)
    ok = stored == figures.expected_rows
    print(
        f"reports stored: {stored} (expected {figures.expected_rows}; "
        f"{figures.replaced} more were replacements)  {'OK' if ok else 'WRONG'}"
    )
    if figures.profile:
        print(
            "\ncProfile of the Sanad closed load, all rounds (whole process: PTB, Sanad, "
            "fake, workers)"
        )
        print(figures.profile)
    return 0 if ok else 1


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workers", type=int, default=50, help="workers per load (50)")
    parser.add_argument(
        "--reports", type=int, default=1, help="reports each worker files per closed-load round (1)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=25,
        help="closed-load rounds, each the echo bot then Sanad (25)",
    )
    parser.add_argument(
        "--paced-seconds", type=float, default=25.0, help="length of the paced load (25)"
    )
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds a paced worker takes to answer (1)"
    )
    parser.add_argument(
        "--database",
        help="a database URL; PostgreSQL gets a fresh schema "
        "that is dropped at the end (default: a fresh SQLite file)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the Sanad closed load and print the top functions",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.reports < 1 or args.rounds < 1:
        parser.error("--workers, --reports and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(main_async(args))
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        return 2


def typed_numbers(worker: int, report: int) -> list[str]:
    """Seven answers as typed, different for every worker and report (so a replacement
    really changes answers): paper, aluminium, plastic, sold, revenue, paid, women."""
    n = worker * 7 + report
    return [
        f"{10 + n % 90}.5",
        str(2 + n % 7),
        f"{5 + n % 40} kg",
        str(15 + n % 100),
        f"{30 + n % 50}.25",
        str(12 + n % 30),
        str(3 + n % 20),
    ]


if __name__ == "__main__":
    sys.exit(main())
