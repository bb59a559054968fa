"""Opening the database: SQLite (WAL) by default, PostgreSQL when it grows. Schema by Alembic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import Session, create_engine

import migrations
from storage import wal
from storage.hot import HotStatement

if TYPE_CHECKING:
    from alembic.config import Config


#: Each SQLite connection's page cache: 512 KiB (SQLite's default is 2,000 KiB). The pool keeps a
#: connection for each thread that used the database (3 in a running bot), and the digests
#: fill every cache they run on; reads past the cache come from the operating system's file
#: cache. bench.rss: 3-4 MiB less peak RSS with a million reports; bench.digests: the same
#: digest times.
SQLITE_CACHE = "PRAGMA cache_size=-512"  # negative: KiB, so 512 KiB


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        _ensure_parent_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _ensure_parent_dir(url: str) -> None:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(SQLITE_CACHE)
    cursor.execute(wal.BACKSTOP)
    cursor.close()


def alembic_config() -> Config:
    """Alembic's configuration, pointing at the `migrations` package wherever it is installed.

    Alembic is imported here and in `migrate`, not with this module: most processes that
    read the database never migrate it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it in an empty database).

    A database already at the newest revision is left without importing Alembic (about 10 MB
    of a running bot's memory): its version is read with one query."""
    if _stored_revision(engine) == newest_revision():
        return
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@cache
def newest_revision() -> str:
    """The revision no other migration revises: the head of the migrations' single chain."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in Path(migrations.__file__).parent.joinpath("versions").glob("*.py"):
        found = _REVISION.search(path.read_text(encoding="utf-8"))
        if found is None:
            continue
        revisions.add(found["revision"])
        if found["down"] != "None":
            revised.add(found["down"].strip("\"'"))
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


_REVISION = re.compile(
    r"^revision = [\"'](?P<revision>[^\"']+)[\"']\s*$.*?^down_revision = (?P<down>\S+)\s*$",
    re.M | re.S,
)


def _stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the database; None for an empty one."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def open_database(url: str) -> Engine:
    """An engine on an up-to-date schema."""
    engine = make_engine(url)
    migrate(engine)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work is committed together, or not at all."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def insert_new(
    runner: Session | Connection, table: Table, values: dict[str, Any], key: list[str]
) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING; True if the row was new. Race-safe, one trip."""
    dialect = runner.dialect if isinstance(runner, Connection) else runner.get_bind().dialect
    statement = _insert_new_statement(dialect.name, table, tuple(key))
    return statement.first(runner, values) is not None


@cache
def _insert_new_statement(dialect: str, table: Table, key: tuple[str, ...]) -> HotStatement:
    """`insert_new_returning`, hot: the dispatcher records every incoming update with it."""
    return HotStatement(insert_new_returning(dialect, table, key))


@cache
def insert_new_returning(dialect: str, table: Table, key: tuple[str, ...]) -> ReturningInsert[Any]:
    """INSERT … ON CONFLICT (key) DO NOTHING RETURNING key, built once per table: the values
    come as parameters, so SQLAlchemy's statement cache key is computed once too (building and
    keying the statement cost more than running it). Run with a list of rows, SQLAlchemy sends
    them in one statement ("insertmanyvalues") and returns the keys of the new ones."""
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
    else:
        raise NotImplementedError(f"no conflict-free insert on {dialect}")
    return statement.returning(*(table.c[k] for k in key))
