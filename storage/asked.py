"""Which question each bot message asked, so that an answer is bound to its question.

When the bot sends the replies of an update while the chat waits for an answer, the platform's
id of the last message sent (the question, with its buttons) is kept with the question the chat
then asked: the conversation's version and what it waited for (`storage.outbox.waiting_for`).
Outbox copies of a question are kept the same way when they are sent. A person who replies to
one of those messages (Telegram's reply, WhatsApp's quoted message) names it: if the chat no
longer waits for that question, the answer is refused instead of landing on the question open
now (handlers.dispatcher).

Only messages that ask something are kept, one row each, and forgotten after REMEMBERED_FOR,
as the record of applied updates is (storage.applied): an answer to an older message is taken
as any answer without a reply is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.applied import FORGET_BATCH, REMEMBERED_FOR
from storage.models import AskedQuestion
from storage.outbox import waiting_for

_TABLE: Table = AskedQuestion.__table__  # type: ignore[attr-defined]
_FIND = select(_TABLE.c.version, _TABLE.c.step).where(
    _TABLE.c.chat_key == bindparam("chat"), _TABLE.c.message_id == bindparam("message")
)


@dataclass(frozen=True)
class Asked:
    """The question a message asked: the conversation's version then, and what it waited for."""

    version: int
    step: str

    @classmethod
    def of(cls, question: Mapping[str, Any]) -> Asked:
        """From the identity `storage.outbox.question_of` gives (an outbox row's `question`)."""
        return cls(int(question["version"]), str(question["step"]))

    def answered(self, state: Mapping[str, Any]) -> bool:
        """Whether a chat with `state` has moved past this question (it waits for another
        one, or for none)."""
        return waiting_for(dict(state)) != self.step


def record_asked(
    runner: Session | Connection, asked: Mapping[tuple[str, str], Asked], now: datetime
) -> None:
    """Keep (chat key, platform message id) -> question for each of `asked`; a message already
    kept (sent again under the same id) keeps its first question."""
    if not asked:
        return
    rows = [
        {
            "chat_key": chat,
            "message_id": message,
            "version": q.version,
            "step": q.step,
            "asked_at": now,
        }
        for (chat, message), q in asked.items()
    ]
    dialect = runner.dialect if isinstance(runner, Connection) else runner.get_bind().dialect
    runner.execute(_insert(dialect.name), rows)


@cache
def _insert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, built once per dialect."""
    if dialect == "postgresql":
        return postgresql.insert(_TABLE).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(_TABLE).on_conflict_do_nothing()
    raise NotImplementedError(f"no conflict-free insert on {dialect}")


def asked_by(runner: Session | Connection, chat_key: str, message_id: str) -> Asked | None:
    """The question the bot's message `message_id` in `chat_key` asked, if it is kept."""
    row = runner.execute(_FIND, {"chat": chat_key, "message": message_id}).first()
    return Asked(int(row[0]), str(row[1])) if row is not None else None


def forget_asked(engine: Engine, now: datetime) -> int:
    """Delete what messages asked more than REMEMBERED_FOR before `now`, a batch per
    transaction; returns how many."""
    key = tuple_(_TABLE.c.chat_key, _TABLE.c.message_id)
    old = (
        select(_TABLE.c.chat_key, _TABLE.c.message_id)
        .where(_TABLE.c.asked_at < now - REMEMBERED_FOR)
        .limit(FORGET_BATCH)
    )
    forgotten = 0
    while True:
        with engine.begin() as connection:
            deleted = connection.execute(delete(_TABLE).where(key.in_(old))).rowcount
        forgotten += deleted
        if deleted < FORGET_BATCH:
            return forgotten
