"""Webhook mode: Telegram posts each update over HTTP; Starlette serves it under uvicorn.

POST /telegram parses the update with python-telegram-bot (`Update.de_json`) and hands it to
`TelegramBot.apply_update`, as polling hands its batches to `apply_updates`: the dispatcher
commits the update id and its effect in one transaction, the replies are sent, and only then
the answer is 200. When the database could not take it (NotRecorded), 500, so that Telegram
delivers it again; the dedupe by update id makes a redelivery harmless. Replies Telegram
refuses after the commit wait in the outbox.
A request without the right X-Telegram-Bot-Api-Secret-Token gets 403 and changes nothing.
A button press of a chat that already has PRESSES_PER_CHAT updates being applied in this
process gets 200 and changes nothing: it is dropped, with a short "wait" to the first of the
burst (see bot.channels.telegram_flood), so that one chat's flood holds up nobody else.
A body above WEBHOOK_MAX_BODY_BYTES gets 413 (Telegram's updates are a few KiB), one not read
within WEBHOOK_READ_TIMEOUT seconds 408; uvicorn bounds headers and idle connections
(`server_options`).

GET /health tells whether the database answered its last check (checked at most once per
HEALTH_CACHE_SECONDS, whoever asks how often). Metrics are served on their own port
(METRICS_PORT, bound to 127.0.0.1: see bot.metrics); GET /metrics exists here only when
METRICS_TOKEN is set, and answers only a request with `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from telegram import Bot, Update

from bot.app import Sanad
from bot.background import Background
from bot.channels.base import by_channel
from bot.channels.bounded_body import BodyRefused, BodyTooLarge, read_bounded
from bot.channels.telegram import ALLOWED_UPDATES, ERROR_LOGGERS, NotRecorded, TelegramBot, make_bot
from bot.channels.telegram_flood import Backlog, answer_aside
from bot.channels.whatsapp import CHANNEL as WHATSAPP
from bot.channels.whatsapp.service import WhatsApp
from bot.channels.whatsapp.webhook import PATH as WHATSAPP_PATH
from bot.heap import frozen_start
from bot.metrics import CONTENT_TYPE, Cached, Metrics
from bot.settings import Settings

log = logging.getLogger(__name__)
PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token


def webhook_secret(sanad: Sanad) -> str:
    """The configured secret; webhook mode refuses to run without a valid one."""
    secret = sanad.settings.telegram_webhook_secret
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        raise ValueError(
            "TELEGRAM_WEBHOOK_SECRET is not set; webhook mode needs it so that "
            "only Telegram can post updates (1-256 of A-Z a-z 0-9 _ -)"
        )
    if not SECRET_FORMAT.fullmatch(value):
        raise ValueError("TELEGRAM_WEBHOOK_SECRET may only hold 1-256 of A-Z a-z 0-9 _ -")
    return value


def create_app(
    sanad: Sanad,
    telegram: TelegramBot | None,
    metrics: Metrics | None = None,
    whatsapp: WhatsApp | None = None,
    with_background: bool = False,
) -> Starlette:
    """The ASGI app: POST /telegram when `telegram` is given (its lifespan starts it: the
    command list, and the scheduler and sender if it was built with them), GET/POST /whatsapp
    when `whatsapp` is. Without Telegram, `with_background` runs the scheduler and the sender
    here, at WhatsApp's rate."""
    secret = webhook_secret(sanad).encode() if telegram is not None else b""
    # The next message of a chat may reach another web process: it must see at once that
    # this one's replies went out (else it would ask the person where to go on).
    sanad.dispatcher.replied_delay = 0.0
    settings = sanad.settings
    metrics = metrics or Metrics(sanad.engine, settings.metrics_cache_seconds)
    database = Cached(lambda: float(_database_answers(sanad)), settings.health_cache_seconds)
    backlog = Backlog()  # each chat's updates being applied right now, in this process

    async def posted(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            return Response(status_code=403)
        try:
            body = await read_bounded(
                request, settings.webhook_max_body_bytes, settings.webhook_read_timeout
            )
        except BodyRefused as refused:
            log.warning("webhook: %s", refused)
            if isinstance(refused, BodyTooLarge):
                metrics.errors.inc()
            return Response(status_code=refused.status)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:
            log.warning("webhook: a body that is not an update")
            metrics.errors.inc()
            return Response(status_code=400)
        assert telegram is not None
        if not backlog.admit(data):  # a press of a chat already busy: it changes nothing
            answer_aside(telegram.bot, [data], backlog)
            return Response(status_code=200)
        try:
            return await apply(data)
        finally:
            backlog.done(data)

    async def apply(data: dict[str, Any]) -> Response:
        assert telegram is not None
        try:
            update = Update.de_json(data, telegram.bot)
        except Exception:
            log.warning("webhook: a body that is not an update")
            metrics.errors.inc()
            return Response(status_code=400)
        try:
            await telegram.apply_update(update)
        except NotRecorded:
            metrics.errors.inc()
            return Response(status_code=500)
        return Response(status_code=200)

    async def health(request: Request) -> Response:
        answers = database.fresh()  # most calls: no query, no thread
        if answers is None:
            answers = await run_in_threadpool(database.get)
        if answers == 1.0:
            return JSONResponse({"database": "ok"})
        return JSONResponse({"database": "unreachable"}, status_code=503)

    token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else b""

    async def scrape(request: Request) -> Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, b"Bearer " + token):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        counted = [logging.getLogger(name) for name in ERROR_LOGGERS]
        for logger in counted:
            logger.addHandler(metrics.error_log)
        try:
            async with AsyncExitStack() as stack:
                if telegram is not None:
                    await stack.enter_async_context(telegram)
                    log.info("webhook ready on %s", PATH)
                if whatsapp is not None:
                    stack.push_async_callback(whatsapp.close)
                    if telegram is None and with_background:
                        work = Background(
                            sanad,
                            by_channel({WHATSAPP: whatsapp.deliver}),
                            metrics.sent,
                            pace=whatsapp.pace,
                        )
                        await work.start()
                        stack.push_async_callback(work.stop)
                    log.info("webhook ready on %s", WHATSAPP_PATH)
                with frozen_start():
                    yield
        finally:
            for logger in counted:
                logger.removeHandler(metrics.error_log)

    routes = [Route("/health", health)]
    if telegram is not None:
        routes.append(Route(PATH, posted, methods=["POST"]))
    if whatsapp is not None:
        routes += whatsapp.webhook.routes()
    if token:
        routes.append(Route("/metrics", scrape))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(HeaderLimit, limit=settings.webhook_max_header_bytes)],
    )
    app.state.metrics = metrics
    return app


