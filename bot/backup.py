"""`python -m bot backup FILE`: a consistent copy of the SQLite database, also while it runs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """The backup could not be made; the message says why and what to do."""


def sqlite_path(database_url: str) -> Path:
    """The file of a SQLite URL; PostgreSQL and in-memory databases are refused."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"backup copies SQLite files only; for {url.get_backend_name()} "
            "use its own tool, e.g. pg_dump --format=custom -f FILE DATABASE"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory database has nothing to back up")
    path = Path(url.database)
    if not path.exists():
        raise BackupError(f"no database at {path}")
    return path


def backup(database_url: str, target: Path) -> Path:
    """Copy the database to `target` with SQLite's online backup API.

    The copy is one consistent snapshot of what was committed; writers in other processes
    go on meanwhile (WAL). It is written beside `target` and renamed, so a half-made copy
    never takes the name.
    """
    source_path = sqlite_path(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    os.replace(partial, target)
    return target
