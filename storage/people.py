"""People, organizations and groups as read for each message; small remembered settings.

Invitations are in storage.invites."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, and_, bindparam, or_, tuple_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.db import insert_new
from storage.models import Group, Organization, Person, PersonAddress, Setting


def find_person(session: Session, channel: str, address: str) -> Person | None:
    """The person reached at `address` on `channel`, whichever of their addresses it is."""
    return session.exec(
        select(Person)
        .join(PersonAddress, col(PersonAddress.person_id) == Person.id)
        .where(PersonAddress.channel == channel, PersonAddress.address == address)
    ).first()


def add_address(session: Session, person_id: int, channel: str, address: str) -> bool:
    """Let `person_id` be reached at `address` on `channel` too (their reports, role and
    language stay theirs); False if that address already belongs to someone."""
    values = {
        "person_id": person_id,
        "channel": channel,
        "address": address,
        "last_inbound_at": None,
        "reachable": True,
    }
    return insert_new(session, _ADDRESS, values, ["channel", "address"])


def group_of(session: Session, person: Person) -> Group | None:
    """The development group a person belongs to, through their organization."""
    organization = session.get(Organization, person.organization_id)
    return session.get(Group, organization.group_id) if organization else None


def addresses_of(session: Session, person_id: int) -> list[PersonAddress]:
    """Every channel and address `person_id` is reached at, the first registered first."""
    return list(
        session.exec(
            select(PersonAddress)
            .where(PersonAddress.person_id == person_id)
            .order_by(col(PersonAddress.id))
        ).all()
    )


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person as read for one incoming message: a copy that no session tracks.

    A change is made with a statement (`set_language`, `mark_reachable`), not by assignment.
    `channel` and `address` are where the person is reached now (where they last wrote
    from); `last_inbound_at` is when they last wrote from the address they were found at.
    """

    id: int
    channel: str
    address: str
    display_name: str
    language: str | None
    role: str
    organization_id: int
    active: bool
    reachable: bool
    last_inbound_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrganizationRow:
    """An organization as read for one incoming message (see PersonRow), without its names
    (shown by few handlers, which read the ORM Organization)."""

    id: int
    key: str
    group_id: int
    kind: str
    active: bool


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A development group as read for one incoming message (see PersonRow), without its
    names, targets and schedule (the few handlers that need those read the ORM Group)."""

    id: int
    key: str
    country: str
    timezone: str
    language: str
    currency: str
    digits: str
    week_start: int
    active: bool


MemberRows = tuple[PersonRow, OrganizationRow, GroupRow]
#: What runs a Core statement in the current transaction: the update's connection or a session.
Runner = Session | Connection

_PERSON: Table = Person.__table__  # type: ignore[attr-defined]
_ORGANIZATION: Table = Organization.__table__  # type: ignore[attr-defined]
_GROUP: Table = Group.__table__  # type: ignore[attr-defined]
_ADDRESS: Table = PersonAddress.__table__  # type: ignore[attr-defined]


def _columns(table: Table, row_type: type) -> list[Any]:
    return [table.c[f.name] for f in fields(row_type)]


# Built once, in Core: a person is read for every incoming message, and keying a fresh
# statement and loading ORM objects cost several times what the database does.
#: The columns of a person, their organization and group (`member_at` reads them back) ...
MEMBER_COLUMNS = [
    *[_PERSON.c[f.name] for f in fields(PersonRow) if f.name != "last_inbound_at"],
    _ADDRESS.c.last_inbound_at,
    *_columns(_ORGANIZATION, OrganizationRow),
    *_columns(_GROUP, GroupRow),
]
#: ... the three tables joined, from any of the person's addresses ...
MEMBER_TABLES = (
    _ADDRESS.join(_PERSON, _PERSON.c.id == _ADDRESS.c.person_id)
    .join(_ORGANIZATION, _ORGANIZATION.c.id == _PERSON.c.organization_id)
    .join(_GROUP, _GROUP.c.id == _ORGANIZATION.c.group_id)
)
#: ... and the person at the parameters "channel" and "address".
MEMBER_AT_ADDRESS = and_(
    _ADDRESS.c.channel == bindparam("channel"), _ADDRESS.c.address == bindparam("address")
)
_MEMBERS = sa_select(*MEMBER_COLUMNS).select_from(MEMBER_TABLES)
_MEMBER = _MEMBERS.where(MEMBER_AT_ADDRESS)
#: The people at several (channel, address) pairs, each row led by its pair.
_MEMBERS_AT = (
    sa_select(_ADDRESS.c.channel, _ADDRESS.c.address, *MEMBER_COLUMNS)
    .select_from(MEMBER_TABLES)
    .where(tuple_(_ADDRESS.c.channel, _ADDRESS.c.address).in_(bindparam("at", expanding=True)))
)
_MEMBER_BY_ID = _MEMBERS.where(_PERSON.c.id == bindparam("person_id"))
_PERSON_END = len(fields(PersonRow))
_ORGANIZATION_END = _PERSON_END + len(fields(OrganizationRow))
_GROUP_END = _ORGANIZATION_END + len(fields(GroupRow))
_SET_LANGUAGE = (
    update(_PERSON)
    .where(_PERSON.c.id == bindparam("person_id"))
    .values(language=bindparam("language"))
)
_SET_REACHABLE = (
    update(_PERSON).where(_PERSON.c.id == bindparam("person_id")).values(reachable=True)
)
_SET_CURRENT_ADDRESS = (
    update(_PERSON)
    .where(_PERSON.c.id == bindparam("person_id"))
    .values(channel=bindparam("to_channel"), address=bindparam("to_address"))
)
# Written when unknown or older than INBOUND_RESOLUTION: one write per person and quarter of
# an hour, not per message; the time kept is at most that much earlier than the truth, which
# only shortens a 24-hour window.
_SET_INBOUND = (
    update(_ADDRESS)
    .where(
        _ADDRESS.c.channel == bindparam("at_channel"),
        _ADDRESS.c.address == bindparam("at_address"),
        or_(
            _ADDRESS.c.last_inbound_at.is_(None),
            _ADDRESS.c.last_inbound_at < bindparam("stale_before"),
        ),
    )
    .values(last_inbound_at=bindparam("inbound_at"), reachable=True)
)
INBOUND_RESOLUTION = timedelta(minutes=15)


def find_member(runner: Runner, channel: str, address: str) -> MemberRows | None:
    """A person with their organization and group, in one query."""
    return _member(runner.execute(_MEMBER, {"channel": channel, "address": address}).first())


def find_members(
    runner: Runner, addresses: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], MemberRows]:
    """`find_member` of each (channel, address), in one query; those nobody is at are left out."""
    if not addresses:
        return {}
    rows = runner.execute(_MEMBERS_AT, {"at": list(addresses)}).all()
    found = {(row[0], row[1]): member_at(row, 2) for row in rows}
    return {at: member for at, member in found.items() if member is not None}


def member_by_id(runner: Runner, person_id: int) -> MemberRows:
    """The stored person `person_id` with their organization and group."""
    member = _member(runner.execute(_MEMBER_BY_ID, {"person_id": person_id}).first())
    assert member is not None, f"no person {person_id}"
    return member


def _member(row: Row[Any] | None) -> MemberRows | None:
    return None if row is None else member_at(row, 0)


def member_at(row: Sequence[Any], start: int) -> MemberRows | None:
    """The MEMBER_COLUMNS of `row` from position `start` on; None where they are empty (an
    outer join that found no person)."""
    if row[start] is None:  # the person's id
        return None
    person_end, organization_end = start + _PERSON_END, start + _ORGANIZATION_END
    return (
        PersonRow(*row[start:person_end]),
        OrganizationRow(*row[person_end:organization_end]),
        GroupRow(*row[organization_end : start + _GROUP_END]),
    )


def set_language(runner: Runner, person: PersonRow, language: str) -> PersonRow:
    """Store the person's language; returns the person as now stored."""
    runner.execute(_SET_LANGUAGE, {"person_id": person.id, "language": language})
    return replace(person, language=language)


