"""One chat flooding old buttons, and everyone else's answer time.

    python -m bench.flood [--people 20] [--presses 2000] [--seconds 10]

`python -m bot run`'s polling loop (the real Application, in this process) against the fake
Bot API. `--people` registered people each ask for /help, wait for the answer, think 0.3 s and
ask again: first quietly for `--seconds`, then for as long again while one more chat presses
an old button `--presses` times as fast as the fake takes them. Printed: the others' p50 and
p95 answer time in both phases and the ratio (target: flood p95 <= 2 x quiet p95), and how
many of the presses were applied and how many answered "wait".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlmodel import select

from bench.common import partner_network
from bot.app import assemble
from bot.channels.telegram import build_application, polling
from bot.settings import Settings
from storage.db import transaction
from storage.models import Organization, Person
from storage.network import apply_network
from storage.types import utcnow
from tests.fakes.telegram_bot_api import FakeBotApi

FIRST_CHAT = 900_000
THINK = 0.3


def register(sanad_engine: object, people: int) -> None:
    with transaction(sanad_engine) as session:  # type: ignore[arg-type]
        apply_network(session, partner_network("flood", 1))
        session.flush()
        organization = session.exec(select(Organization).where(Organization.key == "flood_0")).one()
        session.add_all(
            Person(
                channel="telegram",
                address=str(FIRST_CHAT + n),
                display_name=f"Person {n}",
                language="en",
                role="worker",
                organization_id=organization.id,
                created_at=utcnow(),
            )
            for n in range(people + 1)
        )


async def ask(api: FakeBotApi, chat: int, until: float, latencies: list[float]) -> None:
    person = api.user(chat, language_code="en")
    while time.perf_counter() < until:
        seen = len(api.messages_to(chat))
        started = time.perf_counter()
        person.command("help")
        while len(api.messages_to(chat)) <= seen:
            await api._sent_signal.wait(5)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(THINK)


async def flood(api: FakeBotApi, chat: int, presses: int) -> None:
    noisy = api.user(chat, language_code="en")
    noisy.command("help")
    while not api.messages_to(chat):
        await api._sent_signal.wait(5)
    old = api.messages_to(chat)[-1]
    for n in range(presses):
        noisy.press("lang:en", old)
        if n % 50 == 0:
            await asyncio.sleep(0)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace, tmp: Path) -> int:
    settings = Settings(
        _env_file=None,
        telegram_bot_token="123456:FLOOD",
        database_url=f"sqlite:///{tmp / 'flood.db'}",
        data_dir=tmp / "data",
    )
    sanad = assemble(settings)
    register(sanad.engine, args.people)
    api = FakeBotApi()
    app = build_application(sanad, request=api.request(), get_updates_request=api.request())
    chats = [FIRST_CHAT + 1 + n for n in range(args.people)]
    try:
        async with polling(app, timeout=1):
            quiet: list[float] = []
            end = time.perf_counter() + args.seconds
            await asyncio.gather(*(ask(api, chat, end, quiet) for chat in chats))
            flooded: list[float] = []
            end = time.perf_counter() + args.seconds
            await asyncio.gather(
                flood(api, FIRST_CHAT, args.presses),
                *(ask(api, chat, end, flooded) for chat in chats),
            )
            while api.pending_updates:
                await asyncio.sleep(0.1)
    finally:
        sanad.close()
    waits = sum(1 for a in api.callback_answers if "Too many presses" in str(a.get("text", "")))
    answered = len(api.callback_answers)
    ratio = p95(flooded) / p95(quiet)
    print(f"people answered     {args.people}, one chat pressing {args.presses} times")
    print(
        f"quiet               p50 {statistics.median(quiet) * 1000:.1f} ms, "
        f"p95 {p95(quiet) * 1000:.1f} ms ({len(quiet)} answers)"
    )
    print(
        f"while one floods    p50 {statistics.median(flooded) * 1000:.1f} ms, "
        f"p95 {p95(flooded) * 1000:.1f} ms ({len(flooded)} answers)"
    )
    print(f"p95 ratio           {ratio:.2f} (target <= 2)")
    print(f"presses             {answered} answered, {waits} of them 'wait' (dropped)")
    print(f"verdict             {'PASS' if ratio <= 2 else 'MISS'}")
    return 0 if ratio <= 2 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--presses", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
