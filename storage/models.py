"""The tables. Time is stored in UTC; names and labels that vary by language are JSON maps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Connection, Index, UniqueConstraint, event, insert
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow

ROLES = ("worker", "coordinator", "admin")
ORG_KINDS = ("supportive", "partner", "network")


def _json(nullable: bool = False) -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=nullable))


def _time(nullable: bool = False, index: bool = False) -> Any:
    default: Any = None if nullable else ...
    if not nullable:
        return Field(
            default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=index)
        )
    return Field(default=default, sa_column=Column(UTCDateTime(), nullable=True, index=index))


class Group(SQLModel, table=True):
    """A development group of one country: a supportive organization and its partners."""

    __tablename__ = "dev_group"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    names: dict[str, str] = _json()
    country: str
    timezone: str
    language: str
    currency: str
    digits: str = "latn"  # "arab" (٠١٢٣) or "latn" (0123) in the group's Arabic text
    week_start: int = 0  # Python weekday of the first day of the reporting week (0 = Monday)
    targets: dict[str, Any] = _json()
    schedule: dict[str, Any] = _json()
    active: bool = True


class Organization(SQLModel, table=True):
    """The supportive organization or a partner association of a group."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    group_id: int = Field(foreign_key="dev_group.id", index=True)
    kind: str
    names: dict[str, str] = _json()
    placeholder: bool = False
    active: bool = True


class Person(SQLModel, table=True):
    """Someone registered through an invitation, reached on one channel at one address."""

    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    address: str
    display_name: str = ""
    language: str | None = None
    role: str
    organization_id: int = Field(foreign_key="organization.id", index=True)
    active: bool = True
    reachable: bool = True
    created_at: datetime = _time()


class PersonAddress(SQLModel, table=True):
    """One channel on which a person is reached. A person may have several (Telegram and
    WhatsApp); `Person.channel`/`Person.address` is the current one, the one they last wrote
    from, where the outbox sends. `last_inbound_at` is when they last wrote from it (WhatsApp
    sends free-form messages only within 24 hours of it)."""

    __tablename__ = "person_address"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    channel: str
    address: str
    last_inbound_at: datetime | None = _time(nullable=True)
    reachable: bool = True


@event.listens_for(Person, "after_insert")
def _first_address(_mapper: Any, connection: Connection, person: Person) -> None:
    """Every person is reached at the address they were created with: their first
    person_address row, in the same transaction."""
    connection.execute(
        insert(PersonAddress.__table__),  # type: ignore[attr-defined]
        {
            "person_id": person.id,
            "channel": person.channel,
            "address": person.address,
            "last_inbound_at": None,
            "reachable": person.reachable,
        },
    )


class Invite(SQLModel, table=True):
    """A single-use registration code (storage.invites); new codes always expire."""

    code: str = Field(primary_key=True)
    organization_id: int = Field(foreign_key="organization.id")
    role: str
    created_at: datetime = _time()
    expires_at: datetime | None = _time(nullable=True)
    used_at: datetime | None = _time(nullable=True)
    used_by: int | None = Field(default=None, foreign_key="person.id")
    revoked_at: datetime | None = _time(nullable=True)
    name: str | None = None  # the invited person's name, as the inviter gave it
    language: str | None = None  # their language, when the inviter knew it
    # An existing person's code: redeemed on another channel, it adds that address to them.
    for_person_id: int | None = Field(default=None, foreign_key="person.id")


class InviteFailure(SQLModel, table=True):
    """A failed attempt to redeem an invitation (never the code typed): the attempt limits
    count these rows, so they hold across processes."""

    __tablename__ = "invite_failure"

    id: int | None = Field(default=None, primary_key=True)
    chat_key: str = Field(index=True)  # channel:address
    failed_at: datetime = _time(index=True)
    reason: str


