"""Memory of a running bot over a long history: the peak resident set of `python -m bot run`
with a million stored reports, once it has sent every coordinator their digests.

    python -m bench.rss [--reports 1000000] [--years 10] [--idle-seconds 20] [--database URL]
                        [--template FILE] [--no-command] [--hide PACKAGE ...] [--smaps]

The history is `bench.digests`' (5 groups in their own time zones, 25 associations, ten
years of weekly recycling, monthly beneficiaries and check-ins), and each group gets two
coordinators registered on Telegram, one reading the group's language and one English, so
every digest is drawn in two languages. Each group's schedule is set so that its weekly and
monthly digests of the latest ended periods are due now (digest days and time moved, no
quiet hours): the bot's first monitoring tick, run as soon as it holds the scheduler lease,
builds the 10 digests and enqueues 20 messages with their chart, and its sender sends them.

The bot is the real `python -m bot run` (polling, scheduler and sender) in its own process,
against the fake Bot API served over HTTP (`tests.fakes.telegram_bot_server.serving`, as
`bench.idle` and `bench.startup` do). Phases, with VmHWM (peak RSS) and VmRSS read from
/proc/<pid>/status at the end of each:

1. ready: the log says the scheduler and sender started (the tick may already be running);
2. scheduled digests: every coordinator's two digest photos have arrived at the fake;
3. /digest: every coordinator sends /digest at once and gets both digests (text and chart)
   back, built in the bot process (skipped with `--no-command`);
4. idle: the CPU the process used over `--idle-seconds` after that (target <= 1% of one
   core), then its RSS again.

Target: peak RSS <= 110 MB (the issue's figure; 110 MiB is printed too, as MiB is what /proc
counts in). A fresh SQLite file is filled unless `--database` is given (a PostgreSQL URL gets
a private schema, dropped at the end). `--template FILE` keeps a filled SQLite file there
(filled on the first run, copied for each later one: filling takes a minute or two).

The chart process the bot starts (`monitoring.drawing`) is watched too: its peak RSS is
printed apart. Packages installed on the machine but not in requirements.lock that the bot
imports when they are there (cryptography through python-telegram-bot, trio through
httpcore) are named; `--hide` makes them unimportable in the bot, as in an install from the
lock. `--smaps` prints the SQLite connections the bot holds and its largest mappings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bench.common import database
from bench.digests import GROUPS, History, prepare_network, store_history
from bench.idle import cpu_seconds
from forms.loader import load_forms
from forms.periods import period_containing
from storage.db import open_database, transaction
from storage.models import Group, Organization, Person, Report
from tests.fakes.telegram_bot_api import FakeBotApi, SentMessage
from tests.fakes.telegram_bot_server import serving

TOKEN = "123456:RSS-BENCH"
READY = "scheduler and sender started"
TARGET_MB = 110.0  # the "110 MB"
TARGET_IDLE = 0.01
FIRST_COORDINATOR = 900_000
TIMEOUT = 600.0
KINDS = ("week", "month")


# --- the database ----------------------------------------------------------------------------


def fill(url: str, reports: int, years: int) -> tuple[int, float]:
    """The network, its history and two coordinators per group; (reports stored, seconds)."""
    engine = open_database(url)
    try:
        start = time.perf_counter()
        associations = prepare_network(engine)
        history = History(associations, reports, years, datetime.now(UTC).date())
        stored = store_history(engine, history, load_forms())
        add_coordinators(engine)
        return stored, time.perf_counter() - start
    finally:
        engine.dispose()


def add_coordinators(engine: Engine) -> None:
    with transaction(engine) as session:
        rows = session.exec(
            select(Organization, Group)
            .join(Group)
            .where(Organization.kind == "supportive", col(Group.key).in_([g[0] for g in GROUPS]))
            .order_by(Group.key)
        ).all()
        number = 0
        for organization, group in rows:
            assert organization.id is not None
            for language in (group.language, "en"):
                session.add(
                    Person(
                        channel="telegram",
                        address=str(FIRST_COORDINATOR + number),
                        display_name=f"Coordinator {number}",
                        language=language,
                        role="coordinator",
                        organization_id=organization.id,
                    )
                )
                number += 1


def digests_due_now(engine: Engine, now: datetime) -> int:
    """Move each group's digest days and time so that the digests of its latest ended week
    and month are due at `now`, with no quiet hours; returns how many digest kinds are due
    in every group (2; 1 on the last days of a month, when the monthly one cannot be moved)."""
    due = len(KINDS)
    with transaction(engine) as session:
        for group in session.exec(select(Group).where(col(Group.key).in_([g[0] for g in GROUPS]))):
            today = now.astimezone(ZoneInfo(group.timezone)).date()
            ago = {
                kind: (today - period_containing(kind, today, group.week_start).previous().end).days
                for kind in KINDS
            }
            most = {"week": 6, "month": 27}  # the schedule's bounds on the digest days
            schedule: dict[str, Any] = {
                **group.schedule,
                "quiet_start": "00:00",
                "quiet_end": "00:00",
            }
            # The digest goes out `days` after its period's last day, at `at` local time: at
            # midnight today, or a minute before midnight yesterday; either is within the
            # 24 hours the monitor allows.
            choices = []
            for back, at in ((0, dtime(0, 0)), (1, dtime(23, 59))):
                days = {kind: ago[kind] - back for kind in KINDS}
                fits = [kind for kind in KINDS if 1 <= days[kind] <= most[kind]]
                if "week" in fits:
                    choices.append((len(fits), -back, at, days, fits))
            _, _, at, days, fits = max(choices)  # the week always fits one of them
            due = min(due, len(fits))
            schedule["digest_time"] = at.isoformat()
            schedule["weekly_digest_days"] = days["week"]
            if "month" in fits:
                schedule["monthly_digest_days"] = days["month"]
            group.schedule = schedule
            session.add(group)
    return due


def history_size(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Report)).one()


def coordinators(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [
            int(a)
            for a in session.exec(
                select(Person.address).where(Person.role == "coordinator").order_by(Person.address)
            )
        ]


# --- what a deployment would not have -------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
#: Installed on this machine for other work, not in requirements.lock, and imported by the
#: bot when present: python-telegram-bot imports cryptography (Telegram Passport) and
#: httpcore imports trio. About 8 and 4 MiB of the bot's resident set.
NOT_LOCKED = ("cryptography", "trio")


def locked() -> set[str]:
    """The distributions requirements.lock installs (names normalised)."""
    names = set()
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            names.add(line.split("==")[0].strip().lower().replace("_", "-"))
    return names


def importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def hiding(names: list[str], tmp: Path) -> dict[str, str]:
    """Environment for the bot in which `import NAME` fails for each of `names`, as in an
    install from requirements.lock (a directory of stubs first on PYTHONPATH)."""
    if not names:
        return {}
    lock = locked()
    for name in names:
        if name.lower().replace("_", "-") in lock:
            raise SystemExit(f"--hide {name}: requirements.lock installs it")
        stub = tmp / "hidden" / name
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text(
            f"raise ImportError('{name} hidden by bench.rss: not in requirements.lock')\n"
        )
    path = [str(tmp / "hidden"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}


# --- the bot process -------------------------------------------------------------------------


def status_kib(pid: int) -> dict[str, int]:
    """VmHWM and VmRSS of process `pid`, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            found[name] = int(value.split()[0])
    return found


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


