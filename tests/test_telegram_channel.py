"""The Telegram channel as it runs for real: long polling against the (fake) Bot API,
settings for a local Bot API server, and a token that never reaches the logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from sqlmodel import select

from bot import logs
from bot.app import Sanad
from bot.channels.telegram import build_application, polling
from bot.settings import Settings
from storage.db import transaction
from storage.models import Report
from storage.people import recall
from tests.fakes.telegram_bot_api import FakeBotApi
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
    app = build_application(sanad, request=api.request(), get_updates_request=api.request())
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
    app = build_application(Sanad(settings, sanad.engine, sanad.dispatcher))
    assert app.bot.base_url.startswith("http://127.0.0.1:8081/bot")
    assert app.bot.base_file_url.startswith("http://127.0.0.1:8081/file/bot")
    assert "TEST-TOKEN" not in repr(settings)
