"""What the benchmarks (and the crash drill) share: a fresh database to measure on, and a
network with an association per simulated worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.settings import Settings
from outbox.intents import Intent
from storage import outbox
from storage.db import make_engine, open_database, transaction
from storage.models import Group, Organization, Person, PersonAddress
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


BENCH_TOKEN = "123456:BENCH-never-logged"


def bench_settings(url: str, tmp: Path, token: str = BENCH_TOKEN) -> Settings:
    """A bench's Sanad: this database, its files under `tmp`, no .env read."""
    return Settings(
        _env_file=None,
        telegram_bot_token=token,
        database_url=url,
        data_dir=tmp / "data",
    )


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


def broadcast_audience(
    url: str, channel: str, first_address: int, messages: int, now: datetime
) -> tuple[list[int], float]:
    """`messages` people on `channel` (addresses from `first_address` on, each heard from at
    `now`) and one broadcast message to each in the outbox. Returns the people's ids and the
    wall seconds the enqueueing took.

    The people are written with Core inserts (one statement for thousands), which skip the
    ORM hook that gives a new person their first address: the addresses are written here."""
    engine = open_database(url)
    with transaction(engine) as session:
        group = Group(
            key="bench",
            names={"en": "Bench"},
            country="BH",
            timezone="Asia/Bahrain",
            language="en",
            currency="BHD",
        )
        session.add(group)
        session.flush()
        organization = Organization(
            key="bench_partner", group_id=group.id, kind="partner", names={"en": "Bench"}
        )
        session.add(organization)
        session.flush()
        addresses = [str(first_address + n) for n in range(messages)]
        session.execute(
            insert(Person),
            [
                {
                    "channel": channel,
                    "address": address,
                    "role": "worker",
                    "language": "en",
                    "organization_id": organization.id,
                    "display_name": f"Worker {n}",
                    "active": True,
                    "reachable": True,
                    "created_at": now,
                }
                for n, address in enumerate(addresses)
            ],
        )
        ids = [p for p in session.exec(select(Person.id).order_by(col(Person.id))).all() if p]
        session.execute(
            insert(PersonAddress),
            [
                {
                    "person_id": person_id,
                    "channel": channel,
                    "address": address,
                    "last_inbound_at": now,
                    "reachable": True,
                }
                for person_id, address in zip(ids, addresses, strict=True)
            ],
        )
    start = time.perf_counter()
    with transaction(engine) as session:
        for number, person_id in enumerate(ids):
            outbox.enqueue(
                session,
                person_id=person_id,
                kind="broadcast",
                dedupe_key=f"broadcast:1:{person_id}",
                broadcast_id=1,
                intent=Intent.plain(
                    f"Announcement {number}: the final conference is on 14 June.",
                    [("Thanks", "ack:1")],
                ),
                now=now,
            )
    engine.dispose()
    return ids, time.perf_counter() - start
