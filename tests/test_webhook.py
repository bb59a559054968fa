"""Webhook mode as Telegram uses it: updates posted over HTTP with the secret header, the
real Telegram channel behind it, the fake Bot API recording what the bot answers."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import event, func
from sqlmodel import select
from starlette.applications import Starlette

from bot import logs
from bot.app import Sanad
from bot.backup import BackupError, backup
from bot.channels.telegram import build_telegram
from bot.channels.webhook import (
    SECRET_HEADER,
    create_app,
    server_options,
    set_webhook,
    webhook_secret,
)
from bot.cli import main
from bot.metrics import Cached, Metrics
from storage.db import make_engine, transaction
from storage.models import Organization, Person, ProcessedUpdate, Report
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.harness import invite, plain

SECRET = "webhook-SECRET_never-logged"
SCRAPE_TOKEN = "scrape-TOKEN_never-logged"
TOKEN = "123456:TEST-TOKEN-never-logged"


@dataclass
class Webhook:
    api: FakeBotApi
    client: httpx.AsyncClient
    app: Starlette

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        response = await self.client.post("/telegram", json=update, headers=headers)
        return response.status_code

    async def scrape(self) -> str:
        """GET /metrics as a Prometheus server configured with METRICS_TOKEN does."""
        headers = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
        response = await self.client.get("/metrics", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    def texts_to(self, chat_id: int) -> list[str]:
        return [plain(m.text or "") for m in self.api.messages_to(chat_id)]


def with_secret(sanad: Sanad, **settings: Any) -> Sanad:
    changed = sanad.settings.model_copy(
        update={"telegram_webhook_secret": SecretStr(SECRET), **settings}
    )
    return Sanad(changed, sanad.engine, sanad.dispatcher)


@asynccontextmanager
async def serving(sanad: Sanad, **settings: Any) -> AsyncIterator[Webhook]:
    """The ASGI app with its lifespan running, as uvicorn runs it (METRICS_TOKEN set)."""
    sanad = with_secret(sanad, metrics_token=SecretStr(SCRAPE_TOKEN), **settings)
    api = FakeBotApi()
    metrics = Metrics(sanad.engine)
    application = build_telegram(
        sanad, request=api.request(), get_updates_request=api.request(), metrics=metrics
    )
    app = create_app(sanad, application, metrics)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sanad") as client:
            yield Webhook(api, client, app)


def count(sanad: Sanad, model: type) -> int:
    with transaction(sanad.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure([TOKEN, SECRET], logging.DEBUG, stream, log_format="json")
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


async def register(hook: Webhook, sanad: Sanad, user_id: int) -> None:
    """/start with an invitation, then English: the whole registration over the webhook."""
    user = hook.api.user(user_id, first_name="Layla", language_code="ar")
    assert await hook.post(user.command("start", invite(sanad, "bh_rural_girls"))) == 200
    choices = dict((plain(t), d) for t, d in hook.api.buttons(hook.api.last_to(user_id)))
    assert await hook.post(user.press(choices["English"], hook.api.last_to(user_id))) == 200
    assert any("What would you like to do?" in t for t in hook.texts_to(user_id))


async def test_without_the_secret_nothing_happens(sanad: Sanad) -> None:
    async with serving(sanad) as hook:
        user = hook.api.user(401, first_name="Mona")
        before = count(sanad, ProcessedUpdate)
        assert await hook.post(user.text("/start"), secret=None) == 403
        assert await hook.post(user.text("/start"), secret="wrong") == 403
        assert await hook.post(user.text("/start"), secret=SECRET + "x") == 403
        assert count(sanad, ProcessedUpdate) == before
        assert hook.api.messages_to(401) == []


async def test_a_registration_through_the_webhook(sanad: Sanad, log_output: io.StringIO) -> None:
    async with serving(sanad) as hook:
        await register(hook, sanad, 402)
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.address == "402")).one()
        assert person.language == "en"
    logged = log_output.getvalue()
    assert TOKEN not in logged and "TEST-TOKEN" not in logged
    assert SECRET not in logged
    lines = [json.loads(line) for line in logged.splitlines()]
    applied = [
        line
        for line in lines
        if line["message"].startswith("update telegram:") and "applied" in line["message"]
    ]
    assert applied and all("update_id" in line for line in applied)
    assert applied[-1]["person_id"] == person.id
    ours = [line for line in lines if line["logger"].startswith(("bot", "handlers"))]
    assert not [line for line in ours if "Layla" in json.dumps(line, ensure_ascii=False)], (
        "Sanad's own lines carry internal ids, never names (PTB's DEBUG lines show texts)"
    )


async def test_the_same_update_twice_has_one_effect(sanad: Sanad) -> None:
    async with serving(sanad) as hook:
        await register(hook, sanad, 403)
        user = hook.api.user(403)
        update = user.command("beneficiaries")
        assert await hook.post(update) == 200
        sent = len(hook.api.sent)
        assert await hook.post(update) == 200, "a redelivery is acknowledged"
        assert len(hook.api.sent) == sent, "and changes nothing"


async def test_health_and_metrics(sanad: Sanad) -> None:
    async with serving(sanad) as hook:
        health = await hook.client.get("/health")
        assert health.status_code == 200 and health.json() == {"database": "ok"}
        await register(hook, sanad, 405)
        text = await hook.scrape()
        assert "sanad_updates_received_total 2.0" in text
        assert "sanad_replies_sent_total" in text and "sanad_replies_sent_total 0.0" not in text
        assert "sanad_errors_total 0.0" in text
        assert "sanad_outbox_depth 0.0" in text
        assert "sanad_reply_seconds_count 2.0" in text
        assert "sanad_send_seconds_count 0.0" in text  # nothing went through the outbox yet


async def test_health_says_when_the_database_is_gone(sanad: Sanad) -> None:
    gone = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    broken = with_secret(Sanad(sanad.settings, gone, sanad.dispatcher))
    app = create_app(broken, build_telegram(broken, request=FakeBotApi().request()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sanad"
    ) as client:
        response = await client.get("/health")
    assert response.status_code == 503 and response.json() == {"database": "unreachable"}


def test_webhook_mode_needs_a_secret(sanad: Sanad) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        webhook_secret(sanad)
    bad = sanad.settings.model_copy(update={"telegram_webhook_secret": SecretStr("a b")})
    with pytest.raises(ValueError):
        webhook_secret(Sanad(bad, sanad.engine, sanad.dispatcher))
    with pytest.raises(ValueError):
        create_app(sanad, build_telegram(sanad, request=FakeBotApi().request()))


async def test_set_webhook_registers_url_and_secret(sanad: Sanad) -> None:
    api = FakeBotApi()
    bot = build_telegram(sanad, request=api.request()).bot
    await set_webhook(with_secret(sanad), "https://sanad.example.org/telegram", bot)
    assert api.webhook_url == "https://sanad.example.org/telegram"
    [params] = [params for method, params in api.calls if method == "setWebhook"]
    assert params["secret_token"] == SECRET


def test_set_webhook_from_the_command_line_refuses_without_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
    assert main(["set-webhook", "https://x.example/telegram"]) == 1
    assert "TELEGRAM_WEBHOOK_SECRET" in capsys.readouterr().err


def add_reports(sanad: Sanad, periods: list[str]) -> None:
    with transaction(sanad.engine) as session:
        organization = session.exec(
            select(Organization).where(Organization.key == "bh_rural_girls")
        ).one()
        person = Person(
            channel="telegram",
            address=f"9{len(periods)}",
            role="worker",
            organization_id=organization.id,
        )
        session.add(person)
        session.flush()
        for period in periods:
            session.add(
                Report(
                    form_id="beneficiaries",
                    group_id=organization.group_id,
                    organization_id=organization.id,
                    person_id=person.id,
                    period=period,
                    answers={"women_heads": 40},
                    submitted_at=sanad.dispatcher.clock(),
                    updated_at=sanad.dispatcher.clock(),
                )
            )


def test_backup_while_a_write_is_open(sanad: Sanad, tmp_path: Path) -> None:
    if not sanad.settings.database_url.startswith("sqlite"):
        with pytest.raises(BackupError, match="pg_dump"):
            backup(sanad.settings.database_url, tmp_path / "copy.db")
        return
    add_reports(sanad, ["2026-09", "2026-10"])
    path = sanad.settings.database_url.split("///", 1)[1]
    writer = sqlite3.connect(path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM report")
    try:
        target = backup(sanad.settings.database_url, tmp_path / "backups" / "copy.db")
    finally:
        writer.rollback()
        writer.close()
    copy = sqlite3.connect(target)
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    periods = [row[0] for row in copy.execute("SELECT period FROM report ORDER BY period")]
    copy.close()
    assert periods == ["2026-09", "2026-10"], "the copy has what was committed"


def test_backup_from_the_command_line(
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    if not settings.database_url.startswith("sqlite"):
        assert main(["backup", str(tmp_path / "copy.db")]) == 2
        assert "pg_dump" in capsys.readouterr().err
        return
    from bot.app import assemble

    assemble(settings).close()
    assert main(["backup", str(tmp_path / "copy.db")]) == 0
    assert (tmp_path / "copy.db").exists()


def queries_counted(engine: Any) -> list[str]:
    """The SQL statements `engine` runs from now on."""
    statements: list[str] = []

    def count_one(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count_one)
    return statements


async def test_metrics_are_not_on_the_public_port_without_a_token(sanad: Sanad) -> None:
    public = with_secret(sanad)
    app = create_app(public, build_telegram(public, request=FakeBotApi().request()))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sanad"
    ) as client:
        assert (await client.get("/metrics")).status_code == 404
    async with serving(sanad) as hook:
        for given in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": SCRAPE_TOKEN}):
            response = await hook.client.get("/metrics", headers=given)
            assert response.status_code == 401 and b"sanad_" not in response.content


async def test_scrapes_and_health_checks_do_not_query_the_database_each_time(
    sanad: Sanad,
) -> None:
    async with serving(sanad) as hook:
        first = await hook.scrape()
        assert (await hook.client.get("/health")).json() == {"database": "ok"}
        statements = queries_counted(sanad.engine)
        for _ in range(50):
            assert "sanad_outbox_depth 0.0" in await hook.scrape()
            assert (await hook.client.get("/health")).status_code == 200
        assert "sanad_outbox_depth" in first
        assert statements == [], "50 scrapes and health checks within the cache period"
    print(f"\n50 scrapes + 50 health checks: {len(statements)} queries")


def test_a_cached_value_is_read_again_once_its_time_is_up() -> None:
    now = [0.0]
    reads = iter(range(100))
    depth = Cached(lambda: float(next(reads)), 15.0, clock=lambda: now[0])
    assert [depth.get() for _ in range(10)] == [0.0] * 10
    now[0] = 14.9
    assert depth.get() == 0.0
    now[0] = 15.0
    assert depth.get() == 1.0 and depth.reads == 2


async def test_a_body_above_the_limit_is_refused_and_changes_nothing(sanad: Sanad) -> None:
    async with serving(sanad, webhook_max_body_bytes=4096) as hook:
        user = hook.api.user(406, first_name="Mona")
        before = count(sanad, ProcessedUpdate)
        big = user.text("/start " + "x" * 5000)
        assert await hook.post(big) == 413  # declared by Content-Length

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
            for _ in range(1024):
                yield b" " * 1024

        response = await hook.client.post(
            "/telegram", content=streamed(), headers={SECRET_HEADER: SECRET}
        )
        assert response.status_code == 413
        assert count(sanad, ProcessedUpdate) == before and hook.api.messages_to(406) == []
        assert await hook.post(user.text("/start")) == 200, "an update below the limit is taken"


async def test_a_body_that_never_ends_is_given_up_on(sanad: Sanad) -> None:
    async with serving(sanad, webhook_read_timeout=0.2) as hook:
        never = asyncio.Event()

        async def dripping() -> AsyncIterator[bytes]:
            yield b'{"update_id": 1, '
            await never.wait()  # the client stops sending and keeps the connection

        response = await hook.client.post(
            "/telegram", content=dripping(), headers={SECRET_HEADER: SECRET}
        )
        assert response.status_code == 408
        assert count(sanad, ProcessedUpdate) == 0


async def test_headers_above_the_bound_are_refused(sanad: Sanad) -> None:
    async with serving(sanad, webhook_max_header_bytes=4096) as hook:
        user = hook.api.user(407, first_name="Mona")
        padded = {SECRET_HEADER: SECRET, "X-Padding": "a" * 5000}
        response = await hook.client.post("/telegram", json=user.text("/start"), headers=padded)
        assert response.status_code == 431 and hook.api.messages_to(407) == []
        assert (
            await hook.client.get("/health", headers={"X-Padding": "a" * 5000})
        ).status_code == 431
        assert await hook.post(user.text("/start")) == 200


def test_uvicorn_is_given_bounds_on_headers_idle_time_and_connections(sanad: Sanad) -> None:
    import uvicorn

    options = server_options(sanad.settings)
    assert options["h11_max_incomplete_event_size"] == 16 * 1024
    assert options["timeout_keep_alive"] == 5 and options["limit_concurrency"] == 200
    config = uvicorn.Config(lambda: None, **options)
    assert config.h11_max_incomplete_event_size == 16 * 1024


def test_uvicorn_refuses_headers_above_the_bound(sanad: Sanad) -> None:
    """The options as `python -m bot webhook` gives them to uvicorn, on a real socket."""
    import socket
    import threading

    import uvicorn
    from starlette.routing import Route as Path_

    async def ok(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("ok")

    app = Starlette(routes=[Path_("/", ok)])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, **server_options(sanad.settings)
    )
    config.h11_max_incomplete_event_size = 4096  # as WEBHOOK_MAX_HEADER_BYTES=4096
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]

        def ask(header_bytes: int) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                padding = b"X-Padding: " + b"a" * header_bytes + b"\r\n"
                connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + padding + b"\r\n")
                return connection.recv(1024)

        assert ask(100).startswith(b"HTTP/1.1 200")
        # Larger than one read of the socket (256 KiB): h11 refuses it before it is whole.
        assert ask(300 * 1024).startswith(b"HTTP/1.1 400")  # uvicorn: "Invalid HTTP request"
    finally:
        server.should_exit = True
        thread.join(10)
