"""Where each chat stands, read and written with statements built once.

Every update reads and writes its chat's row; through the ORM (identity map, change tracking,
a statement built and keyed per call) that cost several times what the database does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlmodel import Session

from storage.hot import HotStatement
from storage.models import Conversation
from storage.people import (
    MEMBER_AT_ADDRESS,
    MEMBER_COLUMNS,
    MEMBER_TABLES,
    MemberRows,
    find_member,
    member_at,
)

_TABLE: Table = Conversation.__table__  # type: ignore[attr-defined]
_READ = (
    select(_TABLE.c.version, _TABLE.c.state, _TABLE.c.replied_version)
    .where(_TABLE.c.chat_key == bindparam("key"))
    .with_for_update()
)
# The same, with the person writing (or nobody) in the same row. FOR UPDATE OF the chat only:
# PostgreSQL refuses to lock the nullable side of an outer join.
_READ_WITH_MEMBER = (
    _READ.add_columns(*MEMBER_COLUMNS)
    .select_from(_TABLE.outerjoin(MEMBER_TABLES, MEMBER_AT_ADDRESS))
    .with_for_update(of=_TABLE)
)
_MEMBER_START = len(_READ.selected_columns)
_READ_WITH_MEMBER_HOT = HotStatement(_READ_WITH_MEMBER)
_UPDATE = update(_TABLE).where(_TABLE.c.chat_key == bindparam("key"))
_UPDATE_HOT = HotStatement(_UPDATE)
_INSERT = insert(_TABLE)
_REPLIED = (
    update(_TABLE)
    .where(_TABLE.c.chat_key == bindparam("key"), _TABLE.c.replied_version < bindparam("replied"))
    .values(replied_version=bindparam("replied"))
)


@dataclass(frozen=True)
class StoredChat:
    """A chat's row as read: its state as stored (the JSON of handlers.state.ChatState, which
    storage does not read), how many times it was saved, and whether it has a row yet."""

    version: int
    state: dict[str, Any]
    stored: bool
    replied: bool = True  # the replies of the last version reached the channel


def read_state(runner: Session | Connection, chat_key: str) -> StoredChat:
    """The chat's state, its row locked for the rest of the transaction where the database
    can; an empty state for a chat never seen."""
    return _stored_chat(runner.execute(_READ, {"key": chat_key}).first())


def read_chat(
    runner: Session | Connection, chat_key: str, channel: str, address: str
) -> tuple[StoredChat, MemberRows | None]:
    """`read_state` and `find_member(channel, address)` in one query where the chat has a row
    (one round trip less for nearly every message); a chat never seen reads the person alone.

    Kept for what `bench.dispatch` measured (6 December 2026, bench/README.md): the two
    queries cost the dispatcher x1.13 CPU and x1.09 wall time per update on PostgreSQL, x1.18
    on SQLite."""
    row = _READ_WITH_MEMBER_HOT.first(
        runner, {"key": chat_key, "channel": channel, "address": address}
    )
    if row is None:
        return StoredChat(0, {}, False), find_member(runner, channel, address)
    return _stored_chat(row), member_at(row, _MEMBER_START)


def _stored_chat(row: Sequence[Any] | None) -> StoredChat:
    """The state from the columns of _READ."""
    if row is None:
        return StoredChat(0, {}, False)
    version, state, replied_version = row[0], row[1], row[2]
    return StoredChat(version, dict(state), True, replied_version >= version)


def save_state(
    runner: Session | Connection,
    chat_key: str,
    previous: StoredChat,
    state: dict[str, Any],
    now: datetime,
    person_id: int | None,
) -> None:
    """Store the chat's new state over `previous` (as read in this transaction). The person it
    refers to must be stored already (a session's new person flushed)."""
    values = {
        "state": state,
        "version": previous.version + 1,
        "updated_at": now,
        "person_id": person_id,
    }
    if previous.stored:
        _UPDATE_HOT.run(runner, {"key": chat_key, **values})
    else:
        runner.execute(_INSERT, {"chat_key": chat_key, **values})


def mark_replied(session: Session, replied: dict[str, int]) -> None:
    """Record that the replies of these chats' versions (chat key -> version) were handed to
    the channel; a row already saved again keeps its newer mark."""
    if replied:
        session.execute(
            _REPLIED, [{"key": key, "replied": version} for key, version in replied.items()]
        )
