"""Webhook mode: Telegram posts each update over HTTP; Starlette serves it under uvicorn.

POST /telegram answers 200 only after the update went through the same PTB Application as
polling, whose dispatcher commits the update id and its effect in one transaction. When the
database could not take it, 500, so that Telegram delivers it again; the dedupe by update id
makes a redelivery harmless. Replies Telegram refuses after the commit wait in the outbox.
A request without the right X-Telegram-Bot-Api-Secret-Token gets 403 and changes nothing.
GET /health tells whether the database answers; GET /metrics is Prometheus text.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Bot, Update
from telegram.ext import Application

from bot.app import Sanad
from bot.background import Background
from bot.channels.base import by_channel
from bot.channels.telegram import (
    ALLOWED_UPDATES,
    ERROR_LOGGERS,
    NotRecorded,
    apply_update,
    make_bot,
    running,
)
from bot.channels.whatsapp import CHANNEL as WHATSAPP
from bot.channels.whatsapp.service import WhatsApp
from bot.channels.whatsapp.webhook import PATH as WHATSAPP_PATH
from bot.metrics import CONTENT_TYPE, Metrics

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
    application: Application | None,
    metrics: Metrics | None = None,
    whatsapp: WhatsApp | None = None,
    with_background: bool = False,
) -> Starlette:
    """The ASGI app: POST /telegram when `application` is given (its lifespan initializes and
    starts it, and its post_init: the command list, and the scheduler and sender if it was built
    with them), GET/POST /whatsapp when `whatsapp` is. Without Telegram, `with_background` runs
    the scheduler and the sender here, at WhatsApp's rate."""
    secret = webhook_secret(sanad).encode() if application is not None else b""
    # The next message of a chat may reach another web process: it must see at once that
    # this one's replies went out (else it would ask the person where to go on).
    sanad.dispatcher.replied_delay = 0.0
    metrics = metrics or Metrics(sanad.engine)

    async def telegram(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            return Response(status_code=403)
        try:
            assert application is not None
            update = Update.de_json(await request.json(), application.bot)
        except Exception:
            log.warning("webhook: a body that is not an update")
            metrics.errors.inc()
            return Response(status_code=400)
        try:
            assert application is not None
            await apply_update(application, update)
        except NotRecorded:
            metrics.errors.inc()
            return Response(status_code=500)
        return Response(status_code=200)

    async def health(request: Request) -> Response:
        if await run_in_threadpool(_database_answers, sanad):
            return JSONResponse({"database": "ok"})
        return JSONResponse({"database": "unreachable"}, status_code=503)

    async def scrape(request: Request) -> Response:
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        counted = [logging.getLogger(name) for name in ERROR_LOGGERS]
        for logger in counted:
            logger.addHandler(metrics.error_log)
        try:
            async with AsyncExitStack() as stack:
                if application is not None:
                    await stack.enter_async_context(running(application))
                    log.info("webhook ready on %s", PATH)
                if whatsapp is not None:
                    stack.push_async_callback(whatsapp.close)
                    if application is None and with_background:
                        work = Background(
                            sanad,
                            by_channel({WHATSAPP: whatsapp.deliver}),
                            metrics.sent,
                            per_second=whatsapp.messages_per_second,
                            burst=whatsapp.burst,
                        )
                        await work.start()
                        stack.push_async_callback(work.stop)
                    log.info("webhook ready on %s", WHATSAPP_PATH)
                yield
        finally:
            for logger in counted:
                logger.removeHandler(metrics.error_log)

    routes = [Route("/health", health), Route("/metrics", scrape)]
    if application is not None:
        routes.append(Route(PATH, telegram, methods=["POST"]))
    if whatsapp is not None:
        routes += whatsapp.webhook.routes()
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app


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


def serve(app: Starlette, host: str, port: int) -> None:
    """Serve the webhook app under uvicorn until interrupted (logging stays ours)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_config=None)
