"""What an attacker or a careless operator could get at: SQL built from strings, files served
over HTTP, secrets in logs (the logs of real processes are scanned in tests/test_crash.py and
tests/test_telegram_channel.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.app import Sanad
from bot.channels.telegram import build_application
from bot.channels.webhook import create_app
from tests.conftest import ROOT
from tests.fakes.telegram_bot_api import FakeBotApi

PACKAGES = (
    "bot",
    "handlers",
    "storage",
    "forms",
    "monitoring",
    "outbox",
    "exports",
    "locales",
    "migrations",
)
RAW_SQL_CALLS = {"text", "execute", "exec_driver_sql", "executescript"}


def raw_sql_built_from_strings(files: list[Path]) -> list[str]:
    """Calls that take SQL text (text(), execute(), ...) given anything but a literal: an
    f-string, a concatenation, a % or .format() would put values into the statement itself."""
    found = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else node.func.id
                if isinstance(node.func, ast.Name)
                else ""
            )
            first = node.args[0]
            built = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call)
                and isinstance(first.func, ast.Attribute)
                and first.func.attr == "format"
            )
            if name in RAW_SQL_CALLS and built:
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_sql_statement_is_built_from_strings() -> None:
    """Every value reaches the database as a bound parameter: statements are SQLAlchemy
    expressions or literal SQL text, never text with values pasted in."""
    ours = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
    assert len(ours) > 50
    assert raw_sql_built_from_strings(ours) == []


def test_the_check_sees_values_pasted_into_sql(tmp_path: Path) -> None:
    sample = tmp_path / "unsafe.py"
    sample.write_text(
        "name = input()\n"
        "session.execute(text(f\"SELECT * FROM person WHERE name = '{name}'\"))\n"
        'connection.exec_driver_sql("DELETE FROM report WHERE id = " + name)\n'
        'connection.execute("SELECT {}".format(name))\n'
        'connection.execute(text("SELECT 1"))\n'
    )
    assert sorted(raw_sql_built_from_strings([sample])) == [
        "unsafe.py:2",
        "unsafe.py:3",
        "unsafe.py:4",
    ]


async def test_the_webhook_serves_no_files(sanad: Sanad) -> None:
    """Photos given on the console and digest charts live under DATA_DIR; the web process
    serves two routes (three with METRICS_TOKEN) and nothing under any directory."""
    media = sanad.settings.media_dir
    media.mkdir(parents=True, exist_ok=True)
    (media / "photo.jpg").write_bytes(b"\xff\xd8private")
    settings = sanad.settings.model_copy(update={"telegram_webhook_secret": SecretStr("s3cret")})
    sanad = Sanad(settings, sanad.engine, sanad.dispatcher)
    app = create_app(sanad, build_application(sanad, request=FakeBotApi().request()))
    assert sorted(route.path for route in app.routes) == ["/health", "/telegram"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sanad"
    ) as client:
        for path in (
            "/media/photo.jpg",
            "/data/media/photo.jpg",
            "/photo.jpg",
            "/telegram/../media/photo.jpg",
            "/static/photo.jpg",
        ):
            response = await client.get(path)
            assert response.status_code in (404, 405) and b"private" not in response.content
