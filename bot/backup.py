"""`python -m bot backup FILE|FOLDER`: a consistent copy of the SQLite database, also while it
runs. Given a folder, the copy is named by its time (sanad-YYYYMMDD-HHMMSS.db) and only the
newest BACKUP_KEEP copies of that folder are kept. Copies are readable by their owner only."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
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
    partial.touch(mode=0o600)
    partial.chmod(0o600)  # whatever the umask: the copy holds everyone's reports
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    os.replace(partial, target)
    return target


PREFIX, SUFFIX = "sanad-", ".db"


def backup_into(
    database_url: str, folder: Path, keep: int, now: datetime
) -> tuple[Path, list[Path]]:
    """A copy named by `now` in `folder`, then the older copies beyond the newest `keep`
    removed (only files named as this function names them); returns the copy and the removed."""
    if keep < 1:
        raise BackupError("keep at least 1 backup (BACKUP_KEEP or --keep)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = backup(database_url, folder / f"{PREFIX}{now:%Y%m%d-%H%M%S}{SUFFIX}")
    copies = sorted(
        path
        for path in folder.glob(f"{PREFIX}*{SUFFIX}")
        if path.is_file() and len(path.name) == len(target.name)
    )
    removed = copies[:-keep]
    for path in removed:
        path.unlink(missing_ok=True)
    return target, removed
