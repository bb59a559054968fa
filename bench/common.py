"""What the benchmarks share: a fresh database to measure on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import make_engine


@contextmanager
def database(url: str | None, tmp: Path) -> Iterator[tuple[str, str]]:
    """A fresh database: a SQLite file in `tmp`, or a private schema in PostgreSQL (dropped at
    the end). Yields the URL and a printable description."""
    if url is None:
        yield f"sqlite:///{tmp / 'bench.db'}", "SQLite, fresh file in a temporary directory"
        return
    shown = make_url(url).render_as_string(hide_password=True)
    if not url.startswith("postgresql"):
        yield url, shown
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}", f"{shown}, schema {schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
