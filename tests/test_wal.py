"""SQLite's log reaches the database file from a thread of its own, not from the commits."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from storage.db import make_engine
from storage.wal import checkpointing


def in_database_file_alone(database: Path, tmp_path: Path) -> list[str]:
    """The notes a copy of the database file holds without its log (-wal) beside it."""
    copy = tmp_path / f"copy-{time.monotonic_ns()}.db"
    shutil.copyfile(database, copy)
    with sqlite3.connect(copy) as connection:
        return [row[0] for row in connection.execute("SELECT text FROM note")]


def write_note(engine: Engine, text: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO note (text) VALUES (?)", (text,))


def test_the_checkpoint_thread_moves_what_was_committed_into_the_database_file(
    tmp_path: Path,
) -> None:
    database = tmp_path / "sanad.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE note (text TEXT)")
    with engine.connect() as connection:  # the table itself reaches the file
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    write_note(engine, "committed without a checkpointer")
    assert in_database_file_alone(database, tmp_path) == [], "only the log has it so far"

    with checkpointing(engine, every=0.05):
        write_note(engine, "committed while the thread runs")
        deadline = time.monotonic() + 10
        while len(in_database_file_alone(database, tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert in_database_file_alone(database, tmp_path) == [
            "committed without a checkpointer",
            "committed while the thread runs",
        ]
    engine.dispose()


def test_a_database_without_a_log_file_gets_no_thread() -> None:
    engine = make_engine("sqlite://")  # in memory
    with checkpointing(engine, every=0.01):
        assert "sqlite-checkpoints" not in [thread.name for thread in threading.enumerate()]
