"""A broadcast to N people on WhatsApp through the outbox, within the number's throughput.

    python -m bench.whatsapp_broadcast [--messages 10000] [--scale 1] [--database URL]

N people whose 24-hour window is open get one announcement each, through the Sender, the
WhatsApp `Deliver` and the Graph API client over HTTP to the fake Cloud API, which enforces
80 messages a second (130429 beyond) and the pair rate, and answers every request.

Time may be scaled (outbox.scaled_time): the fake's limits and the sender share one clock
running `--scale` times faster than the wall; figures are in WhatsApp seconds. Real work is
scaled too: at x2 a machine must send 160 messages per wall second.

Targets: elapsed within 1.1 x the theoretical minimum (N / 80 s), no throughput error, every
message once.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from pydantic import SecretStr

from bench.common import broadcast_audience
from bot.channels.whatsapp.client import CloudClient
from bot.channels.whatsapp.deliver import PER_CHAT_SECONDS, SENDING_BURST, whatsapp_deliver
from outbox.pace import Pace
from outbox.scaled_time import ScaledTime
from outbox.sender import Sender
from storage import outbox
from storage.db import open_database, transaction
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud

RATE = 80.0
FIRST = 97337000000


def prepare(url: str, messages: int, time_: ScaledTime) -> None:
    """People whose window is open (they wrote just now), one announcement each."""
    broadcast_audience(url, "whatsapp", FIRST, messages, time_.now())


async def run(
    messages: int, scale: float, url: str, concurrency: int | None, batches: bool = False
) -> None:
    time_ = ScaledTime(scale)
    prepare(url, messages, time_)
    engine = open_database(url)
    api = FakeCloudApi(clock=time_.timestamp, messages_per_second=RATE)
    api.statuses = False
    for n in range(messages):  # they wrote just now, as far as WhatsApp knows too
        api.last_inbound[str(FIRST + n)] = time_.timestamp()
    async with serving_cloud(api) as base:
        client = CloudClient(base, api.phone_number_id, SecretStr(api.token))
        sender = Sender(
            engine,
            whatsapp_deliver(client, engine, time_.now),
            # as bot.channels.whatsapp.deliver.whatsapp_pace, on the scaled clock
            pace=Pace(RATE, PER_CHAT_SECONDS, time_.timestamp, time_.sleep, SENDING_BURST),
            concurrency=concurrency,
            clock=time_.now,
            sleep=time_.sleep,
        )
        start, wall = time_.timestamp(), time.perf_counter()
        if batches:  # claim, send and record `concurrency` at a time, batch after batch
            finished = 0
            while finished < messages:
                done = await sender.run_once()
                finished += done
                if not done:
                    await time_.sleep(0.05)
        else:  # as a running bot does (bot.background): a message claimed as one is done
            stop = asyncio.Event()
            running = asyncio.create_task(sender.run_forever(stop))
            await api.wait_for_all(lambda m: True, messages, timeout=3600)
            stop.set()
            await running
        # from the start to the last message WhatsApp took, in its own clock
        elapsed, real = max(m.at for m in api.sent) - start, time.perf_counter() - wall
        await client.aclose()
    with transaction(engine) as session:
        counts = outbox.counts_by_status(session, broadcast_id=1)
    engine.dispose()
    per_person = Counter(m.to for m in api.sent)
    minimum = messages / RATE
    repeated = sum(n - 1 for n in per_person.values() if n > 1)
    ok = (
        elapsed <= 1.1 * minimum
        and not api.errors.get(130429)
        and counts["sent"] == messages
        and not repeated
    )
    print(f"messages delivered   {counts['sent']} of {messages}, {repeated} repeated")
    print(f"elapsed              {elapsed:.1f} s WhatsApp time ({real:.1f} s wall, x{scale:g})")
    print(f"theoretical minimum  {minimum:.1f} s ({messages} / {RATE:g})")
    print(f"ratio                {elapsed / minimum:.3f} (target <= 1.1)")
    print(f"throughput errors    {api.errors.get(130429, 0)} (target 0); all errors {api.errors}")
    print(f"verdict              {'PASS' if ok else 'MISS'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=None)  # the bot's own
    parser.add_argument("--database", default=None, help="a PostgreSQL URL; default SQLite")
    parser.add_argument(
        "--batches", action="store_true", help="Sender.run_once batch after batch (the old loop)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database or f"sqlite:///{Path(folder) / 'bench.db'}"
        asyncio.run(run(args.messages, args.scale, url, args.concurrency, args.batches))


if __name__ == "__main__":
    main()
