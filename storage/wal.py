"""SQLite's write-ahead log, copied into the database file off the path of incoming messages.

In WAL mode a commit only appends to the log; a checkpoint later copies the log into the
database file and waits for the disk (fsync). By default the commit that takes the log past
1,000 pages runs that checkpoint itself, so one message in a few hundred waits for the disk:
6-9 ms here, every 300 or so commits (20-30 µs a message on average). A process that
handles messages instead runs `checkpointing(engine)`: a thread of its own checkpoints every
second (SQLite does not hold the GIL while it writes or waits for the disk), and the commits
only append. A commit still checkpoints past the BACKSTOP, should the thread fall behind
or a process run without one (the console, command-line actions: SQLite also checkpoints when
the last connection closes).

Nothing changes for durability: with synchronous=NORMAL a commit survives a crash of the
process either way, and a power cut may lose the last commits either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

log = logging.getLogger(__name__)
#: Run on every SQLite connection: past this many pages (about 40 MB) a commit checkpoints.
BACKSTOP = "PRAGMA wal_autocheckpoint=10000"
CHECKPOINT_SECONDS = 1.0


def checkpoint(engine: Engine) -> tuple[int, int, int]:
    """Copy what the log holds into the database file, without waiting for anyone (PASSIVE:
    frames a reader still needs stay for the next time). Returns SQLite's (busy, frames in
    the log, frames copied)."""
    with engine.connect() as connection:
        row = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        connection.commit()
    return int(row[0]), int(row[1]), int(row[2])


@contextmanager
def checkpointing(engine: Engine, every: float = CHECKPOINT_SECONDS) -> Iterator[None]:
    """Checkpoint `engine`'s SQLite database every `every` seconds from a thread, for the
    duration of the block, and once more at its end. Other databases: nothing to do."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(
        target=_checkpoint_until, args=(engine, stop, every), name="sqlite-checkpoints", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _checkpoint_until(engine: Engine, stop: threading.Event, every: float) -> None:
    while True:
        stopping = stop.wait(every)
        try:
            busy, frames, copied = checkpoint(engine)
            log.debug(
                "checkpoint: %d of %d log frames copied%s",
                copied,
                frames,
                " (busy)" if busy else "",
            )
        except Exception as error:  # the next round, or a commit past the backstop, retries
            log.warning("checkpoint failed (%s)", error.__class__.__name__)
        if stopping:
            return
