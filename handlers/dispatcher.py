"""Applies each incoming message exactly once, in one transaction with its effect."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from handlers.context import Context, Services
from handlers.messages import Incoming, Reply, compact
from handlers.router import route
from locales import DEFAULT_LANGUAGE, supported, translator
from storage.conversations import ChatState, read_chat, save_state
from storage.db import insert_new
from storage.models import ProcessedUpdate
from storage.people import MemberRows, find_person, mark_reachable
from storage.types import utcnow

log = logging.getLogger(__name__)


class Dispatcher:
    """The one entry point channels call: an incoming message in, the replies out."""

    def __init__(self, engine: Engine, services: Services,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.services = services
        self.clock = clock

    def handle(self, incoming: Incoming) -> list[Reply]:
        try:
            # Core statements on a connection; a session only if a handler asks for one.
            with self.engine.connect() as connection, connection.begin():
                if incoming.update_id is not None and not self._first_time(connection, incoming):
                    return []
                chat, found = read_chat(connection, _chat_key(incoming), incoming.channel,
                                        incoming.sender)
                context = self._context(connection, incoming, chat, found)
                try:
                    route(context)
                    context.flush()  # the person the chat's row refers to may be new
                finally:
                    context.close()
                person_id = context.person.id if context.person else None
                save_state(connection, _chat_key(incoming), chat, context.state, context.now,
                           person_id)
                replies = compact(context.replies)
            _log_applied(incoming, context)
            return replies
        except IntegrityError:
            log.info("update %s:%s applied concurrently", incoming.channel, incoming.update_id,
                     extra={"update_id": _update_key(incoming)})
            return []
        except Exception:
            # Nothing of this update was stored; the person may simply try again.
            log.exception("update %s:%s failed", incoming.channel, incoming.update_id,
                          extra={"update_id": _update_key(incoming)})
            tr = translator(self._language_of(incoming))
            return [Reply(tr.gettext("Sorry, something went wrong and this message could not be "
                                     "processed. Your earlier answers are kept; please try "
                                     "again."))]

    def _language_of(self, incoming: Incoming) -> str:
        """The person's chosen language, read afresh (the failed transaction is gone)."""
        try:
            with Session(self.engine) as session:
                person = find_person(session, incoming.channel, incoming.sender)
                if person is not None and person.language:
                    return person.language
        except Exception:  # the database itself may be what failed
            log.warning("could not read the language of %s", incoming.sender)
        return supported(incoming.language_code) or DEFAULT_LANGUAGE

    def _first_time(self, connection: Connection, incoming: Incoming) -> bool:
        """Record the update as applied; False if it already was (a redelivery)."""
        key = f"{incoming.channel}:{incoming.update_id}"
        if insert_new(connection, ProcessedUpdate.__table__,  # type: ignore[attr-defined]
                      {"key": key, "processed_at": self.clock()}, ["key"]):
            return True
        log.info("update %s already applied", key, extra={"update_id": key})
        return False

    def _context(self, connection: Connection, incoming: Incoming, chat: ChatState,
                 found: MemberRows | None) -> Context:
        if found is None:
            language = supported(incoming.language_code) or DEFAULT_LANGUAGE
            return Context(connection=connection, incoming=incoming, services=self.services,
                           now=self.clock(), tr=translator(language), state=chat.state)
        person, organization, group = found
        if not person.reachable:  # they wrote to us, so they unblocked the bot
            person = mark_reachable(connection, person)
        language = person.language or supported(incoming.language_code) or group.language
        return Context(connection=connection, incoming=incoming, services=self.services,
                       now=self.clock(), tr=translator(language), state=chat.state,
                       person=person, organization=organization, group=group)


def _update_key(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.update_id}"


def _log_applied(incoming: Incoming, context: Context) -> None:
    """One line per applied update: its id and the person's internal id, never a name."""
    person_id = context.person.id if context.person is not None else None
    log.info("update %s applied (person %s)", _update_key(incoming), person_id,
             extra={"update_id": _update_key(incoming), "person_id": person_id})


def _chat_key(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.chat_id}"
