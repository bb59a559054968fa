"""What an attacker or a careless operator could get at: SQL built from strings, files served
over HTTP, secrets in logs (the logs of real processes are scanned in tests/test_crash.py and
tests/test_telegram_channel.py)."""

from __future__ import annotations

import ast
import io
import os
import stat
from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.app import Sanad
from bot.channels.telegram import build_telegram
from bot.channels.webhook import create_app
from tests.conftest import ROOT
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.test_cli import EXAMPLE_NETWORK, Shell, shell  # noqa: F401  (fixture)

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
    app = create_app(sanad, build_telegram(sanad, request=FakeBotApi().request()))
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


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_files_sanad_writes_are_its_owners_only(shell: Shell) -> None:  # noqa: F811
    """The database, backups, a kept photo and the data folder, as `python -m bot` makes them
    in a fresh folder (the database set in the data folder, as by default)."""
    data = shell.folder / "data"
    shell.export("DATABASE_URL", f"sqlite:///{data / 'sanad.db'}")
    assert shell.sanad("setup", str(EXAMPLE_NETWORK)).code == 0
    assert mode(data) == 0o700
    written = [p for p in data.rglob("*") if p.is_file()]
    assert written and {mode(p) for p in written} == {0o600}, written

    backups = shell.folder / "backups"
    assert shell.sanad("backup", str(backups) + os.sep).code == 0
    assert mode(backups) == 0o700
    assert {mode(p) for p in backups.iterdir()} == {0o600}
    single = shell.folder / "copy.db"
    assert shell.sanad("backup", str(single)).code == 0 and mode(single) == 0o600


def test_backups_into_a_folder_keep_the_newest(shell: Shell) -> None:  # noqa: F811
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    backups = shell.folder / "backups"
    backups.mkdir()
    (backups / "notes.txt").write_text("not a backup: never removed")
    old = [backups / f"sanad-2026010{n}-000000.db" for n in range(1, 5)]
    for path in old:
        path.write_bytes(b"")
    ran = shell.sanad("backup", str(backups), "--keep", "3")
    assert ran.code == 0 and "2 older copies removed (keeping 3)" in ran.out
    kept = sorted(p.name for p in backups.iterdir())
    assert kept[:3] == ["notes.txt", old[2].name, old[3].name] and len(kept) == 4
    shell.export("BACKUP_KEEP", "1")
    newest = shell.sanad("backup", str(backups)).out.split("copied to ")[1].split(";")[0]
    remaining = [p for p in backups.iterdir() if p.suffix == ".db"]
    assert [str(p) for p in remaining] == [newest], "BACKUP_KEEP=1 keeps the newest copy"


def test_a_console_photo_is_kept_private(sanad: Sanad, tmp_path: Path) -> None:
    from bot.channels.console import ConsoleChat

    photo = tmp_path / "field.jpg"
    photo.write_bytes(b"\xff\xd8jpeg")
    photo.chmod(0o644)
    chat = ConsoleChat(sanad.dispatcher, "me", sanad.settings.media_dir, io.StringIO())
    kept = chat.keep(photo)
    assert mode(kept) == 0o600 and mode(sanad.settings.media_dir) == 0o700
