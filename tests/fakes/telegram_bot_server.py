"""The fake Telegram Bot API over real HTTP, and Telegram's side of webhooks.

:func:`serving` puts a :class:`~tests.fakes.telegram_bot_api.FakeBotApi` behind a uvicorn server
in the current event loop, so that separate processes (``python -m bot run``, ``webhook``,
``worker``) reach it through ``TELEGRAM_BASE_URL``::

    api = FakeBotApi()
    async with serving(api) as base_url:          # "http://127.0.0.1:PORT/bot"
        env = {"TELEGRAM_BASE_URL": base_url, ...}
        ...                                         # start `python -m bot run` with env
        api.user(7).text("hello")
        await api.wait_for(lambda m: m.chat_id == 7, timeout=10)

Every request goes through :meth:`FakeBotApi.handle`, the same code the in-process
:class:`~tests.fakes.telegram_bot_api.FakeRequest` calls: limits, 429s, ``fail_next``,
``on_request``, ``getUpdates`` long polling and offset confirmation behave identically.
Parameters arrive as PTB sends them over HTTP (urlencoded or multipart form fields, files as
multipart parts; JSON bodies work too) and are decoded to the values PTB would have handed
the in-process fake (``chat_id`` an int, ``reply_markup`` a dict, ``text`` a string).

:func:`pushing_webhooks` plays Telegram when a webhook is set: it takes the updates queued in
the api (the queue ``getUpdates`` reads) and POSTs each to one of several URLs, round robin,
with the secret header, up to ``max_connections`` at once but one at a time per chat, in
order. An update is forgotten only after a 2xx answer; otherwise it is posted again (to the
next URL, after a short backoff) until one takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from typing import Any, cast
from urllib.parse import parse_qsl

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram.request import RequestData

from tests.fakes.telegram_bot_api import FakeBotApi, JSONDict, _Pending

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM_MAX_CONNECTIONS = 40  # setWebhook's default max_connections

#: Parameters Telegram reads as strings even when they look like JSON ("35", "true", "1").
#: Every other form value is JSON-decoded when it parses, as PTB JSON-encodes non-strings.
STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "file_id",
        "url",
        "secret_token",
        "action",
        "language_code",
        "inline_message_id",
        "filename",
        "ip_address",
        "description",
        "short_description",
        "name",
        "title",
        "question",
        "emoji",
        "message_effect_id",
        "business_connection_id",
        "photo",
        "document",
        "query",
        "payload",
        "switch_pm_parameter",
    }
)

UploadedFile = tuple[str, bytes, str]


# --- serving the Bot API over HTTP -------------------------------------------------------------


class _Received:
    """The two things :meth:`FakeBotApi.handle` reads of PTB's ``RequestData``, rebuilt from an
    HTTP request: the parameters and the uploaded files (part name -> name, bytes, type)."""

    def __init__(self, parameters: JSONDict, multipart_data: dict[str, UploadedFile]) -> None:
        self.parameters = parameters
        self.multipart_data = multipart_data
        self.contains_files = bool(multipart_data)


def decode_value(name: str, value: str) -> Any:
    """A form value as the Bot API reads it (see :data:`STRING_PARAMS`)."""
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_multipart(content_type: str, body: bytes) -> tuple[JSONDict, dict[str, UploadedFile]]:
    """Split a ``multipart/form-data`` body into form fields and uploaded files."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError("multipart body without a boundary")
    fields: JSONDict = {}
    files: dict[str, UploadedFile] = {}
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    for section in (b"\r\n" + body).split(delimiter)[1:]:
        if section.startswith(b"--"):
            break
        head, separator, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without headers")
        headers = HeaderParser().parsestr(head.decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise ValueError("multipart part without a name")
        filename = headers.get_filename()
        if filename is None:
            fields[name] = decode_value(name, content.decode("utf-8"))
        else:
            files[name] = (filename, content, headers.get_content_type())
    return fields, files


async def read_parameters(request: Request) -> tuple[JSONDict, dict[str, UploadedFile]]:
    """Parameters (query string and body) and uploaded files of a Bot API request."""
    params: JSONDict = {k: decode_value(k, v) for k, v in request.query_params.items()}
    files: dict[str, UploadedFile] = {}
    body = await request.body()
    if not body:
        return params, files
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON body must be an object")
        params.update(decoded)
    elif content_type.startswith("multipart/form-data"):
        fields, files = parse_multipart(content_type, body)
        params.update(fields)
    else:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        params.update({k: decode_value(k, v) for k, v in pairs})
    return params, files


def _error_response(status: int, description: str) -> Response:
    body = {"ok": False, "error_code": status, "description": description}
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def create_app(api: FakeBotApi, token: str | None = None) -> Starlette:
    """The Starlette app serving ``api``: ``/bot{token}/{method}`` and
    ``/file/bot{token}/{path}``. With ``token``, other tokens get 401 like Telegram's."""

    def wrong_token(request: Request) -> bool:
        return token is not None and request.path_params["token"] != token

    async def call(request: Request) -> Response:
        if wrong_token(request):
            return _error_response(401, "Unauthorized")
        try:
            params, files = await read_parameters(request)
        except (ValueError, UnicodeDecodeError) as error:
            return _error_response(400, f"Bad Request: {error}")
        data = cast(RequestData, _Received(params, files))
        handling = api.handle(str(request.url), request.method, data)
        if request.path_params["method"] == "getUpdates":
            status, payload = await _unless_closing(handling, closing)
        else:
            status, payload = await handling
        return Response(payload, status_code=status, media_type="application/json")

    async def download(request: Request) -> Response:
        if wrong_token(request):
            return _error_response(401, "Unauthorized")
        status, payload = await api.handle(str(request.url), "GET", None)
        media_type = "application/octet-stream" if status == 200 else "application/json"
        return Response(payload, status_code=status, media_type=media_type)

    routes = [
        Route("/bot{token}/{method}", call, methods=["GET", "POST"]),
        Route("/file/bot{token}/{path:path}", download, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    closing = app.state.closing = asyncio.Event()
    return app


async def _unless_closing(
    handling: Coroutine[Any, Any, tuple[int, bytes]], closing: asyncio.Event
) -> tuple[int, bytes]:
    """A long poll, cut short with no updates when the server closes (its client may be gone:
    a stopped bot process), so that closing does not wait for the poll's timeout."""
    poll = asyncio.ensure_future(handling)
    closed = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({poll, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if poll.done():
        return poll.result()
    poll.cancel()
    await asyncio.wait({poll}, timeout=0.5)
    return 200, b'{"ok": true, "result": []}'


@contextlib.asynccontextmanager
async def serving(
    api: FakeBotApi,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    shutdown_timeout: float = 1.0,
) -> AsyncIterator[str]:
    """Serve ``api`` over HTTP in the running event loop for the duration of the block.

    Yields the base URL for ``TELEGRAM_BASE_URL`` (``"http://127.0.0.1:PORT/bot"``; the file
    URL is the same with ``/file/bot``, which Sanad's settings derive). ``port=0`` takes a free
    port. With ``token``, requests for another token get 401. On exit, requests still running
    (long polls) are given ``shutdown_timeout`` seconds, then cancelled.
    """
    app = create_app(api, token)
    async with serving_asgi(app, host, port, shutdown_timeout=shutdown_timeout) as root:
        try:
            yield f"{root}/bot"
        finally:
            app.state.closing.set()


@contextlib.asynccontextmanager
async def serving_asgi(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout: float = 1.0,
) -> AsyncIterator[str]:
    """Serve any ASGI ``app`` (without its lifespan) under uvicorn in the running event loop;
    yields its root URL (``"http://127.0.0.1:PORT"``). ``port=0`` takes a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without, every answer waits ~40 ms for a delayed
        # ACK (Nagle), which a socket made by asyncio itself would not.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
        bound = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=shutdown_timeout,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what Server.serve would set (off)
        await server.startup(sockets=[sock])
    except BaseException:
        sock.close()
        raise
    ticking = asyncio.create_task(server.main_loop(), name=f"uvicorn-{bound}")
    try:
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        yield f"http://{shown}:{bound}"
    finally:
        server.should_exit = True
        await ticking
        await server.shutdown(sockets=[sock])


# --- Telegram's webhook side -------------------------------------------------------------------


def chat_of(update: JSONDict) -> object:
    """What orders this update: its chat (or the user, for updates without a chat), or the
    update itself when it has neither."""
    for key, value in update.items():
        if key == "update_id" or not isinstance(value, dict):
            continue
        chat = value.get("chat") or (value.get("message") or {}).get("chat")
        if isinstance(chat, dict) and "id" in chat:
            return ("chat", chat["id"])
        user = value.get("from") or value.get("user")
        if isinstance(user, dict) and "id" in user:
            return ("chat", user["id"])
    return ("update", update.get("update_id"))


@dataclass
class WebhookPusher:
    """Delivers the queued updates of ``api`` to ``urls``; see :func:`pushing_webhooks`.

    ``delivered`` counts updates answered 2xx (and forgotten); ``retried`` counts posts that
    failed and were made again; ``failures`` counts the reasons (``"500"``, ``"ConnectError"``
    ...); ``posted`` counts posts per URL.
    """

    api: FakeBotApi
    urls: list[str]
    secret: str
    max_connections: int = TELEGRAM_MAX_CONNECTIONS
    retry_delay: float = 0.05
    max_retry_delay: float = 1.0
    timeout: float = 30.0
    delivered: int = 0
    retried: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    posted: Counter[str] = field(default_factory=Counter)
    _in_flight: dict[int, _Pending] = field(default_factory=dict)
    _busy: set[object] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _client: httpx.AsyncClient | None = None
    _stopping: bool = False

    @property
    def in_flight(self) -> int:
        """Updates being posted (or waiting to be posted again) right now."""
        return len(self._in_flight)

    @property
    def pending(self) -> int:
        """Updates not yet delivered (in flight or waiting)."""
        return len(self.api._pending)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued update was delivered (``TimeoutError`` otherwise)."""
        deadline = time.monotonic() + timeout
        while self.api._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{len(self.api._pending)} updates still undelivered "
                    f"after {timeout}s; failures: {dict(self.failures)}"
                )
            await self.api._updates_signal.wait(remaining)

    async def run(self) -> None:
        """Start deliveries whenever an update is queued or a chat becomes free."""
        limits = httpx.Limits(
            max_connections=self.max_connections, max_keepalive_connections=self.max_connections
        )
        async with httpx.AsyncClient(limits=limits, timeout=self.timeout) as client:
            self._client = client
            try:
                while not self._stopping:
                    self._start_ready()
                    await self.api._updates_signal.wait(0.5)
            finally:
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._client = None

    def _start_ready(self) -> None:
        """Post the oldest waiting update of every chat that has none in flight."""
        if len(self._in_flight) >= self.max_connections:
            return
        seen: set[object] = set()
        for pending in sorted(self.api._pending, key=lambda p: int(p.update["update_id"])):
            chat = chat_of(pending.update)
            if chat in seen:
                continue
            seen.add(chat)
            if id(pending) in self._in_flight or chat in self._busy:
                continue
            self._busy.add(chat)
            self._in_flight[id(pending)] = pending
            task = asyncio.create_task(self._deliver(pending, chat))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            if len(self._in_flight) >= self.max_connections:
                return

    async def stop(self) -> None:
        """Stop posting; updates in flight stay queued (as when Telegram's post is cut off)."""
        # A flag rather than Task.cancel: on Python 3.11 asyncio.wait_for (inside the fake's
        # signal) swallows a cancellation that arrives as the awaited future completes.
        self._stopping = True
        self.api._updates_signal.notify()

    async def _deliver(self, pending: _Pending, chat: object) -> None:
        body = json.dumps(pending.update).encode()
        headers = {SECRET_HEADER: self.secret, "Content-Type": "application/json"}
        delay = self.retry_delay
        try:
            while True:
                url = self.urls[next(self._turn) % len(self.urls)]
                self.posted[url] += 1
                reason = await self._post(url, body, headers)
                if reason is None:
                    break
                self.failures[reason] += 1
                self.retried += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
            self.api._pending = [p for p in self.api._pending if p is not pending]
            self.delivered += 1
        finally:
            del self._in_flight[id(pending)]
            self._busy.discard(chat)
            self.api._updates_signal.notify()

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """Post once; ``None`` when the receiver took the update, else why not."""
        assert self._client is not None
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return error.__class__.__name__
        return None if 200 <= response.status_code < 300 else str(response.status_code)


@contextlib.asynccontextmanager
async def pushing_webhooks(
    api: FakeBotApi,
    urls: list[str],
    secret: str,
    *,
    max_connections: int = TELEGRAM_MAX_CONNECTIONS,
    retry_delay: float = 0.05,
    max_retry_delay: float = 1.0,
    timeout: float = 30.0,
) -> AsyncIterator[WebhookPusher]:
    """Deliver ``api``'s queued updates to ``urls`` as Telegram does once a webhook is set.

    Each update is POSTed as JSON with the ``X-Telegram-Bot-Api-Secret-Token: secret`` header
    to the next URL in turn (round robin, like a load balancer in front of several web
    processes). At most ``max_connections`` posts run at once, never two of the same chat, and
    a chat's updates go in ``update_id`` order. An update is forgotten (leaves the queue) only
    after a 2xx answer; a non-2xx answer, a connection error or no answer within ``timeout``
    seconds means posting it again to the next URL, after ``retry_delay`` seconds doubling up
    to ``max_retry_delay``. Updates still undelivered when the block ends stay queued.

    While the block runs, ``api.webhook_url`` is set (so ``getUpdates`` answers 409 Conflict,
    as Telegram does); it is restored at the end.
    """
    if not urls:
        raise ValueError("pushing_webhooks needs at least one URL")
    pusher = WebhookPusher(
        api, list(urls), secret, max_connections, retry_delay, max_retry_delay, timeout
    )
    previous_url = api.webhook_url
    api.webhook_url = urls[0]
    task = asyncio.create_task(pusher.run(), name="webhook-pusher")
    try:
        yield pusher
    finally:
        await pusher.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), 2.0)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        api.webhook_url = previous_url