class Children:
    """The peak RSS of every process the bot starts (the chart process), sampled often:
    each is read until it exits, as its VmHWM goes with it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[int, int] = {}

    def sample(self) -> None:
        for child in descendants(self.pid):
            try:
                peak = status_kib(child)["VmHWM"]
            except (OSError, KeyError):
                continue
            self.peaks[child] = max(peak, self.peaks.get(child, 0))

    async def watch(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.05)


def mappings(pid: int, top: int = 15) -> list[tuple[int, str]]:
    """The largest parts of the resident set of `pid` (KiB, what is mapped), from smaps."""
    sizes: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        first = line.split(maxsplit=5)
        if "-" in first[0] and not first[0].endswith(":"):
            name = first[5] if len(first) > 5 else "[anonymous]"
        elif first[0] == "Rss:":
            sizes[name] = sizes.get(name, 0) + int(first[1])
    return sorted(((kib, n) for n, kib in sizes.items()), reverse=True)[:top]


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB ({kib * 1024 / 1e6:.1f} MB)"


def photos_to(api: FakeBotApi, chat: int, start: int = 0) -> list[SentMessage]:
    return [m for m in api.sent[start:] if m.chat_id == chat and m.method == "sendPhoto"]


async def wait_until(condition: Any, what: str, process: subprocess.Popen[bytes]) -> float:
    """Wait for `condition()`; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"the bot stopped (exit {process.returncode}) before {what}")
        if time.monotonic() - start > TIMEOUT:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def measure(args: argparse.Namespace, url: str, tmp: Path, due: int) -> int:
    engine = open_database(url)
    try:
        chats = coordinators(engine)
    finally:
        engine.dispose()
    api = FakeBotApi()
    async with serving(api) as base_url:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": base_url,
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp / "data"),
            "PYTHONUNBUFFERED": "1",
            **hiding(args.hide, tmp),
        }
        log_path = tmp / "bot.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            peak = 0
            children = Children(process.pid)
            watching = asyncio.create_task(children.watch())
            try:

                def phase(name: str, seconds: float) -> None:
                    nonlocal peak
                    kib = status_kib(process.pid)
                    peak = kib["VmHWM"]
                    print(
                        f"  {name:<22} {seconds:6.1f} s   peak {mib(kib['VmHWM'])}, "
                        f"now {mib(kib['VmRSS'])}",
                        flush=True,
                    )

                took = await wait_until(
                    lambda: READY in log_path.read_text(errors="replace"), "it started", process
                )
                phase("ready", took)
                took = await wait_until(
                    lambda: all(len(photos_to(api, chat)) >= due for chat in chats),
                    "the scheduled digests",
                    process,
                )
                phase(f"scheduled digests ({due * len(chats)})", took)
                if not args.no_command:
                    start = len(api.sent)
                    for chat in chats:
                        api.user(chat).text("/digest")
                    took = await wait_until(
                        lambda: all(len(photos_to(api, chat, start)) >= due for chat in chats),
                        "the /digest replies",
                        process,
                    )
                    phase(f"/digest ({due * len(chats)} replies)", took)
                before, wall = cpu_seconds(process.pid), time.monotonic()
                await asyncio.sleep(args.idle_seconds)
                used, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - wall
                phase("idle", elapsed)
                share = used / elapsed
                ok_rss = peak * 1024 <= TARGET_MB * 1e6
                ok_cpu = share <= TARGET_IDLE
                print(
                    f"peak RSS        {mib(peak)}   target <= {TARGET_MB:g} MB  "
                    f"{'PASS' if ok_rss else 'MISS'}  (<= {TARGET_MB:g} MiB: "
                    f"{'PASS' if peak <= TARGET_MB * 1024 else 'MISS'})"
                )
                if children.peaks:
                    print(
                        f"chart process   {len(children.peaks)} started, peak "
                        f"{mib(max(children.peaks.values()))}, alive after the idle phase: "
                        f"{len(descendants(process.pid))}"
                    )
                print(
                    f"idle CPU        {share * 100:.2f}% of one core over {elapsed:.0f} s after "
                    f"the digests   target <= {TARGET_IDLE * 100:g}%  "
                    f"{'PASS' if ok_cpu else 'MISS'}"
                )
                errors = [
                    line
                    for line in log_path.read_text(errors="replace").splitlines()
                    if " ERROR " in line or "Traceback" in line
                ]
                if args.smaps:
                    files = [
                        link.readlink().name
                        for link in Path(f"/proc/{process.pid}/fd").iterdir()
                        if link.is_symlink()
                    ]
                    opened = sum(name.endswith(".db") for name in files)
                    print(f"SQLite files open in the bot (connections): {opened}")
                    print("largest parts of the bot's resident set (smaps):")
                    for kib, name in mappings(process.pid):
                        print(f"  {kib / 1024:7.1f} MiB  {name}")
                print(f"errors logged   {len(errors)}")
                for line in errors[:5]:
                    print(f"  {line}")
                return 0 if not errors else 1
            except RuntimeError as failed:
                print(f"failed: {failed}\n{log_path.read_text(errors='replace')[-3000:]}")
                return 1
            finally:
                watching.cancel()
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)
                if args.logs:
                    shutil.copy(log_path, args.logs)


