"""What the benchmarks (and the crash drill) share: a fresh database to measure on, and a
network with an association per simulated worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import make_engine
from storage.network import GroupSpec, Names, NetworkSpec, OrganizationSpec


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


def _names(text_: str) -> Names:
    return Names(ar=text_, en=text_, fr=text_)


def partner_network(key: str, partners: int) -> NetworkSpec:
    """One group in Bahrain's zone whose `partners` associations are keyed `{key}_0`,
    `{key}_1`, ...; the network's own organization is `{key}_network`."""
    return NetworkSpec(
        network=OrganizationSpec(key=f"{key}_network", names=_names(f"{key} network")),
        groups=[
            GroupSpec(
                key=key,
                names=_names(f"{key} group"),
                country="BH",
                timezone="Asia/Bahrain",
                language="ar",
                currency="BHD",
                supportive=OrganizationSpec(key=f"{key}_supportive", names=_names("Supportive")),
                partners=[
                    OrganizationSpec(key=f"{key}_{i}", names=_names(f"Association {i}"))
                    for i in range(partners)
                ],
            )
        ],
    )
