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
    find_members,
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
# Several chats' rows at once, in the order of their keys: the order in which every writer
# of several chats' rows takes their locks (see `mark_replied`).
_READ_SEVERAL = (
    select(_TABLE.c.chat_key, _TABLE.c.version, _TABLE.c.state, _TABLE.c.replied_version)
    .where(_TABLE.c.chat_key.in_(bindparam("keys", expanding=True)))
    .order_by(_TABLE.c.chat_key)
    .with_for_update()
)
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


def read_chats(
    runner: Session | Connection, wanted: Sequence[tuple[str, str, str]]
) -> dict[str, tuple[StoredChat, MemberRows | None]]:
    """`read_chat` of several chats (chat key, channel, address: who writes in it), each
    once, in two queries whatever their number (their rows and the people)."""
    keys = [key for key, _, _ in wanted]
    rows = runner.execute(_READ_SEVERAL, {"keys": keys}).all() if keys else []
    chats = {row[0]: _stored_chat(row[1:]) for row in rows}
    members = find_members(runner, [(channel, address) for _, channel, address in wanted])
    return {
        key: (chats.get(key) or StoredChat(0, {}, False), members.get((channel, address)))
        for key, channel, address in wanted
    }


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
    values = _new_values(previous, state, now, person_id)
    if previous.stored:
        _UPDATE_HOT.run(runner, {"key": chat_key, **values})
    else:
        runner.execute(_INSERT, {"chat_key": chat_key, **values})


def _new_values(
    previous: StoredChat, state: dict[str, Any], now: datetime, person_id: int | None
) -> dict[str, Any]:
    return {
        "state": state,
        "version": previous.version + 1,
        "updated_at": now,
        "person_id": person_id,
    }


class LaterStates:
    """`save_state` of chats whose rows were read in this transaction, written together (one
    statement for all of them) by `write`, before the transaction commits. A chat without a
    row yet gets it at once: what else the transaction writes may refer to it."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def save(
        self,
        runner: Session | Connection,
        chat_key: str,
        previous: StoredChat,
        state: dict[str, Any],
        now: datetime,
        person_id: int | None,
    ) -> None:
        if not previous.stored:
            save_state(runner, chat_key, previous, state, now, person_id)
            return
        self._rows.append({"key": chat_key, **_new_values(previous, state, now, person_id)})

    def write(self, runner: Session | Connection) -> None:
        rows, self._rows = self._rows, []
        if rows:
            runner.execute(_UPDATE, rows)


def mark_replied(session: Session, replied: dict[str, int]) -> None:
    """Record that the replies of these chats' versions (chat key -> version) were handed to
    the channel; a row already saved again keeps its newer mark."""
    if replied:
        session.execute(
            _REPLIED, [{"key": key, "replied": version} for key, version in replied.items()]
        )