# --- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace, url: str, shown: str, tmp: Path) -> int:
    print(f"database: {shown}")
    template = args.template
    if template is not None and url.startswith("sqlite") and template.exists():
        shutil.copy(template, url.removeprefix("sqlite:///"))
        print(f"history copied from {template}")
    else:
        stored, seconds = fill(url, args.reports, args.years)
        print(f"history: {stored:,} reports stored in {seconds:.1f} s")
        if template is not None and url.startswith("sqlite"):
            shutil.copy(url.removeprefix("sqlite:///"), template)
    engine = open_database(url)
    try:
        reports = history_size(engine)
        due = digests_due_now(engine, datetime.now(UTC))
    finally:
        engine.dispose()
    print(
        f"{reports:,} reports, {len(GROUPS)} groups, {due} digest kinds due in each, "
        f"2 coordinators a group (load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs)"
    )
    present = [n for n in NOT_LOCKED if importable(n)]
    if args.hide:
        print(f"hidden from the bot (not in requirements.lock): {', '.join(args.hide)}")
    elif present:
        print(
            f"importable here but not in requirements.lock: {', '.join(present)} (the bot "
            f"imports them; --hide {' '.join(present)} measures it as a lock install would)"
        )
    return asyncio.run(measure(args, url, tmp, due))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rss",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reports", type=int, default=1_000_000, help="reports (1000000)")
    parser.add_argument("--years", type=int, default=10, help="years of history (10)")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="idle CPU window (20)")
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    parser.add_argument("--template", type=Path, help="a filled SQLite file kept between runs")
    parser.add_argument("--no-command", action="store_true", help="skip the /digest phase")
    parser.add_argument(
        "--hide",
        nargs="*",
        default=[],
        metavar="PACKAGE",
        help=f"make these unimportable in the bot, as in a requirements.lock install "
        f"(found here: {' '.join(NOT_LOCKED)})",
    )
    parser.add_argument("--smaps", action="store_true", help="print the bot's largest mappings")
    parser.add_argument("--logs", type=Path, help="copy the bot's log there")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="sanad-rss-") as tmp,
        database(args.database, Path(tmp)) as (url, shown),
    ):
        return run(args, url, shown, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
