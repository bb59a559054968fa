"""CPU of a running bot with nothing to do.

    python -m bench.idle [--seconds 30] [--database URL] [--worker]

Starts `python -m bot run` (or `python -m bot worker` with --worker) against the fake Bot API
served over HTTP, waits until it is at work, lets it settle, then reads its CPU time (user +
system, /proc) over `--seconds` of idling: long polling held open by the fake, the sender
asleep until woken, the scheduler between ticks. Target: at most 1% of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import database
from storage.db import open_database
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import serving

TOKEN = "123456:IDLE-BENCH"
READY = "scheduler and sender started"
SETTLE_SECONDS = 5.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(args: argparse.Namespace, url: str, tmp: Path) -> float:
    open_database(url).dispose()  # migrated before, so the start is not what is measured
    api = FakeBotApi()
    async with serving(api) as base_url:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": base_url,
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp / "data"),
            "PYTHONUNBUFFERED": "1",
        }
        log_path = tmp / "bot.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "worker" if args.worker else "run"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while READY not in log_path.read_text(errors="replace"):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise SystemExit(log_path.read_text(errors="replace")[-2000:])
                    await asyncio.sleep(0.2)
                await asyncio.sleep(SETTLE_SECONDS)
                before, wall = cpu_seconds(process.pid), time.monotonic()
                await asyncio.sleep(args.seconds)
                used, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - wall
            finally:
                process.terminate()
                process.wait(timeout=30)
    return used / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    parser.add_argument("--worker", action="store_true", help="measure `python -m bot worker`")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as (url, shown):
        share = asyncio.run(measure(args, url, Path(tmp)))
    ok = share <= 0.01
    print(f"database        {shown}")
    print(f"process         python -m bot {'worker' if args.worker else 'run'}")
    print(f"idle CPU        {share * 100:.2f}% of one core over {args.seconds:g} s (target <= 1%)")
    print(f"verdict         {'PASS' if ok else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
