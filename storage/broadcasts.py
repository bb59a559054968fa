"""Broadcasts: who an audience reaches, a broadcast with its outbox rows, its figures, cancelling.

An audience is three filters: groups, organizations, roles. A filter left empty does not
restrict; the ones given all apply (a group and a role: the people of that role in that
group). Only active people of active organizations are reached.

One recipient is one outbox row (key `broadcast:<id>:<person id>`), enqueued in the
transaction that creates the broadcast, in the recipient's language. Texts are kept within
one platform message (`TEXT_LIMIT`, `CAPTION_LIMIT` with a photo). The text is the one the
author wrote for the recipient's language when it was created (a literal: nobody translates
a person's words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from outbox import intents as say
from outbox.intents import Intent
from storage.models import Broadcast, Group, Organization, OutboxMessage, Person
from storage.outbox import FILE_ID, counts_by_status, enqueue
from storage.people import group_of

#: Broadcast.photo prefix of a file the console channel kept in the media folder.
KEPT_FILE = "kept-file:"

KIND = "broadcast"
COMMON = "*"  # the key of the text for every language without its own


@dataclass
class Audience:
    """Who a broadcast reaches; empty lists do not restrict."""

    groups: list[int] = field(default_factory=list)
    organizations: list[int] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        return cls(
            list(data.get("groups", [])),
            list(data.get("organizations", [])),
            list(data.get("roles", [])),
        )

    def as_json(self) -> dict[str, Any]:
        return {"groups": self.groups, "organizations": self.organizations, "roles": self.roles}

    @property
    def everyone(self) -> bool:
        return not (self.groups or self.organizations or self.roles)


@dataclass(frozen=True)
class Figures:
    """Where the messages of one broadcast stand."""

    delivered: int
    blocked: int
    failed: int
    cancelled: int
    waiting: int
    resent: int

    @property
    def total(self) -> int:
        return self.delivered + self.blocked + self.failed + self.cancelled + self.waiting


@dataclass(frozen=True)
class ChannelFigures:
    """What became of a broadcast's messages on one channel: `messages` went to it; `sent`
    the platform took, of which `delivered` reached the phone and `read` were read (as far
    as the platform reports receipts: `receipts`), and `failed` it refused or could not
    deliver (blocked the bot, not on the platform, errors)."""

    channel: str
    messages: int
    sent: int
    delivered: int
    read: int
    failed: int
    receipts: bool


def _matching(audience: Audience) -> Any:
    statement = (
        select(Person, Group.language)
        .select_from(Person)
        .join(Organization, col(Person.organization_id) == Organization.id)
        .join(Group, col(Organization.group_id) == Group.id)
        .where(Person.active, Organization.active)
    )
    if audience.groups:
        statement = statement.where(col(Organization.group_id).in_(audience.groups))
    if audience.organizations:
        statement = statement.where(col(Person.organization_id).in_(audience.organizations))
    if audience.roles:
        statement = statement.where(col(Person.role).in_(audience.roles))
    return statement


def count_recipients(session: Session, audience: Audience) -> int:
    subquery = _matching(audience).subquery()
    return int(session.exec(select(func.count()).select_from(subquery)).one())


def recipients(session: Session, audience: Audience) -> list[tuple[Person, str]]:
    """The people `audience` reaches, each with the language they read."""
    rows = session.exec(_matching(audience).order_by(col(Person.id))).all()
    return [(person, person.language or group_language) for person, group_language in rows]


def text_for(texts: dict[str, str], language: str) -> str:
    """The text in `language`, or the common one."""
    return texts.get(language) or texts.get(COMMON, "")


def photo_path(photo: str | None) -> str | None:
    """How the outbox refers to a broadcast's photo.

    A broadcast's photo is the platform's file id of what was sent in the chat, or a file the
    operator gave on the console (kept in the media folder, stored with `KEPT_FILE`). Anything
    else is a file id, whatever it looks like: a reference that happens to name a file on the
    server (the database, .env) is never read from disk.
    """
    if photo is None:
        return None
    if photo.startswith(KEPT_FILE):
        return photo[len(KEPT_FILE) :]
    return photo if photo.startswith(FILE_ID) else FILE_ID + photo


def photo_reference(file_id: str | None, kept_path: str | None) -> str | None:
    """What a broadcast stores for a photo sent in the chat: the platform's file id, or a file
    the console channel copied into the media folder (the operator named it)."""
    if file_id:
        return FILE_ID + file_id
    return KEPT_FILE + kept_path if kept_path else None


def create(
    session: Session,
    *,
    created_by: int,
    texts: dict[str, str],
    photo: str | None,
    audience: Audience,
    now: datetime,
) -> Broadcast:
    """The broadcast and one outbox row per recipient, in the caller's transaction."""
    broadcast = Broadcast(
        created_by=created_by,
        created_at=now,
        texts=texts,
        photo=photo,
        audience=audience.as_json(),
        status="sending",
    )
    session.add(broadcast)
    session.flush()
    assert broadcast.id is not None
    people = recipients(session, audience)
    for person, language in people:
        assert person.id is not None
        enqueue(
            session,
            person_id=person.id,
            kind=KIND,
            dedupe_key=f"broadcast:{broadcast.id}:{person.id}",
            intent=Intent.of(say.literal(text_for(texts, language)), photo=photo_path(photo)),
            language=language,
            now=now,
            broadcast_id=broadcast.id,
        )
    broadcast.recipients = len(people)
    session.add(broadcast)
    return broadcast


