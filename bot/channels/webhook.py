"""Webhook mode: Telegram posts each update over HTTP; Starlette serves it under uvicorn.

POST /telegram answers 200 only after the update went through the same PTB Application as
polling, whose dispatcher commits the update id and its effect in one transaction. A failure
answers 500 so that Telegram redelivers; the dedupe by update id makes redelivery harmless.
A request without the right X-Telegram-Bot-Api-Secret-Token gets 403 and changes nothing.
GET /health tells whether the database answers; GET /metrics is Prometheus text.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Bot, Update
from telegram.ext import Application, ContextTypes

from bot.app import Sanad
from bot.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)
PATH = "/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token
ALLOWED_UPDATES = ["message", "callback_query"]

_failures: ContextVar[list[BaseException] | None] = ContextVar("webhook_failures", default=None)


def webhook_secret(sanad: Sanad) -> str:
    """The configured secret; webhook mode refuses to run without a valid one."""
    secret = sanad.settings.telegram_webhook_secret
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        raise ValueError("TELEGRAM_WEBHOOK_SECRET is not set; webhook mode needs it so that "
                         "only Telegram can post updates (1-256 of A-Z a-z 0-9 _ -)")
    if not SECRET_FORMAT.fullmatch(value):
        raise ValueError("TELEGRAM_WEBHOOK_SECRET may only hold 1-256 of A-Z a-z 0-9 _ -")
    return value


def create_app(sanad: Sanad, application: Application, metrics: Metrics | None = None,
               ) -> Starlette:
    """The ASGI app. Its lifespan initializes and starts `application` (and its post_init:
    the command list, and the scheduler and sender if it was built with them)."""
    secret = webhook_secret(sanad).encode()
    metrics = metrics or Metrics(sanad.engine)
    application.add_error_handler(_remember_failure)

    async def telegram(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            return Response(status_code=403)
        metrics.updates.inc()
        try:
            update = Update.de_json(await request.json(), application.bot)
        except Exception:
            log.warning("webhook: a body that is not an update")
            metrics.errors.inc()
            return Response(status_code=400)
        failures: list[BaseException] = []
        token = _failures.set(failures)
        try:
            await application.process_update(update)
        except Exception:
            log.exception("update telegram:%s raised", update.update_id,
                          extra={"update_id": f"telegram:{update.update_id}"})
            failures.append(RuntimeError("process_update raised"))
        finally:
            _failures.reset(token)
        if failures:
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
        errors = logging.getLogger("handlers")
        errors.addHandler(metrics.error_log)
        await application.initialize()
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        log.info("webhook ready on %s", PATH)
        try:
            yield
        finally:
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
            await application.shutdown()
            errors.removeHandler(metrics.error_log)

    routes = [Route(PATH, telegram, methods=["POST"]), Route("/health", health),
              Route("/metrics", scrape)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app


async def _remember_failure(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """PTB hands handler exceptions here instead of raising them from process_update."""
    update_id = getattr(update, "update_id", None)
    log.error("update telegram:%s failed", update_id, exc_info=context.error,
              extra={"update_id": f"telegram:{update_id}"})
    failures = _failures.get()
    if failures is not None and context.error is not None:
        failures.append(context.error)


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
    from bot.channels.telegram import make_bot

    secret = webhook_secret(sanad)
    async with bot or make_bot(sanad) as ready:
        await ready.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
