"""Statements run straight on SQLite's cursor give and store exactly what Core does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.app import Sanad
from storage.conversations import _READ_WITH_MEMBER, ChatState, read_chat, save_state
from storage.db import insert_new
from storage.hot import HotStatement
from storage.models import Conversation, Organization, Person, ProcessedUpdate
from storage.people import find_member

WHEN = datetime(2026, 11, 29, 7, 30, 15, 123456, tzinfo=UTC)
STATE = {
    "flow": "form",
    "draft": {"answers": {"paper_kg": 12.5, "notes": None}, "path": []},
    "text": "Nadia \u2068١٢٫٥\u2069",
}


def _person(sanad: Sanad) -> Person:
    with Session(sanad.engine, expire_on_commit=False) as session:
        organization = session.exec(
            select(Organization).where(  # type: ignore[call-overload]
                Organization.key == "bh_rural_girls"
            )
        ).scalar_one()
        person = Person(
            channel="telegram",
            address="4242",
            display_name="Nadia",
            role="worker",
            organization_id=organization.id,
            created_at=WHEN,
            reachable=False,
        )
        session.add(person)
        session.commit()
        return person


def test_the_chat_and_its_writer_read_as_core_reads_them(sanad: Sanad) -> None:
    person = _person(sanad)
    with sanad.engine.begin() as connection:
        assert read_chat(connection, "telegram:4242", "telegram", "4242") == (
            ChatState(0, {}, False),
            find_member(connection, "telegram", "4242"),
        )
        save_state(connection, "telegram:4242", ChatState(0, {}, False), STATE, WHEN, person.id)
    with sanad.engine.begin() as connection:
        chat, member = read_chat(connection, "telegram:4242", "telegram", "4242")
        params = {"key": "telegram:4242", "channel": "telegram", "address": "4242"}
        core = tuple(connection.execute(_READ_WITH_MEMBER, params).one())
        assert HotStatement(_READ_WITH_MEMBER).first(connection, params) == core
        assert chat == ChatState(1, STATE, True, False)
        assert member is not None and member == find_member(connection, "telegram", "4242")
        assert member[0].reachable is False and member[0].display_name == "Nadia"
        save_state(connection, "telegram:4242", chat, {**STATE, "flow": None}, WHEN, person.id)
        assert read_chat(connection, "telegram:7", "telegram", "4242") == (
            ChatState(0, {}, False),
            member,
        )  # no row for that chat: the person read alone
        assert read_chat(connection, "telegram:4242", "telegram", "7")[1] is None  # nobody
    with Session(sanad.engine) as session:
        stored = session.get(Conversation, "telegram:4242")
        assert stored is not None and stored.version == 2 and stored.updated_at == WHEN
        assert stored.state == {**STATE, "flow": None} and stored.person_id == person.id


def test_errors_are_sqlalchemys_and_sessions_go_through_core(sanad: Sanad) -> None:
    table = ProcessedUpdate.__table__  # type: ignore[attr-defined]
    values = {"key": "telegram:1", "processed_at": WHEN}
    with sanad.engine.begin() as connection:
        assert insert_new(connection, table, values, ["key"]) is True
        assert insert_new(connection, table, values, ["key"]) is False
    with Session(sanad.engine) as session:
        assert insert_new(session, table, {**values, "key": "telegram:2"}, ["key"]) is True
        assert insert_new(session, table, {**values, "key": "telegram:2"}, ["key"]) is False
    plain = HotStatement(insert(table))
    with pytest.raises(IntegrityError), sanad.engine.begin() as connection:
        plain.run(connection, values)
    with Session(sanad.engine) as session:
        assert session.get(ProcessedUpdate, "telegram:1") is not None
        assert session.get(ProcessedUpdate, "telegram:2") is None  # that session never committed
