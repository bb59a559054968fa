"""One pace for a broadcast and a direct reply, through 5xx and lost answers.

    python -m bench.pace [--people 300] [--scale 5] [--database URL]

A broadcast to N people goes through the Sender and the real python-telegram-bot Bot to the
fake Bot API (30 messages a second overall, 1 a second per chat, 429 to any excess). On the
way, every 25th message is answered 502 without being taken (a server error) and every 40th
is taken but answered 502 (a lost answer: the person has it, the sender cannot know); once
half the people have theirs, the person who got the latest one sends a message and gets a
direct reply, paced as `bot.channels.telegram._send_replies` paces it (the same `Pace`).

Time is scaled as in bench.sender (outbox.scaled_time): figures are in Telegram seconds.
Printed: 429s (target 0), the most messages Telegram took in any one-second window (target
<= 30), the average rate over the run against the limit (target >= 0.9), and how many
messages may have reached their person twice (counted in the broadcast's report).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from bisect import bisect_left
from collections import Counter
from pathlib import Path
from typing import Any

from telegram import Bot

from bench.common import database
from bench.sender import FIRST_CHAT, OVERALL, PER_CHAT, TOKEN, prepare
from bot.channels.telegram_delivery import send_text, telegram_deliver
from outbox.pace import Pace
from outbox.scaled_time import ScaledTime
from outbox.sender import Sender
from storage import outbox
from storage.db import open_database, transaction
from tests.fakes.telegram_bot_api import FakeBotApi

SERVER_ERROR_EVERY = 25
LOST_ANSWER_EVERY = 40
REPLY = "Direct reply in the middle of the broadcast"


def most_in_a_window(times: list[float], window: float = 1.0) -> int:
    """The most of `times` (sorted) inside any half-open window [t, t + window)."""
    return max((bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    time_ = ScaledTime(args.scale)
    prepare(url, args.people, time_)
    engine = open_database(url)
    api = FakeBotApi()
    api.limits(per_second_overall=OVERALL, per_chat_per_second=PER_CHAT, clock=time_.timestamp)
    taken: list[float] = []  # when Telegram took a message (Telegram seconds)
    calls = Counter[str]()

    def injected(method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        if method != "sendMessage" or str(params.get("text", "")).startswith(REPLY):
            return None
        calls["broadcast"] += 1
        if calls["broadcast"] % SERVER_ERROR_EVERY == 0:
            calls["server errors"] += 1
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if calls["broadcast"] % LOST_ANSWER_EVERY == 0:
            limited = api._check_limits(int(params["chat_id"]))
            if limited is not None:
                return limited
            api._send_message(params, None)  # Telegram takes it; its answer is lost
            calls["lost answers"] += 1
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        return None

    api.on_request = injected  # type: ignore[assignment]
    count_sent = api._add_sent

    def stamped(message: Any) -> None:
        taken.append(time_.timestamp())
        count_sent(message)

    api._add_sent = stamped  # type: ignore[method-assign]
    pace = Pace(OVERALL, 1 / PER_CHAT, time_.timestamp, time_.sleep)
    async with Bot(TOKEN, request=api.request(), get_updates_request=api.request()) as bot:
        sender = Sender(
            engine,
            telegram_deliver(bot),
            clock=time_.now,
            sleep=time_.sleep,
            pace=pace,
            idle_seconds=0.05,
        )
        stop = asyncio.Event()
        start = time_.elapsed()
        running = asyncio.create_task(sender.run_forever(stop))
        while len(taken) < args.people // 2:
            await time_.sleep(0.05)
        chat = api.sent[-1].chat_id  # the person who just got the broadcast writes in
        await pace.reply_turn(("telegram", str(chat)))
        try:
            await send_text(bot, chat, f"{REPLY}.")
        finally:
            pace.done(("telegram", str(chat)), outbox=False)
        while True:
            with transaction(engine) as session:
                counts = outbox.counts_by_status(session, broadcast_id=1)
            if counts["pending"] + counts["sending"] == 0:
                break
            await time_.sleep(0.2)
        elapsed = time_.elapsed() - start
        stop.set()
        await running
    with transaction(engine) as session:
        resent = outbox.resent_total(session)
    engine.dispose()
    received = Counter(
        m.chat_id
        for m in api.sent
        if m.chat_id >= FIRST_CHAT and not (m.text or "").startswith(REPLY)
    )
    times = sorted(taken)
    span = times[-1] - times[0] if len(times) > 1 else 1.0
    return {
        "people": args.people,
        "delivered": counts["sent"],
        "taken": len(times),
        "twice": sum(n - 1 for n in received.values() if n > 1),
        "resent": resent,
        "rejected_429": api.rejected_429,
        "most_in_a_second": most_in_a_window(times),
        "rate": (len(times) - 1) / span,
        "elapsed": elapsed,
        "server_errors": calls["server errors"],
        "lost_answers": calls["lost answers"],
    }


def report(f: dict[str, Any], args: argparse.Namespace, shown: str) -> bool:
    ok = (
        f["rejected_429"] == 0
        and f["most_in_a_second"] <= OVERALL
        and f["rate"] >= 0.9 * OVERALL
        and f["delivered"] == f["people"]
        and f["twice"] <= f["resent"]
    )
    rows = [
        ("database", shown),
        ("time scale", f"x{args.scale:g}"),
        ("broadcast", f"{f['delivered']} of {f['people']} delivered, 1 direct reply between"),
        ("injected", f"{f['server_errors']} server errors, {f['lost_answers']} lost answers"),
        ("429s received", f"{f['rejected_429']} (target 0)"),
        ("most in any second", f"{f['most_in_a_second']} (target <= {OVERALL:g})"),
        (
            "average rate",
            f"{f['rate']:.2f}/s = {f['rate'] / OVERALL:.3f} x the limit (target >= 0.9)",
        ),
        ("elapsed", f"{f['elapsed']:.1f} s Telegram time for {f['taken']} messages taken"),
        ("maybe twice", f"{f['resent']} counted in the report; {f['twice']} arrived twice"),
        ("verdict", "PASS" if ok else "MISS"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pace", description=__doc__)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--scale", type=float, default=5.0)
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as (url, shown):
        figures = asyncio.run(run(args, url))
        return 0 if report(figures, args, shown) else 1


if __name__ == "__main__":
    sys.exit(main())
