"""Delivering a broadcast through the outbox within Telegram's limits.

    python -m bench.sender [--messages 10000] [--scale 10] [--database URL]

N messages to N people go through the Sender and the real python-telegram-bot Bot to the fake
Bot API, which enforces Telegram's limits (30 messages a second overall, 1 a second per chat)
and answers 429 to any excess.

Time is scaled: the fake's limits and the sender share one clock (outbox.scaled_time) that
runs `--scale` times faster than the wall, and the sender sleeps through it. So the run lasts
1/scale of the Telegram time it stands for, and every figure below is in Telegram seconds.
Real work is scaled too (1 ms of Python at x20 counts as 20 ms): if the scale asks more
messages per wall second (30 x scale) than the machine can send, the ratio grows and the
"wall rate" line says so; lower --scale then. The sender claims at most its concurrency (8)
at a time, so at x20 (600 messages per wall second) a loaded 2-core machine runs out of Python
before Telegram time runs out.

Targets: elapsed within 1.1 x the theoretical minimum (N / 30 s), no 429, every message once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from telegram import Bot

from bench.common import broadcast_audience, database
from bot.channels.telegram_delivery import telegram_deliver
from outbox.scaled_time import ScaledTime
from outbox.sender import Sender
from storage import outbox
from storage.db import open_database, transaction
from tests.fakes.telegram_bot_api import FakeBotApi

OVERALL = 30.0  # Telegram: messages a second per bot
PER_CHAT = 1.0  # Telegram: messages a second per chat
FIRST_CHAT = 700_000_000
TOKEN = "123456:BENCH"


@dataclass
class Figures:
    messages: int
    delivered: int
    duplicates: int
    rejected_429: int
    flood_waits: int
    elapsed: float  # Telegram seconds
    real: float  # wall seconds
    enqueue_real: float

    @property
    def minimum(self) -> float:
        return self.messages / OVERALL

    @property
    def ratio(self) -> float:
        return self.elapsed / self.minimum


def prepare(url: str, messages: int, time_: ScaledTime) -> tuple[list[int], float]:
    """`messages` people on Telegram and one broadcast message to each in the outbox.
    Returns the people's ids and the wall seconds the enqueueing took."""
    return broadcast_audience(url, "telegram", FIRST_CHAT, messages, time_.now())


async def run(args: argparse.Namespace, url: str) -> Figures:
    time_ = ScaledTime(args.scale)
    _, enqueue_real = prepare(url, args.messages, time_)
    engine = open_database(url)
    fake = FakeBotApi()
    fake.limits(per_second_overall=OVERALL, per_chat_per_second=PER_CHAT, clock=time_.timestamp)
    async with Bot(TOKEN, request=fake.request(), get_updates_request=fake.request()) as bot:
        sender = Sender(
            engine,
            telegram_deliver(bot),
            per_second=OVERALL,
            per_chat_seconds=1 / PER_CHAT,
            concurrency=args.concurrency,
            clock=time_.now,
            sleep=time_.sleep,
            burst=args.burst,
        )
        start, wall = time_.elapsed(), time.perf_counter()
        finished = 0
        while finished < args.messages:
            done = await sender.run_once()
            finished += done
            if not done:
                await time_.sleep(0.05)
        elapsed, real = time_.elapsed() - start, time.perf_counter() - wall
    with transaction(engine) as session:
        counts = outbox.counts_by_status(session, broadcast_id=1)
    engine.dispose()
    per_chat = Counter(m.chat_id for m in fake.sent if m.method == "sendMessage")
    return Figures(
        messages=args.messages,
        delivered=counts["sent"],
        duplicates=sum(n - 1 for n in per_chat.values() if n > 1),
        rejected_429=fake.rejected_429,
        flood_waits=sender.stats["flood_waits"],
        elapsed=elapsed,
        real=real,
        enqueue_real=enqueue_real,
    )


def report(figures: Figures, args: argparse.Namespace, shown: str) -> bool:
    ok = (
        figures.ratio <= 1.1
        and figures.rejected_429 == 0
        and figures.delivered == figures.messages
        and figures.duplicates == 0
    )
    rows = [
        ("database", shown),
        ("time scale", f"x{args.scale:g} (Telegram seconds = wall seconds x {args.scale:g})"),
        (
            "messages delivered",
            f"{figures.delivered} of {figures.messages}, {figures.duplicates} repeated",
        ),
        ("elapsed", f"{figures.elapsed:.1f} s Telegram time ({figures.real:.1f} s wall)"),
        ("theoretical minimum", f"{figures.minimum:.1f} s ({figures.messages} / {OVERALL:g})"),
        ("ratio", f"{figures.ratio:.3f} (target <= 1.1)"),
        ("429s received", f"{figures.rejected_429} (target 0); flood waits {figures.flood_waits}"),
        ("throughput", f"{figures.delivered / figures.elapsed:.2f} messages/s Telegram time"),
        (
            "wall rate",
            f"{figures.delivered / figures.real:.0f} messages/s "
            f"(x{args.scale:g} needs {OVERALL * args.scale:.0f})",
        ),
        ("enqueue", f"{figures.messages} rows in {figures.enqueue_real:.1f} s wall"),
        ("verdict", "PASS" if ok else "MISS"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return ok


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sender",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages, one a person")
    parser.add_argument(
        "--scale", type=float, default=10.0, help="how much faster than the wall time runs (10)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument("--burst", type=float, default=5.0, help="sender's burst (5)")
    parser.add_argument(
        "--database",
        help="a database URL; PostgreSQL gets a fresh schema (default: a temporary SQLite file)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as (url, shown):
        figures = asyncio.run(run(args, url))
        return 0 if report(figures, args, shown) else 1


if __name__ == "__main__":
    sys.exit(main())
