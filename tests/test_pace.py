"""One pace per channel, shared by a channel's direct replies and its outbox messages, through
the fake platforms (which refuse what goes over their limits: Telegram 429, WhatsApp 130429).

Time here is a clock the test holds (`HeldClock`) or runs faster (`ScaledTime`); the pace, the
sender and the fakes' limits all read it, so what the fakes refuse is what the pace let
through, whatever the machine's speed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import SecretStr
from telegram import Bot

from bot.app import Sanad
from bot.channels.base import by_channel
from bot.channels.telegram import build_telegram, polling
from bot.channels.telegram_delivery import telegram_deliver
from bot.channels.whatsapp.client import CloudClient
from bot.channels.whatsapp.deliver import whatsapp_deliver
from outbox.pace import Pace
from outbox.scaled_time import ScaledTime
from outbox.sender import Sender
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.whatsapp_cloud import FakeCloudApi, serving_cloud
from tests.test_flood import until
from tests.test_outbox import FIRST_CHAT, PaceClock, counts, people, put
from tests.test_whatsapp_outbox import enqueue
from tests.test_whatsapp_outbox import people as whatsapp_people


class HeldClock:
    """Seconds that pass only when the test says so; `sleep` waits until they have."""

    def __init__(self, start: float) -> None:
        self.now = start
        self._moved = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        while self.now < until:
            await self._moved.wait()


async def test_the_messages_of_one_answer_past_the_chat_burst_are_spaced() -> None:
    time = PaceClock()
    pace = Pace(30, 1.0, time, time.sleep, per_chat_burst=2)
    chat = ("telegram", "5001")
    start = time.now
    for sent_before in range(2):  # an answer's first two messages go at once ...
        await pace.reply_turn(chat, sent_before)
        pace.done(chat, outbox=False)
    assert time.now == start
    await pace.reply_turn(chat, 2)  # ... the third waits a second after the second's answer
    assert time.now - start >= 1.0
    pace.done(chat, outbox=False)
    start = time.now
    await pace.reply_turn(chat)  # the answer to the person's next message: their pace
    assert time.now == start


async def test_replies_and_outbox_messages_keep_the_chat_limit_and_other_chats_go_meanwhile(
    sanad: Sanad, clock: Clock
) -> None:
    """A chat that just got an outbox message waits its second for the reply to a message of
    its person, while another chat of the same batch is answered at once; an outbox message
    after that reply waits its second too. Telegram's fake refuses a second message to a chat
    within a second (429): none is refused."""
    a, b = people(sanad, 2)
    chat_a, chat_b = FIRST_CHAT, FIRST_CHAT + 1
    held = HeldClock(clock().timestamp())
    api = FakeBotApi()
    api.limits(per_second_overall=30, per_chat_per_second=1, clock=held)
    pace = Pace(30, 1.0, held, held.sleep, per_chat_burst=1)
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request(), pace=pace)
    async with Bot("123456:TEST", request=api.request()) as bot:
        sender = Sender(
            sanad.engine, telegram_deliver(bot), clock=held.datetime, sleep=held.sleep, pace=pace
        )
        put(sanad, clock, a, "before", "The meeting is on Thursday.")
        assert await sender.run_once() == 1  # the outbox message reaches chat A now
        api.user(chat_a, first_name="A").text("hello")  # both write, fetched in one batch
        api.user(chat_b, first_name="B").text("hello")
        async with polling(app, timeout=1):
            await api.wait_for(lambda m: m.chat_id == chat_b, timeout=10)
            # B is answered while A's reply waits for A's second (the clock stands still)
            assert [m.text for m in api.messages_to(chat_a)] == ["The meeting is on Thursday."]
            held.advance(1.01)
            reply = await api.wait_for(
                lambda m: m.chat_id == chat_a and m.text != "The meeting is on Thursday."
            )
            assert len(api.messages_to(chat_a)) == 2
            put(sanad, clock, a, "after", "Bring the receipts.")
            later = asyncio.create_task(sender.run_once())
            await until(lambda: counts(sanad)["sending"] == 1)  # claimed: it waits A's second
            assert len(api.messages_to(chat_a)) == 2
            held.advance(1.01)
            assert await later == 1
    assert api.messages_to(chat_a)[-1].text == "Bring the receipts."
    assert reply.chat_id == chat_a
    assert api.rejected_429 == 0


async def test_a_flood_wait_on_telegram_does_not_hold_whatsapp(sanad: Sanad, clock: Clock) -> None:
    """One sender, two channels, a pace each: while Telegram asks the bot to wait a minute,
    every WhatsApp message goes out (at WhatsApp's rate, not Telegram's), and the Telegram
    messages wait in the outbox, not in the sender's slots."""
    telegram_people = people(sanad, 5)
    addresses = whatsapp_people(sanad, clock, 20)
    time = ScaledTime(factor=20, start=clock())
    telegram_api = FakeBotApi()
    telegram_api.limits(per_second_overall=30, per_chat_per_second=1, clock=time.timestamp)
    telegram_api.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 60", retry_after=60
    )
    whatsapp_api = FakeCloudApi(clock=time.timestamp)
    whatsapp_api.statuses = False
    for address in addresses:
        whatsapp_api.last_inbound[address] = time.timestamp()
    paces = {
        "telegram": Pace(30, 1.0, time.timestamp, time.sleep),
        "whatsapp": Pace(80, 1.0, time.timestamp, time.sleep),
    }
    for person in telegram_people:
        put(sanad, clock, person, f"t{person}", "Telegram news")
    for address in addresses:
        enqueue(sanad, clock, address, "broadcast", f"WhatsApp news {address}")
    async with (
        serving_cloud(whatsapp_api) as base,
        Bot("123456:TEST", request=telegram_api.request()) as bot,
    ):
        client = CloudClient(base, whatsapp_api.phone_number_id, SecretStr(whatsapp_api.token))
        deliver = by_channel(
            {
                "telegram": telegram_deliver(bot),
                "whatsapp": whatsapp_deliver(client, sanad.engine, time.now),
            }
        )
        sender = Sender(
            sanad.engine, deliver, clock=time.now, sleep=time.sleep, pace=paces, idle_seconds=0.5
        )
        stop = asyncio.Event()
        running = asyncio.create_task(sender.run_forever(stop))
        await whatsapp_api.wait_for_all(lambda m: True, len(addresses), timeout=30)
        paused = paces["telegram"].paused_for()
        stop.set()
        await running
        await client.aclose()
    assert paused > 0, "every WhatsApp message went out during Telegram's flood wait"
    assert [m for m in telegram_api.sent if m.method == "sendMessage"] == []
    assert sender.stats["flood_waits"] == 1
    assert whatsapp_api.errors == {}
    assert sorted(m.to for m in whatsapp_api.sent) == sorted(addresses)
