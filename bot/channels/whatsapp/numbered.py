"""What the last question an address was shown waits for: what a typed number stands for,
after a question sent as numbered text (more than ten options), and whether it waits for
typed text (a form's text question: there a command word such as "status" is the answer).

Kept in the database (any process may take the answer), per address, and replaced by every
later message (a "2" typed after a plain question is the number 2)."""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.parse import typed as read_typed
from handlers.messages import Incoming
from storage.db import transaction
from storage.people import recall, remember

#: (the numbered options' values, whether typed text is awaited)
Shown = tuple[tuple[str, ...], bool]
NOTHING: Shown = ((), False)


class NumberedChoices:
    """What each address was last asked; a message that asks neither is written only when
    the address was last known to be asked something."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: dict[str, Shown] = {}

    @staticmethod
    def _key(address: str) -> str:
        return f"numbered:{CHANNEL}:{address}"

    def shown(self, address: str, values: tuple[str, ...], typed: bool = False) -> None:
        """`address` was last shown these numbered options (none: a message without), and a
        question that waits for typed text or not. A question with either is always written
        (another process may have written something else since)."""
        now = (values, typed)
        if now == NOTHING and self._known.get(address) == NOTHING:
            return
        with transaction(self.engine) as session:
            unknown = now == NOTHING and address not in self._known
            if unknown and self._stored(session, address) == NOTHING:
                self._known[address] = NOTHING
                return
            stored = json.dumps(
                {"numbered": list(values), "typed": True} if typed else list(values)
            )
            remember(session, self._key(address), stored)
        self._known[address] = now

    def unchanged(self, address: str, values: tuple[str, ...], typed: bool = False) -> bool:
        """Whether `shown` would write nothing (known here, no database read)."""
        return (values, typed) == NOTHING and self._known.get(address) == NOTHING

    def interpret(self, connection: Connection, incoming: Incoming, typed: str | None) -> Incoming:
        """`incoming` as the last question shown to its sender makes of it: typed text is the
        answer to one that waits for it (`typed`: the text as typed, when `incoming.text`
        made a command word of it), a typed number the option it stands for. Read on
        `connection`, in the update's transaction (the Dispatcher's `interpret`): another
        process may have asked the question. A message that is neither reads nothing."""
        if typed is None and not (incoming.text or "").strip().isdecimal():
            return incoming
        asked = self._known[incoming.sender] = self._stored(connection, incoming.sender)
        if typed is not None and asked[1]:
            incoming = replace(incoming, text=read_typed(typed, answer_expected=True))
        number = _option(asked, incoming.text)
        if number is not None:
            incoming = replace(incoming, choice=number, text=None)
        return incoming

    def _stored(self, db: Session | Connection, address: str) -> Shown:
        stored = recall(db, self._key(address))
        if not stored:
            return NOTHING
        value = json.loads(stored)
        if isinstance(value, dict):  # a question waiting for typed text
            return tuple(value.get("numbered", [])), bool(value.get("typed"))
        return tuple(value), False


def _option(asked: Shown, text: str | None) -> str | None:
    """The option value the number typed in `text` stands for, else None."""
    digits = (text or "").strip()
    if not digits.isdecimal():
        return None
    values, number = asked[0], int(digits)
    return values[number - 1] if 1 <= number <= len(values) else None
