"""Where each chat stands, read and written with statements built once.

Every update reads and writes its chat's row; through the ORM (identity map, change tracking,
a statement built and keyed per call) that cost several times what the database does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlmodel import Session

from storage.models import Conversation

_TABLE: Table = Conversation.__table__  # type: ignore[attr-defined]
_READ = (select(_TABLE.c.version, _TABLE.c.state)
         .where(_TABLE.c.chat_key == bindparam("key")).with_for_update())
_UPDATE = update(_TABLE).where(_TABLE.c.chat_key == bindparam("key"))
_INSERT = insert(_TABLE)


@dataclass(frozen=True)
class ChatState:
    """A chat's state as stored, how many times it was saved, and whether it has a row yet."""

    version: int
    state: dict[str, Any]
    stored: bool


def read_state(runner: Session | Connection, chat_key: str) -> ChatState:
    """The chat's state, its row locked for the rest of the transaction where the database
    can; an empty state for a chat never seen."""
    row = runner.execute(_READ, {"key": chat_key}).first()
    return ChatState(row.version, dict(row.state), True) if row else ChatState(0, {}, False)


def save_state(runner: Session | Connection, chat_key: str, previous: ChatState,
               state: dict[str, Any], now: datetime, person_id: int | None) -> None:
    """Store the chat's new state over `previous` (as read in this transaction). The person it
    refers to must be stored already (a session's new person flushed)."""
    values = {"state": state, "version": previous.version + 1, "updated_at": now,
              "person_id": person_id}
    if previous.stored:
        runner.execute(_UPDATE, {"key": chat_key, **values})
    else:
        runner.execute(_INSERT, {"chat_key": chat_key, **values})
