"""What a typed number stands for, after a question sent as numbered text (more than ten
options): kept in the database (any process may take the answer), per address, and replaced by
every later message (a "2" typed after a plain question is the number 2)."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from bot.channels.whatsapp import CHANNEL
from storage.db import transaction
from storage.people import recall, remember


class NumberedChoices:
    """The numbered options each address was last shown; writes only when they change."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: dict[str, tuple[str, ...]] = {}

    @staticmethod
    def _key(address: str) -> str:
        return f"numbered:{CHANNEL}:{address}"

    def shown(self, address: str, values: tuple[str, ...]) -> None:
        """`address` was last shown these numbered options (none: a message without)."""
        if self._known.get(address) == values:
            return
        if not values and address not in self._known and not self._stored(address):
            self._known[address] = ()
            return
        with transaction(self.engine) as session:
            remember(session, self._key(address), json.dumps(list(values)))
        self._known[address] = values

    def choice(self, address: str, text: str | None) -> str | None:
        """The option value a typed number stands for, else None."""
        digits = (text or "").strip()
        if not digits.isdecimal():
            return None
        values = self._known.get(address)
        if values is None:
            values = self._stored(address)
            self._known[address] = values
        number = int(digits)
        return values[number - 1] if 1 <= number <= len(values) else None

    def _stored(self, address: str) -> tuple[str, ...]:
        with transaction(self.engine) as session:
            stored = recall(session, self._key(address))
        return tuple(json.loads(stored)) if stored else ()
