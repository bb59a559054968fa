"""The scheduler and the sender at work: inside the bot process, and alone in a worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from telegram import Bot

from bot.app import Sanad
from bot.channels.telegram import build_telegram, polling, run_worker
from bot.metrics import Metrics
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.harness import Telegram, invite, plain, registered
from tests.test_nothing_lost import recorded

# Sunday 6 December 2026, 10:00 in Bahrain: the day before the week's recycling is due.
REMINDER_TIME = datetime(2026, 12, 6, 7, 0, 30, tzinfo=UTC)


async def test_the_bot_process_reminds_and_the_button_opens_the_form(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:  # register a worker first
        worker = telegram.person(601, "Fatima", language="en")
        await worker.says(f"/start {invite(sanad, 'bh_sitra_women')}")
        await worker.taps("English")
    clock.running(REMINDER_TIME)
    api = telegram.api  # the same Telegram: update ids go on from where they were
    app = build_telegram(
        sanad, request=api.request(), get_updates_request=api.request(), with_background=True
    )
    async with polling(app, timeout=1):
        reminder = await api.wait_for(
            lambda m: m.chat_id == 601 and "Reminder" in plain(m.text or ""), timeout=15
        )
        assert "Recycling output" in plain(reminder.text or "")
        [(label, data)] = api.buttons(reminder)
        assert label == "Fill it now"
        api.user(601, language_code="en").press(data, reminder)
        await api.wait_for(
            lambda m: m.chat_id == 601 and "For which week?" in plain(m.text or ""), timeout=10
        )


async def test_the_worker_process_sends_alone(sanad: Sanad, clock: Clock) -> None:
    async with Telegram(sanad) as telegram:
        worker = telegram.person(602, "Zainab", language="ar")
        await worker.says(f"/start {invite(sanad, 'bh_hamad_women')}")
        await worker.taps("العربية")
    clock.running(REMINDER_TIME)
    api = FakeBotApi()
    stop = asyncio.Event()
    bot = Bot("123456:TEST-TOKEN", request=api.request(), get_updates_request=api.request())
    metrics = Metrics(sanad.engine)
    served = metrics.serve(0)  # as METRICS_PORT makes `python -m bot worker` do
    assert served.server_address[0] == "127.0.0.1", "metrics are never public by default"
    running = asyncio.create_task(run_worker(sanad, stop, bot=bot, metrics=metrics))
    try:
        reminder = await api.wait_for(lambda m: m.chat_id == 602, timeout=15)
        assert "إنتاج إعادة التدوير" in plain(reminder.text or "")
        async with httpx.AsyncClient() as client:
            scraped = (await client.get(f"http://127.0.0.1:{served.server_port}/metrics")).text
        assert "sanad_send_seconds_count 1.0" in scraped
        assert "sanad_outbox_wait_seconds_count 1.0" in scraped
        assert "sanad_outbox_depth 0.0" in scraped
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        served.shutdown()


async def test_update_ids_telegram_can_no_longer_send_again_are_forgotten(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_sitra_women", 604)  # two updates
        clock.advance(days=8)
        recent = fatima.user.text("/help")
        assert await fatima._do(recent) != []
        # The harness applied them without polling: Telegram itself keeps none past a day.
        await telegram.app.bot.delete_webhook(drop_pending_updates=True)
    assert len(recorded(sanad)) == 3
    app = build_telegram(
        sanad,
        request=telegram.api.request(),
        get_updates_request=telegram.api.request(),
        with_background=True,
    )
    async with polling(app, timeout=1):
        for _ in range(100):
            if len(recorded(sanad)) == 1:
                break
            await asyncio.sleep(0.1)
    assert recorded(sanad) == {recent["update_id"]}, "a week later only the recent id is kept"
    async with Telegram(sanad, telegram.api) as again:
        assert await again.person(604, "Fatima", language="en")._do(recent) == [], (
            "a redelivery of the recent update is still recognised"
        )
