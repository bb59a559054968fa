"""GET and POST /whatsapp: Meta's verification, and signed event notifications.

GET: `hub.mode=subscribe` with the right `hub.verify_token` -> 200 and `hub.challenge` as plain
text; anything else -> 403.

POST: a body above WEBHOOK_MAX_BODY_BYTES gets 413, one not read within WEBHOOK_READ_TIMEOUT
seconds 408, as on Telegram's route (bot.channels.bounded_body). The body must carry
`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app secret>` (compared in
constant time), else 401 and nothing changes. Then each event, in
the body's order:

* a message -> an `Incoming` applied through the Dispatcher, which records its message id in
  the transaction that stores its effect (a redelivery changes nothing); an image is fetched
  first and kept under DATA_DIR (its link expires within minutes); the replies are sent, and
  any the Cloud API refuses wait in the outbox;
* a message the bot cannot read (audio, sticker, ...) -> a short translated answer, recorded
  once the same way, nothing else;
* "Show" on a template -> that outbox message goes out again, now inside the window;
* a status report -> the outbox row it is about: delivered/read/failed; failed because the
  window closed (131047) -> sent again as its template; not on WhatsApp (131026) -> the
  person is unreachable.

Only then the answer is 200. When the database could not take an event, 500: Meta delivers
the body again (for days), and what was applied is not applied twice.

The database work runs off the event loop, as the Telegram channel's does: a message is
applied by `Dispatcher.apply` on the dispatcher's few threads (one chat at a time, each thread
with its kept connection, so 20 concurrent deliveries do not exhaust the pool). What the
channel reads to understand a message (what a typed number stands for, whether the question
shown waits for typed text) is read in the same transaction (`NumberedChoices.interpret`, the
Dispatcher's `interpret`), and the replies carry their language: a typed message costs one
thread hop, as on Telegram. The channel's own writes (what a sent question asks, when it
changed) go through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import datetime
from functools import partial
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.app import Sanad
from bot.channels.base import KeptFile
from bot.channels.bounded_body import BodyRefused, read_bounded
from bot.channels.whatsapp import CHANNEL
from bot.channels.whatsapp.client import UNDELIVERABLE, WINDOW, CloudClient
from bot.channels.whatsapp.deliver import outbox_row, whatsapp_reply
from bot.channels.whatsapp.numbered import NumberedChoices
from bot.channels.whatsapp.parse import Inbound, Status, Unreadable, events
from bot.channels.whatsapp.render import Outgoing, render
from bot.channels.whatsapp.templates import SHOW
from bot.channels.whatsapp.window import WINDOW_CLOSED
from handlers.messages import Incoming, Photo, Reply, TryLater
from locales import DEFAULT_LANGUAGE, translator
from outbox.pace import Pace
from outbox.sender import RetryAfter, Transient
from storage.applied import record_applied
from storage.db import transaction
from storage.deliveries import (
    Report,
    apply_report,
    find_by_platform_id,
    keep,
    lock_row,
    seen_inbound,
    send_again,
)
from storage.models import OutboxMessage
from storage.people import find_person

log = logging.getLogger(__name__)
PATH = "/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class WhatsAppWebhook:
    """The WhatsApp side of the webhook process."""

    def __init__(
        self,
        sanad: Sanad,
        client: CloudClient,
        kept: KeptFile | None = None,
        *,
        pace: Pace | None = None,
    ) -> None:
        settings = sanad.settings
        assert settings.whatsapp_app_secret is not None
        assert settings.whatsapp_verify_token is not None
        self.sanad = sanad
        self.client = client
        self.kept = kept  # the photos another platform keeps, as files here
        self.pace = pace  # the number's, shared with the outbox sender
        self.dispatcher = sanad.dispatcher
        self.engine: Engine = sanad.engine
        self.media_dir = settings.media_dir / CHANNEL
        self.numbered = NumberedChoices(sanad.engine)
        self._secret = settings.whatsapp_app_secret.get_secret_value().encode()
        self._verify_token = settings.whatsapp_verify_token.get_secret_value().encode()
        self._max_body_bytes = settings.webhook_max_body_bytes
        self._read_timeout = settings.webhook_read_timeout

    def routes(self) -> list[Route]:
        return [
            Route(PATH, self.verify, methods=["GET"]),
            Route(PATH, self.receive, methods=["POST"]),
        ]

    # --- verification and signature ---------------------------------------------------------

    async def verify(self, request: Request) -> Response:
        query = request.query_params
        given = query.get("hub.verify_token", "").encode()
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(given, self._verify_token):
            return PlainTextResponse(query.get("hub.challenge", ""))
        return Response(status_code=403)

    def signed(self, body: bytes, header: str) -> bool:
        expected = "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(header.encode(), expected.encode())

    # --- events ---------------------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        try:
            body = await read_bounded(request, self._max_body_bytes, self._read_timeout)
        except BodyRefused as refused:
            log.warning("whatsapp webhook: %s", refused)
            return Response(status_code=refused.status)
        if not self.signed(body, request.headers.get(SIGNATURE_HEADER, "")):
            log.warning("whatsapp webhook: a delivery without a valid signature")
            return Response(status_code=401)
        try:
            found = events(json.loads(body))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("whatsapp webhook: a body that is not a Cloud API notification")
            return Response(status_code=400)
        try:
            for event in found:
                if isinstance(event, Status):
                    await asyncio.to_thread(self.status, event)
                elif isinstance(event, Unreadable):
                    await self.unreadable(event)
                else:
                    await self.inbound(event)
        except (TryLater, Transient, OperationalError, InterfaceError) as error:
            log.warning("whatsapp webhook: not applied now (%s); Meta delivers it again", error)
            return Response(status_code=500)
        return Response(status_code=200)

    async def inbound(self, event: Inbound) -> None:
        incoming = event.incoming  # the Dispatcher records when its sender wrote
        if (incoming.choice or "").startswith(SHOW):
            await asyncio.to_thread(self.show, incoming, event.at)
            return
        if event.media_id is not None:
            path = await self._keep_media(event.media_id)
            incoming = _with(incoming, photo=Photo(path=str(path)))
        # What the question last shown makes of typed text or a number: read in the update's
        # own transaction, on the dispatcher's thread.
        replies = await self.dispatcher.apply(
            incoming, partial(self.numbered.interpret, typed=event.typed)
        )
        await self.send_replies(incoming, replies)

    async def _send_paced(self, to: str, outgoing: list[Outgoing], sent_before: int) -> str:
        """Send a reply's messages at the number's pace (shared with the outbox sender);
        `sent_before`: messages of the same answer sent already. Returns WhatsApp's id of the
        last one."""
        chat = (CHANNEL, to)
        if self.pace is not None:
            await self.pace.reply_turn(chat, sent_before)
        shown = ""
        try:
            for item in outgoing:
                shown = await self.client.send(to, item)
        except RetryAfter as flood:  # the number's throughput: the outbox sends it after
            if self.pace is not None:
                self.pace.pause(flood.seconds)
            raise
        finally:
            if self.pace is not None:
                self.pace.done(chat, outbox=False)
        return shown

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send the replies of an applied message; those refused wait in the outbox."""
        sent_before = 0
        shown: str | None = None  # WhatsApp's id of the last message: the question, if one
        # What the last message sent asks (numbered options, typed text): each message
        # replaces what the one before asked, so only the last is written down.
        asks: tuple[tuple[str, ...], bool] | None = None
        for index, reply in enumerate(replies):
            try:
                carried = await whatsapp_reply(reply, self.kept)
                # Words of the channel's own (a list's button, a hint) in the reply's language.
                outgoing = render(carried, translator(reply.language))
                shown = await self._send_paced(incoming.chat_id, outgoing, sent_before)
                sent_before += len(outgoing)
                asks = (outgoing[-1].numbered, reply.expect == "text")
            except Exception as error:
                log.warning(
                    "whatsapp: a reply was not sent (%s); it waits in the outbox",
                    error.__class__.__name__,
                )
                await self._asked(incoming.chat_id, asks)
                await asyncio.to_thread(self.dispatcher.keep_unsent, incoming, replies[index:])
                return
        await self._asked(incoming.chat_id, asks)
        await self.dispatcher.sent(incoming, shown)

    async def _asked(self, to: str, asks: tuple[tuple[str, ...], bool] | None) -> None:
        """Write down what the last message sent to `to` asks (off the event loop, unless
        that changes nothing)."""
        if asks is not None and not self.numbered.unchanged(to, *asks):
            await asyncio.to_thread(self.numbered.shown, to, *asks)

    async def unreadable(self, event: Unreadable) -> None:
        language = await asyncio.to_thread(self._first_unreadable, event)
        if language is None:
            return
        tr = translator(language)
        text = tr.gettext(
            "I can only read text, buttons, photos and locations. Please send your "
            "answer as one of those."
        )
        try:
            await self.client.send(event.wa_id, render(Reply(text), tr)[0])
        except Exception as error:  # a courtesy: the person may simply write again
            log.info("whatsapp: the unreadable-message answer was not sent (%s)", error)

    def show(self, incoming: Incoming, at: datetime) -> None:
        """ "Show" on a template: the message it stood for goes out again, now free-form. When
        its sender wrote (`at`) is recorded too: it opens the 24-hour window."""
        choice = incoming.choice or ""
        with transaction(self.engine) as session:
            seen_inbound(session, CHANNEL, incoming.sender, at)
            connection = session.connection()
            if not record_applied(
                connection, f"{CHANNEL}:{incoming.update_id}", self.dispatcher.clock()
            ):
                return
            person = find_person(session, CHANNEL, incoming.sender)
            try:
                message = session.get(OutboxMessage, int(choice[len(SHOW) :]))
            except ValueError:
                message = None
            if person is None or message is None or message.person_id != person.id:
                log.info("whatsapp: a Show button for no message of this person")
                return
            assert message.id is not None
            send_again(session, message.id, self.dispatcher.clock(), None)

    def status(self, event: Status) -> None:
        """A status report, applied to the outbox row of its message. One that comes before
        the sender recorded the message's id (Meta's webhook was faster than our write) names
        its row in the callback data the sender gave: it is kept, and applied when the id is
        recorded (storage.deliveries.took). Others without a row are direct replies."""
        report = delivery_report(event)
        row = outbox_row(event.callback)
        now = self.dispatcher.clock()
        with transaction(self.engine) as session:
            if row is not None:
                lock_row(session, row)  # the sender records the id before, or after this
            message = find_by_platform_id(session, event.message_id)
            if message is not None and message.id is not None:
                apply_report(session, message.id, report, now)
            elif row is not None:
                keep(session, event.message_id, report, now)

    # --- helpers ----------------------------------------------------------------------------

    def _first_unreadable(self, event: Unreadable) -> str | None:
        """Record a message the bot cannot read, once, and when its sender wrote (it opens the
        24-hour window); their language, or None if it was recorded before. One transaction."""
        with transaction(self.engine) as session:
            key = f"{CHANNEL}:{event.message_id}"
            if not record_applied(session.connection(), key, self.dispatcher.clock()):
                return None
            seen_inbound(session, CHANNEL, event.wa_id, event.at)
            person = find_person(session, CHANNEL, event.wa_id)
            return (person.language if person else None) or DEFAULT_LANGUAGE

    async def _keep_media(self, media_id: str) -> Path:
        """Fetch a received image now and keep it under DATA_DIR."""
        data, mime = await self.client.download(media_id)
        name = hashlib.sha256(data).hexdigest()[:32] + EXTENSIONS.get(mime.split(";")[0], ".jpg")
        target = self.media_dir.resolve() / name
        await run_in_threadpool(_write, target, data)
        return target


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(target)


def delivery_report(event: Status) -> Report:
    """A status in the outbox's neutral terms: failed because the window closed (131047) -> send
    again as its template; not on WhatsApp (131026) -> the person is unreachable."""
    if event.status != "failed":
        return Report(event.status)
    error = event.error or "failed"
    if WINDOW in event.error_codes:
        return Report("failed", error, resend_note=WINDOW_CLOSED)
    return Report("failed", error, unreachable=UNDELIVERABLE in event.error_codes)


def _with(incoming: Incoming, **values: object) -> Incoming:
    from dataclasses import replace

    return replace(incoming, **values)  # type: ignore[arg-type]
