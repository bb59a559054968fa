"""Memory of a running bot: the peak resident set of `python -m bot run` once it polls,
schedules and has answered a message, with no digest drawn and no export written.

    python -m bench.startup [--root CHECKOUT] [--runs 3]

The bot process runs from `--root` (default: this checkout), so two checkouts can be
compared; it reaches the fake Bot API over HTTP (`tests.fakes.telegram_bot_server.serving`)
on a fresh SQLite file set up with examples/network.yaml. After polling has started, the
scheduler has ticked and a stranger's /start has been answered, the process's VmHWM (peak
RSS) and VmRSS are read from /proc, then it is stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import serving

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:BENCH-never-logged"
START_TIMEOUT = 60.0
STRANGER = 4242


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


async def _wait(condition: object, what: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():  # type: ignore[operator]
        if process.returncode is not None:
            raise RuntimeError(f"the bot stopped (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def measure(root: Path) -> tuple[int, int]:
    """(peak RSS, current RSS) in KiB of one `python -m bot run` from `root`."""
    api = FakeBotApi()
    polls = 0

    def count(method: str, _params: object) -> None:
        nonlocal polls
        polls += method == "getUpdates"

    api.on_request = count  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "DATABASE_URL": f"sqlite:///{data}/sanad.db",
            "DATA_DIR": data,
            "TELEGRAM_BOT_TOKEN": TOKEN,
        }
        subprocess.run(
            [sys.executable, "-m", "bot", "setup", str(root / "examples/network.yaml")],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        async with serving(api) as base_url:
            env["TELEGRAM_BASE_URL"] = base_url
            log = Path(data) / "bot.log"
            with log.open("w") as stderr:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run", cwd=root, env=env, stderr=stderr
                )
                try:
                    await _wait(lambda: polls >= 2, "polling", process)
                    await _wait(
                        lambda: "scheduler and sender started" in log.read_text(),
                        "the scheduler",
                        process,
                    )
                    api.user(STRANGER).text("/start")
                    await api.wait_for(lambda m: m.chat_id == STRANGER, timeout=START_TIMEOUT)
                    return _status_kb(process.pid, "VmHWM"), _status_kb(process.pid, "VmRSS")
                finally:
                    if process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                        await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the bot from")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    peaks = []
    for run in range(1, args.runs + 1):
        peak, current = asyncio.run(measure(args.root.resolve()))
        peaks.append(peak)
        print(f"run {run}: peak RSS {peak / 1024:.1f} MiB, RSS now {current / 1024:.1f} MiB")
    peaks.sort()
    print(f"{args.root}: median peak RSS {peaks[len(peaks) // 2] / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
