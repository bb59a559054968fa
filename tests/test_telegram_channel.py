"""The Telegram channel as it runs for real: long polling against the (fake) Bot API, through
Telegram's refusals and until SIGTERM, settings for a local Bot API server, and a token that
never reaches the logs."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot import logs
from bot.app import Sanad
from bot.channels.telegram import build_telegram, polling
from bot.settings import Settings
from storage.db import transaction
from storage.models import ProcessedUpdate, Report
from storage.people import recall
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import serving
from tests.harness import invite, plain


@pytest.fixture
def log_output(sanad: Sanad) -> Iterator[io.StringIO]:
    """Everything logged, at DEBUG, through Sanad's own logging set-up."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    token = sanad.settings.telegram_bot_token
    logs.configure([token.get_secret_value()] if token else [], logging.DEBUG, stream)
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


async def test_a_whole_report_over_long_polling(sanad: Sanad, log_output: io.StringIO) -> None:
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    code = invite(sanad, "bh_rural_girls")
    layla = api.user(301, first_name="Layla", language_code="ar")

    async def reply_with(fragment: str) -> str:
        message = await api.wait_for(
            lambda m: m.chat_id == 301 and fragment in plain(m.text or ""),
            timeout=10,
            start=len(api.sent) - 3,
        )
        return plain(message.text or "")

    async def tap(label: str) -> None:
        message = api.last_to(301)
        data = dict((plain(t), d) for t, d in api.buttons(message))[label]
        layla.press(data, message)

    async with polling(app, timeout=1):
        layla.command("start", code)
        await api.wait_for(lambda m: m.chat_id == 301 and bool(m.reply_markup), timeout=10)
        await tap("English")
        await reply_with("What would you like to do?")
        layla.command("beneficiaries")
        await reply_with("For which month?")
        await tap("November 2026")
        duplicate = layla.text("40")
        api.duplicate(duplicate)
        for question, typed in (
            ("Working children", "12"),
            ("School drop-outs", "7"),
            ("Families reached", "55"),
            ("new this month", "10"),
            ("continuing", "45"),
            ("Notes", "—"),
        ):
            await reply_with(question)
            layla.text(typed)
        await reply_with("Please check your report")
        await tap("Confirm and send")
        await reply_with("BEN-1")

    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
        assert report.answers["women_heads"] == 40
        assert recall(session, "telegram_username") == "sanad_test_bot"
    logged = log_output.getvalue()
    assert "Calling Bot API endpoint" in logged and "<secret>" in logged
    assert "TEST-TOKEN" not in logged
    assert api.commands, "the command list is published in each language"


def test_a_local_bot_api_server_serves_files_too() -> None:
    settings = Settings(_env_file=None, telegram_base_url="http://127.0.0.1:8081/bot")
    assert settings.bot_api_url == "http://127.0.0.1:8081/bot"
    assert settings.bot_file_url == "http://127.0.0.1:8081/file/bot"
    explicit = Settings(
        _env_file=None, telegram_base_url="http://a/bot", telegram_base_file_url="http://b/file/bot"
    )
    assert explicit.bot_file_url == "http://b/file/bot"


def test_the_application_uses_the_configured_server(sanad: Sanad) -> None:
    settings = sanad.settings.model_copy(update={"telegram_base_url": "http://127.0.0.1:8081"})
    app = build_telegram(Sanad(settings, sanad.engine, sanad.dispatcher))
    assert app.bot.base_url.startswith("http://127.0.0.1:8081/bot")
    assert app.bot.base_file_url.startswith("http://127.0.0.1:8081/file/bot")
    assert "TEST-TOKEN" not in repr(settings)


@pytest.mark.filterwarnings("ignore:.*retry_after.*")  # PTB's own, building its RetryAfter
async def test_polling_waits_out_a_conflict_and_a_flood_wait(
    sanad: Sanad, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process polling the same bot (409 Conflict) and Telegram asking to slow down
    (429 with retry_after) cost a wait each: the loop goes on, and the message that came
    meanwhile is applied once and answered."""
    caplog.set_level(logging.WARNING, logger="bot.channels.telegram")
    api = FakeBotApi()
    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    api.fail_next("getUpdates", status=409, description="Conflict: terminated by other getUpdates")
    api.fail_next("getUpdates", status=429, description="Too Many Requests", retry_after=1)
    layla = api.user(305, first_name="Layla", language_code="en")
    start = layla.command("start", invite(sanad, "bh_rural_girls"))
    async with polling(app, timeout=1):
        await api.wait_for(lambda m: m.chat_id == 305 and bool(m.reply_markup), timeout=20)
    logged = [record.getMessage() for record in caplog.records]
    assert any("conflict" in line for line in logged), logged
    assert any("RetryAfter" in line for line in logged), logged
    with transaction(sanad.engine) as session:
        keys = session.exec(select(ProcessedUpdate.key)).all()
    assert keys.count(f"telegram:{start['update_id']}") == 1
    assert len(api.messages_to(305)) == 1


async def until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait until `condition` holds (looked at every 100 ms), failing with `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.1)


async def test_python_m_bot_run_polls_and_stops_cleanly_on_sigterm(
    sanad: Sanad, tmp_path: Path
) -> None:
    """`python -m bot run` against the fake Bot API over HTTP: it answers a message, and on
    SIGTERM it finishes, closes its connections and exits 0."""
    api = FakeBotApi()
    log_path = tmp_path / "bot.log"
    async with serving(api) as base_url:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": "123456:TEST-TOKEN-never-logged",
            "TELEGRAM_BASE_URL": base_url,
            "DATABASE_URL": sanad.settings.database_url,
            "DATA_DIR": str(tmp_path / "data"),
            "PYTHONUNBUFFERED": "1",
        }
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                "--without-worker",
                env=env,
                stdout=log,
                stderr=log,
            )
        try:

            def logged() -> str:
                return log_path.read_text(errors="replace")

            def polling_started() -> bool:
                assert process.returncode is None, logged()[-3000:]
                return "polling for updates" in logged()

            await until(polling_started, "the bot did not start polling")
            api.user(306, first_name="Omar", language_code="en").text("/help")
            await api.wait_for(lambda m: m.chat_id == 306, timeout=30)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0, logged()[-3000:]
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = log_path.read_text(errors="replace")
    assert "polling stopped" in text
    assert "Traceback" not in text and "TEST-TOKEN" not in text