def wrote_from(
    runner: Runner, person: PersonRow, channel: str, address: str, now: datetime
) -> PersonRow:
    """`person` wrote from `address` on `channel`: it becomes where the outbox reaches them
    (their current channel), and when they last wrote from it is kept (WhatsApp's window)."""
    if person.last_inbound_at is None or person.last_inbound_at < now - INBOUND_RESOLUTION:
        runner.execute(
            _SET_INBOUND,
            {
                "at_channel": channel,
                "at_address": address,
                "inbound_at": now,
                "stale_before": now - INBOUND_RESOLUTION,
            },
        )
        person = replace(person, last_inbound_at=now)
    if (person.channel, person.address) == (channel, address):
        return person
    runner.execute(
        _SET_CURRENT_ADDRESS,
        {"person_id": person.id, "to_channel": channel, "to_address": address},
    )
    return replace(person, channel=channel, address=address)


def mark_reachable(runner: Runner, person: PersonRow) -> PersonRow:
    """They wrote to us, so they can be reached again (they had blocked the bot)."""
    runner.execute(_SET_REACHABLE, {"person_id": person.id})
    return replace(person, reachable=True)


def remember(session: Session, key: str, value: str) -> None:
    """Store `value` under `key`; safe when processes starting together remember at once."""
    table = Setting.__table__  # type: ignore[attr-defined]
    if not insert_new(session, table, {"key": key, "value": value}, ["key"]):
        session.execute(update(table).where(table.c.key == key).values(value=value))


def recall(db: Session | Connection, key: str) -> str | None:
    """What was remembered under `key` (on a session, or a transaction's connection)."""
    found = db.execute(sa_select(col(Setting.value)).where(col(Setting.key) == key)).first()
    return found[0] if found is not None else None
