"""What the last question an address was shown waits for: what a typed number stands for,
after a question sent as numbered text (more than ten options), and whether it waits for
typed text (a form's text question: there a command word such as "status" is the answer).

Kept in the database (any process may take the answer), per address, and replaced by every
later message (a "2" typed after a plain question is the number 2)."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from bot.channels.whatsapp import CHANNEL
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
        if now == NOTHING and address not in self._known and self._stored(address) == NOTHING:
            self._known[address] = NOTHING
            return
        stored = json.dumps({"numbered": list(values), "typed": True} if typed else list(values))
        with transaction(self.engine) as session:
            remember(session, self._key(address), stored)
        self._known[address] = now

    def unchanged(self, address: str, values: tuple[str, ...], typed: bool = False) -> bool:
        """Whether `shown` would write nothing (known here, no database read)."""
        return (values, typed) == NOTHING and self._known.get(address) == NOTHING

    def choice(self, address: str, text: str | None) -> str | None:
        """The option value a typed number stands for, else None."""
        digits = (text or "").strip()
        if not digits.isdecimal():
            return None
        known = self._known.get(address)
        if known is None:
            known = self._known[address] = self._stored(address)
        values = known[0]
        number = int(digits)
        return values[number - 1] if 1 <= number <= len(values) else None

    def waits_for_text(self, address: str) -> bool:
        """Whether the last question shown to `address` waits for typed text (read from the
        database: another process may have asked it)."""
        known = self._known[address] = self._stored(address)
        return known[1]

    def _stored(self, address: str) -> Shown:
        with transaction(self.engine) as session:
            stored = recall(session, self._key(address))
        if not stored:
            return NOTHING
        value = json.loads(stored)
        if isinstance(value, dict):  # a question waiting for typed text
            return tuple(value.get("numbered", [])), bool(value.get("typed"))
        return tuple(value), False
