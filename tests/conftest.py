"""Shared fixtures: a database (SQLite, and PostgreSQL when it answers), an assembled Sanad,
the example network, and Telegram chats through the fake Bot API."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from bot.app import Sanad, assemble
from bot.settings import Settings
from storage.db import make_engine, transaction
from storage.network import apply_network, read_network

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_NETWORK = ROOT / "examples" / "network.yaml"
POSTGRES_URL = os.environ.get(
    "SANAD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reason() -> str | None:
    """None when PostgreSQL answers, else why its tests are skipped."""
    try:
        dsn = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, connect_timeout=2):
            return None
    except psycopg.Error as error:
        return (
            f"PostgreSQL not reachable at {POSTGRES_URL} ({error.__class__.__name__}); "
            "set SANAD_TEST_POSTGRES to run these tests against it"
        )


POSTGRES_SKIP = _postgres_reason()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sanad.db'}"
        return
    if POSTGRES_SKIP:
        pytest.skip(POSTGRES_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    # application_name: a test that plays a database restart closes only its own sessions.
    yield (f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}&application_name={schema}")
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


class Clock:
    """A clock the tests move by hand; starts on a Sunday morning in Bahrain.

    `running()` lets it tick along with real time from where it stands, for tests where
    background work (the sender's rate limits) needs time to pass.
    """

    def __init__(self, start: datetime = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)) -> None:
        self.now = start
        self._since: float | None = None

    def __call__(self) -> datetime:
        if self._since is None:
            return self.now
        return self.now + timedelta(seconds=time.monotonic() - self._since)

    def running(self, start: datetime) -> None:
        self.now = start
        self._since = time.monotonic()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        telegram_bot_token="123456:TEST-TOKEN-never-logged",
        database_url=database_url,
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def sanad(settings: Settings, clock: Clock) -> Iterator[Sanad]:
    """Sanad assembled on the test database, with the example network loaded."""
    app = assemble(settings, clock=clock)
    with transaction(app.engine) as session:
        apply_network(session, read_network(EXAMPLE_NETWORK))
    yield app
    app.close()


@pytest.fixture(autouse=True)
def _umask_restored() -> Iterator[None]:
    """`python -m bot` (main, run in-process by some tests) makes the process's files private."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)