def figures(session: Session, broadcast_id: int) -> Figures:
    counts = counts_by_status(session, broadcast_id=broadcast_id)
    resent = session.exec(
        select(func.coalesce(func.sum(OutboxMessage.resent), 0)).where(
            OutboxMessage.broadcast_id == broadcast_id
        )
    ).one()
    return Figures(
        delivered=counts["sent"],
        blocked=counts["blocked"],
        failed=counts["failed"],
        cancelled=counts.get("cancelled", 0),
        waiting=counts["pending"] + counts["sending"],
        resent=int(resent),
    )


def figures_by_channel(session: Session, broadcast_id: int) -> list[ChannelFigures]:
    """Per channel the broadcast's messages went to (those not tried yet are on none), by
    name. A message's delivery status comes from the platform's receipts (WhatsApp's status
    webhooks): delivered counts the read ones too."""
    rows = session.exec(
        select(OutboxMessage.channel, OutboxMessage.status, OutboxMessage.delivery, func.count())
        .where(OutboxMessage.broadcast_id == broadcast_id, col(OutboxMessage.channel).is_not(None))
        .group_by(
            col(OutboxMessage.channel), col(OutboxMessage.status), col(OutboxMessage.delivery)
        )
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for channel, status, delivery, number in rows:
        assert channel is not None
        tally = counts.setdefault(channel, dict.fromkeys(_TALLIES, 0))
        tally["messages"] += number
        if status == "sent":
            tally["sent"] += number
            tally["delivered"] += number if delivery in ("delivered", "read") else 0
            tally["read"] += number if delivery == "read" else 0
        elif status in ("failed", "blocked"):
            tally["failed"] += number
        tally["receipts"] += number if delivery is not None else 0
    return [
        ChannelFigures(
            channel,
            tally["messages"],
            tally["sent"],
            tally["delivered"],
            tally["read"],
            tally["failed"],
            receipts=tally["receipts"] > 0,
        )
        for channel, tally in sorted(counts.items())
    ]


_TALLIES = ("messages", "sent", "delivered", "read", "failed", "receipts")


def cancel(session: Session, broadcast: Broadcast, now: datetime) -> int:
    """Stop a broadcast: its messages not yet taken by a sender will not go; returns how many.

    Messages already in flight (claimed) still arrive.
    """
    broadcast.status = "cancelled"
    broadcast.cancelled_at = now
    session.add(broadcast)
    statement = (
        update(OutboxMessage)
        .where(
            col(OutboxMessage.broadcast_id) == broadcast.id, col(OutboxMessage.status) == "pending"
        )
        .values(status="cancelled")
    )
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(result.rowcount)  # type: ignore[attr-defined]


def recent(session: Session, group_id: int | None, limit: int = 5) -> Sequence[Broadcast]:
    """The latest broadcasts: all of them (`group_id` None), or those made in one group."""
    statement = select(Broadcast).order_by(col(Broadcast.id).desc()).limit(limit)
    if group_id is not None:
        statement = (
            statement.join(Person, col(Broadcast.created_by) == Person.id)
            .join(Organization, col(Person.organization_id) == Organization.id)
            .where(Organization.group_id == group_id)
        )
    return session.exec(statement).all()


def in_scope(session: Session, broadcast: Broadcast, group_id: int | None) -> bool:
    """Whether someone who sees the broadcasts of `group_id` (None: all) sees this one."""
    if group_id is None:
        return True
    creator = session.get(Person, broadcast.created_by)
    organization = session.get(Organization, creator.organization_id) if creator else None
    return organization is not None and organization.group_id == group_id


def language_of(session: Session, person: Person) -> str:
    """The language a person reads: their own, else their group's."""
    if person.language:
        return person.language
    group = group_of(session, person)
    return group.language if group else "ar"