class Conversation(SQLModel, table=True):
    """Where a chat stands, kept in the database so that it survives restarts and processes."""

    chat_key: str = Field(primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    version: int = 0
    # The last version whose replies the channel sent (kept in the outbox does not count).
    # Below `version` after a crash between the commit and the sending: the person may not
    # have seen the last question, so a typed answer is not taken for its answer.
    replied_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    state: dict[str, Any] = _json()
    updated_at: datetime = _time()


class Report(SQLModel, table=True):
    """A confirmed report. Period reports are unique per form, association and period."""

    # Digests and completeness read one form's reports of one group: by period, or for a form
    # without periods (check-ins) by submission time. Without these two indexes SQLite walks
    # every report of the group (ix_report_group_id): with a million reports (bench.digests)
    # the digests of one period took 17 s instead of 0.3 s.
    __table_args__ = (
        UniqueConstraint("form_id", "organization_id", "period"),
        Index("ix_report_group_form_period", "group_id", "form_id", "period"),
        Index("ix_report_group_form_submitted", "group_id", "form_id", "submitted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ref: str | None = Field(default=None, unique=True, index=True)
    form_id: str = Field(index=True)
    group_id: int = Field(foreign_key="dev_group.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    period: str | None = None
    answers: dict[str, Any] = _json()
    submitted_at: datetime = _time(index=True)
    updated_at: datetime = _time()
    review: str | None = None  # None, "checked" or "query" (a coordinator's question)
    review_comment: str | None = None
    channel: str | None = None  # where it was sent from ("telegram", "whatsapp"); None: before 0012


class ReportChange(SQLModel, table=True):
    """One changed answer of a report: the audit trail of replacements and corrections."""

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    person_id: int = Field(foreign_key="person.id")
    changed_at: datetime = _time()
    reason: str
    field: str
    old_value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    new_value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))


class ProcessedUpdate(SQLModel, table=True):
    """An incoming update already applied; stored in the transaction that stores its effect."""

    key: str = Field(primary_key=True)
    processed_at: datetime = _time()


class AskedQuestion(SQLModel, table=True):
    """A bot message sent while its chat waited for an answer: the platform's id of that
    message, and the question it asked (the conversation's version and what it waited for, as
    storage.outbox.waiting_for says). A reply to it, or a press on it, is checked against the
    question open now (storage.asked)."""

    __tablename__ = "asked_question"

    chat_key: str = Field(primary_key=True)
    message_id: str = Field(primary_key=True)  # the platform's id of the bot's message
    version: int
    step: str
    asked_at: datetime = _time()


class Setting(SQLModel, table=True):
    """Small facts the bot remembers, such as its username."""

    key: str = Field(primary_key=True)
    value: str


OUTBOX_STATUSES = ("pending", "sending", "sent", "blocked", "failed", "cancelled")


class OutboxMessage(SQLModel, table=True):
    """A message that is not a direct reply (reminder, digest, broadcast, a reply that could
    not be sent at once), waiting to be sent.

    It holds what to say, not rendered text (see outbox.intents): `message` has the lines as
    phrases (message key and parameters), `options` the buttons ({"label": phrase, "value"}),
    `media` a photo or document reference. It is translated into the recipient's language and
    rendered for their channel when it is sent; `language` is the one it was meant for when
    enqueued, used if the person has none. `question` identifies the question a kept reply
    asks ({"chat": chat key, "version": conversation version, "flow", "step"}): if the
    conversation has moved on when it is due, it is cancelled, not sent.

    `dedupe_key` is the caller's idempotency key. `attempts` counts tries that reached the
    platform and did not end in a flood wait; `resent` counts the times a crashed sender's
    claim was put back (such a message may have reached the person already).
    """

    __tablename__ = "outbox"
    # claim() looks up a person's earlier waiting rows: one index on both columns, so that
    # PostgreSQL never combines person and status indexes into a scan of every waiting row
    # (it did, with a freshly filled table whose statistics were not yet gathered).
    __table_args__ = (Index("ix_outbox_person_status", "person_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id")
    kind: str
    dedupe_key: str = Field(unique=True)
    message: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    options: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    media: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    language: str | None = None
    question: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    resent: int = 0
    next_attempt_at: datetime = _time(index=True)
    created_at: datetime = _time()
    claimed_at: datetime | None = _time(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=64)  # the holder (storage.holders)
    sent_at: datetime | None = _time(nullable=True)
    error: str | None = None
    broadcast_id: int | None = Field(default=None, index=True)
    # The platform's id of the message that carried this row (WhatsApp's wamid), so that its
    # status reports find it; and the last of them: sent, delivered, read or failed.
    platform_message_id: str | None = Field(default=None, index=True)
    delivery: str | None = None
    # The channel it went to (or was refused on): the recipient's current one when it was sent.
    channel: str | None = None


class DeliveryReport(SQLModel, table=True):
    """A platform's status report on a message whose id was not yet written on its outbox row
    (the platform's webhook came before our write of its answer): applied when it is
    (storage.deliveries.took), forgotten after a day otherwise.

    Neutral of the platform: the status (sent, delivered, read, failed), the error, and what a
    failure means: `resend_note` to send the row again another way (noted on the row), or
    `unreachable` (the person is not on the platform)."""

    __tablename__ = "delivery_report"

    id: int | None = Field(default=None, primary_key=True)
    platform_message_id: str = Field(index=True)
    status: str
    error: str | None = None
    resend_note: str | None = None
    unreachable: bool = False
    received_at: datetime = _time(index=True)


class SenderHeartbeat(SQLModel, table=True):
    """A process that claims outbox rows, and when it last said it is alive."""

    __tablename__ = "sender_heartbeat"

    holder: str = Field(primary_key=True, max_length=64)
    seen_at: datetime = _time()


class Broadcast(SQLModel, table=True):
    """An announcement to an audience; its messages go through the outbox (broadcast_id)."""

    id: int | None = Field(default=None, primary_key=True)
    created_by: int = Field(foreign_key="person.id")
    created_at: datetime = _time()
    texts: dict[str, str] = _json()  # language -> text; "*" is the text for everyone
    photo: str | None = None  # storage.broadcasts.photo_reference: a file id or a kept file
    audience: dict[str, Any] = _json()  # {"groups": [...], "organizations": [...], "roles": [...]}
    recipients: int = 0
    status: str = "sending"  # "sending" | "finished" (reported) | "cancelled"
    cancelled_at: datetime | None = _time(nullable=True)
