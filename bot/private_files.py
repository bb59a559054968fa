"""Files Sanad writes are its own: the database, backups, exports, charts and kept photos are
created readable by the owner only (0600), in a data folder only the owner can open (0700).

`python -m bot` sets the process's umask to 077 before anything is opened, so every file and
folder it creates (SQLite's -wal and -shm files too) starts private; the data folder is made
private even if it existed before.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077
FOLDER_MODE = 0o700


def make_private(data_dir: Path) -> int:
    """Owner-only files from now on, and `data_dir` closed to others; returns the umask that
    was in force (to restore it where the process goes on, as tests do)."""
    previous = os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    data_dir.chmod(FOLDER_MODE)
    return previous
