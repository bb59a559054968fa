"""The outbox: messages that are not direct replies wait here until a sender delivers them.

A row moves pending -> sending (claimed) -> sent | blocked | failed | cancelled, or back to
pending for a retry. Rows are claimed in id order, one at a time per person: a row waits while
an earlier row to the same person is still pending or sending, so each person gets their
messages in the order they were enqueued, also with several senders (PostgreSQL, SKIP LOCKED).

A row holds what to say (an `Intent`, see outbox.intents), translated and rendered for the
recipient's current channel and language when it is sent; the channel splits a long text into
as many platform messages as its limits need.

A reply kept here because sending it failed carries the identity of the question it asks (the
conversation's version and step): when it is due and the conversation has moved on, it is
cancelled (`drop_stale_questions`), never sent, so an answer to a late copy cannot land on the
next question.

Crash: a row claimed by a sender that died stays "sending", with the sender's holder id in
`claimed_by`; `release_dead_claims` puts it back to pending as soon as the holder's heartbeat
is silent (storage.holders), and `recover` puts back every claim older than a given age (at
start on SQLite, where one process sends). Either way the row counts in `resent` and is sent
again: it may already have reached the person if it was in flight at the instant of the crash
(at most the sender's concurrency per crash). A retry after a transient failure counts in
`resent` too: the platform may have taken the message and its answer been lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session, col, select

from storage.db import insert_new
from storage.models import (
    OUTBOX_STATUSES,
    Conversation,
    OutboxMessage,
    Person,
    PersonAddress,
    SenderHeartbeat,
)

if TYPE_CHECKING:
    from outbox.intents import Intent

ERROR_LIMIT = 200
TEXT_LIMIT = 4000  # the longest text a person may write to be sent on (a broadcast)
CAPTION_LIMIT = 1024  # ... and with a photo: Telegram and WhatsApp take 1024 a caption
FILE_ID = "file-id:"  # a media reference the platform keeps: its file id
WAITING = ("pending", "sending")

_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]


def enqueue(
    session: Session,
    *,
    person_id: int,
    kind: str,
    dedupe_key: str,
    intent: Intent,
    now: datetime,
    language: str | None = None,
    broadcast_id: int | None = None,
    question: dict[str, Any] | None = None,
) -> bool:
    """Add what to tell `person_id`; False (and nothing added) if `dedupe_key` exists.

    `language` is the one the message was meant for, used if the person has none when it is
    sent; `question` the identity of the question a kept reply asks (see the module).

    Race-safe on SQLite and PostgreSQL: INSERT ... ON CONFLICT DO NOTHING. (A SAVEPOINT
    would not do on SQLite: pysqlite opens no transaction before the first write, so the
    savepoint becomes the transaction and RELEASE commits it, outside the caller's.)
    """
    if not intent.lines and intent.media_json() is None:
        raise ValueError("an outbox message needs a text or a photo")
    values = {
        "person_id": person_id,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "message": intent.message_json(),
        "options": intent.options_json(),
        "media": intent.media_json(),
        "language": language,
        "question": question,
        "status": "pending",
        "attempts": 0,
        "resent": 0,
        "next_attempt_at": now,
        "created_at": now,
        "claimed_at": None,
        "sent_at": None,
        "error": None,
        "broadcast_id": broadcast_id,
    }
    return insert_new(session, _TABLE, values, ["dedupe_key"])


@dataclass(frozen=True)
class Recipient:
    """Where and how a person is reached now: their current channel and address, their
    language, and when they last wrote from that address (WhatsApp's 24-hour window)."""

    channel: str
    address: str
    language: str | None
    last_inbound_at: datetime | None


def recipients(session: Session, person_ids: set[int]) -> dict[int, Recipient]:
    """The current channel, address and language of each of `person_ids`."""
    return {
        pid: Recipient(channel, address, language, inbound)
        for pid, channel, address, language, inbound in session.execute(
            _RECIPIENTS, {"ids": list(person_ids)}
        )
    }


def _recipients_statement() -> Any:
    return (
        sa_select(
            col(Person.id),
            col(Person.channel),
            col(Person.address),
            col(Person.language),
            col(PersonAddress.last_inbound_at),
        )
        .outerjoin(
            PersonAddress,
            and_(
                col(PersonAddress.person_id) == Person.id,
                col(PersonAddress.channel) == Person.channel,
                col(PersonAddress.address) == Person.address,
            ),
        )
        .where(col(Person.id).in_(bindparam("ids", expanding=True)))
    )


_RECIPIENTS = _recipients_statement()


def question_of(
    chat_key: str, version: int, step: str | None, flow: str | None
) -> dict[str, Any] | None:
    """The identity of the question a chat at `version` asks, kept with an outbox copy of it:
    `step` names the question the chat waits an answer to (handlers.state.ChatState.waiting_for;
    None: it asks none), `flow` is the chat's flow, kept for whoever reads the row."""
    if step is None:
        return None
    return {"chat": chat_key, "version": version, "flow": flow, "step": step}


def drop_stale_questions(
    session: Session,
    messages: Sequence[OutboxMessage],
    waiting_for: Callable[[dict[str, Any]], str | None],
) -> list[OutboxMessage]:
    """`messages` without the kept questions the conversation no longer waits for (answered
    meanwhile, or left); those are marked "cancelled": an answer to such a late copy would
    land on the next question. A question still awaited (the person only wrote "hello?"
    meanwhile) goes out. `waiting_for` names the question a stored state waits for (the
    `step` of `question_of`): storage does not read the state."""
    asking = [m for m in messages if m.question]
    if not asking:
        return list(messages)
    chats = {str(m.question["chat"]) for m in asking if m.question}
    states = dict(
        session.exec(
            select(Conversation.chat_key, Conversation.state).where(
                col(Conversation.chat_key).in_(chats)
            )
        ).all()
    )
    stale = [
        m
        for m in asking
        if m.question
        and waiting_for(dict(states.get(str(m.question["chat"])) or {})) != m.question["step"]
    ]
    for message in stale:
        assert message.id is not None
        session.execute(_CANCELLED, {"message_id": message.id})
    gone = {m.id for m in stale}
    return [m for m in messages if m.id not in gone]


def claim(
    session: Session, now: datetime, limit: int, holder: str | None = None
) -> list[OutboxMessage]:
    """Mark up to `limit` due rows "sending" by `holder` and return them, oldest first.

    A row is due when pending, its next_attempt_at has come, and no earlier row to the same
    person is pending or sending. One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP
    LOCKED) ... RETURNING: several senders on PostgreSQL never claim the same row; SQLite
    ignores FOR UPDATE and runs the statement under its single write lock.
    """
    rows = session.scalars(
        _CLAIM,
        {"now_": now, "limit_": limit, "holder_": holder},
        execution_options={"synchronize_session": False},
    ).all()
    return sorted(rows, key=lambda row: row.id or 0)


def _ready(candidate: type[OutboxMessage]) -> Any:
    """`candidate` is pending and no earlier row to the same person is pending or sending."""
    earlier = aliased(OutboxMessage, name="earlier")
    waits_for_earlier = (
        select(earlier.id)
        .where(
            col(earlier.person_id) == candidate.person_id,
            col(earlier.id) < candidate.id,
            col(earlier.status).in_(WAITING),
        )
        .exists()
    )
    return and_(col(candidate.status) == "pending", ~waits_for_earlier)


def _claim_statement() -> Any:
    """The claim's UPDATE ... RETURNING, built once: building it costs more than running it."""
    candidate = aliased(OutboxMessage, name="candidate")
    due = (
        select(candidate.id)
        .where(_ready(candidate), candidate.next_attempt_at <= bindparam("now_"))
        .order_by(candidate.id)  # type: ignore[arg-type]
        .limit(bindparam("limit_"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(due))  # type: ignore[union-attr]
        .values(status="sending", claimed_at=bindparam("now_"), claimed_by=bindparam("holder_"))
        .returning(OutboxMessage)
    )


def _update(*, only_if_sending: bool = True, count_attempt: bool = True, **values: Any) -> Any:
    """UPDATE of the row :message_id, built once (statements are cached by identity)."""
    statement = update(_TABLE).where(_TABLE.c.id == bindparam("message_id"))
    if only_if_sending:
        statement = statement.where(_TABLE.c.status == "sending")
    if count_attempt:
        values["attempts"] = _TABLE.c.attempts + 1
    return statement.values(**values)


_CHANNEL: BindParameter[str | None] = bindparam("channel_")
_SENT = _update(
    only_if_sending=False, status="sent", sent_at=bindparam("now_"), error=None, channel=_CHANNEL
)
_RETRY = _update(status="pending", next_attempt_at=bindparam("at_"), error=bindparam("error_"))
_RETRY_DOUBTFUL = _update(
    status="pending",
    next_attempt_at=bindparam("at_"),
    error=bindparam("error_"),
    resent=_TABLE.c.resent + 1,
)
_RELEASE = _update(count_attempt=False, status="pending", next_attempt_at=bindparam("at_"))
_BLOCKED = _update(status="blocked", error=bindparam("error_"), channel=_CHANNEL)
_FAILED = _update(status="failed", error=bindparam("error_"), channel=_CHANNEL)
_CANCELLED = _update(
    count_attempt=False, status="cancelled", error="the conversation moved on: a stale question"
)
_CLAIM = _claim_statement()
_UNREACHABLE = (
    update(Person.__table__)  # type: ignore[attr-defined]
    .where(Person.__table__.c.id == bindparam("person_id_"))  # type: ignore
    .values(reachable=False)
)


def mark_sent(session: Session, message_id: int, now: datetime, channel: str | None = None) -> None:
    """The platform of `channel` accepted the message. Recorded even if the claim was
    recovered meanwhile."""
    session.execute(_SENT, {"message_id": message_id, "now_": now, "channel_": channel})


def mark_retry(
    session: Session, message_id: int, at: datetime, error: str, doubtful: bool = False
) -> None:
    """A transient failure: try again at `at`. `doubtful`: the platform may have taken the
    message (its answer was lost), so the retry may be a repeat and counts in `resent`."""
    statement = _RETRY_DOUBTFUL if doubtful else _RETRY
    session.execute(statement, {"message_id": message_id, "at_": at, "error_": error[:ERROR_LIMIT]})


def release(session: Session, message_id: int, at: datetime) -> None:
    """Back to pending without counting an attempt (the platform asked us to wait)."""
    session.execute(_RELEASE, {"message_id": message_id, "at_": at})


def mark_blocked(
    session: Session, message_id: int, person_id: int, error: str, channel: str | None = None
) -> None:
    """The person cannot be reached (blocked the bot, left the platform): so is the person."""
    values = {"message_id": message_id, "error_": error[:ERROR_LIMIT], "channel_": channel}
    session.execute(_BLOCKED, values)
    session.execute(_UNREACHABLE, {"person_id_": person_id})


def mark_failed(session: Session, message_id: int, error: str, channel: str | None = None) -> None:
    """Given up: refused by the platform of `channel`, or out of attempts."""
    values = {"message_id": message_id, "error_": error[:ERROR_LIMIT], "channel_": channel}
    session.execute(_FAILED, values)


def recover(session: Session, now: datetime, older_than: timedelta) -> int:
    """Put rows claimed before `now - older_than` and never finished back to pending.

    Their sender died. Each is counted in `resent`, and will be sent again.
    """
    statement = (
        update(OutboxMessage)
        .where(
            col(OutboxMessage.status) == "sending",
            col(OutboxMessage.claimed_at) <= now - older_than,
        )
        .values(status="pending", claimed_at=None, claimed_by=None, resent=OutboxMessage.resent + 1)
    )
    return session.execute(statement).rowcount  # type: ignore[attr-defined]


def release_dead_claims(
    session: Session, alive_since: datetime, now: datetime, unowned_older_than: timedelta
) -> int:
    """Put back the claims of holders whose last heartbeat came before `alive_since` (or who
    have none), and claims without a holder made before `now - unowned_older_than`; returns
    how many. (Heartbeats count wall-clock time; claims the sender's clock.)

    Each counts in `resent`: it is sent again and may already have reached its person.
    """
    alive = select(SenderHeartbeat.holder).where(SenderHeartbeat.seen_at >= alive_since)
    claimed_by = col(OutboxMessage.claimed_by)
    dead = or_(
        and_(claimed_by.is_not(None), claimed_by.not_in(alive)),
        and_(claimed_by.is_(None), col(OutboxMessage.claimed_at) <= now - unowned_older_than),
    )
    statement = (
        update(OutboxMessage)
        .where(OutboxMessage.status == "sending", dead)  # type: ignore[arg-type]
        .values(status="pending", claimed_at=None, claimed_by=None, resent=OutboxMessage.resent + 1)
    )
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def depth(session: Session) -> int:
    """How many messages wait to be sent."""
    statement = select(func.count()).where(OutboxMessage.status == "pending")
    return int(session.exec(statement).one())


def next_due(session: Session) -> datetime | None:
    """When the earliest message that `claim` could take is due; None if there is none."""
    candidate = aliased(OutboxMessage, name="candidate")
    statement = select(func.min(candidate.next_attempt_at)).where(_ready(candidate))
    return session.exec(statement).one()


def counts_by_status(
    session: Session, kind: str | None = None, broadcast_id: int | None = None
) -> dict[str, int]:
    """Rows per status (every status present, 0 if none), optionally of one kind or broadcast."""
    statement = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    if broadcast_id is not None:
        statement = statement.where(OutboxMessage.broadcast_id == broadcast_id)
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    counts.update({status: int(count) for status, count in session.exec(statement).all()})
    return counts


def resent_total(session: Session) -> int:
    """How many times rows were put back after a sender died (each may be a repeat)."""
    return int(session.exec(select(func.coalesce(func.sum(OutboxMessage.resent), 0))).one())
