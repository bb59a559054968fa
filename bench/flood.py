"""One chat flooding old buttons, and everyone else's answer time.

    python -m bench.flood [--people 20] [--presses 2000] [--seconds 10] [--webhook]

`python -m bot run`'s polling loop (bot.channels.telegram, in this process) against the fake
Bot API; with `--webhook`, `python -m bot webhook`'s app instead, under uvicorn in this
process, the updates posted to it as Telegram does (`pushing_webhooks`: up to 40 at once, one
at a time per chat). `--people` registered people each ask for /help, wait for the answer,
think 0.3 s and ask again: first quietly for `--seconds`, then for as long again while one more
chat presses an old button `--presses` times as fast as the fake takes them. Printed: the
others' p50 and p95 answer time in both phases and the ratio (target: flood p95 <= 2 x quiet
p95), and how many of the presses were applied and how many answered "wait".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlmodel import select

from bench.common import partner_network
from bot.app import Sanad, assemble
from bot.channels.telegram import build_telegram, polling
from bot.channels.webhook import PATH, create_app
from bot.settings import Settings
from storage.db import transaction
from storage.models import Organization, Person
from storage.network import apply_network
from storage.types import utcnow
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import pushing_webhooks, serving_asgi

FIRST_CHAT = 900_000
THINK = 0.3
SECRET = "bench-flood-SECRET"


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


@asynccontextmanager
async def receiving(sanad: Sanad, api: FakeBotApi, webhook: bool) -> AsyncIterator[None]:
    """The bot taking the api's queued updates: by long polling, or posted to its webhook."""
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    if not webhook:
        async with polling(app, timeout=1):
            yield
        return
    web = create_app(sanad, app)
    async with (
        web.router.lifespan_context(web),
        serving_asgi(web) as root,
        pushing_webhooks(api, [root + PATH], SECRET),
    ):
        yield


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


async def run(args: argparse.Namespace, tmp: Path) -> int:
    settings = Settings(
        _env_file=None,
        telegram_bot_token="123456:FLOOD",
        database_url=f"sqlite:///{tmp / 'flood.db'}",
        data_dir=tmp / "data",
        telegram_webhook_secret=SECRET,
    )
    sanad = assemble(settings)
    register(sanad.engine, args.people)
    api = FakeBotApi()
    chats = [FIRST_CHAT + 1 + n for n in range(args.people)]
    try:
        async with receiving(sanad, api, args.webhook):
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
    print(f"updates             {'posted to the webhook' if args.webhook else 'long polling'}")
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
    parser.add_argument("--webhook", action="store_true", help="post updates to the webhook")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