class HeaderLimit:
    """431 for a request whose headers add up to more than `limit` bytes. uvicorn's h11 bound
    (`server_options`) only holds for headers still arriving: ones that come in one read
    (up to 256 KiB) reach the app whole, and are refused here."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.limit:
                await Response(status_code=431)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's bounds on what a client may send: header size, idle keep-alive time, and how
    many connections at once. The header bound is h11's (httptools, which uvicorn prefers
    when it is installed, does not take it): h11 it is."""
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": settings.webhook_max_header_bytes,
        "timeout_keep_alive": settings.webhook_keep_alive_seconds,
        "limit_concurrency": settings.webhook_max_connections,
    }


def _database_answers(sanad: Sanad) -> bool:
    try:
        with sanad.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception as error:
        log.warning("health: the database does not answer (%s)", error.__class__.__name__)
        return False


async def set_webhook(sanad: Sanad, url: str, bot: Bot | None = None) -> None:
    """Register `url` with Telegram, with the secret it will send back on every update."""
    secret = webhook_secret(sanad)
    async with bot or make_bot(sanad) as ready:
        await ready.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)


def serve(app: Starlette, host: str, port: int, settings: Settings) -> None:
    """Serve the webhook app under uvicorn until interrupted (logging stays ours), within
    the bounds of `server_options`."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_config=None, **server_options(settings))
