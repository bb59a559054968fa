"""In-memory fake of the Telegram Bot API for tests and benchmarks.

The real python-telegram-bot ``Bot``/``Application`` talks to :class:`FakeBotApi` through
:class:`FakeRequest`, a :class:`telegram.request.BaseRequest` subclass (PTB's supported seam
for custom networking). Nothing touches the network.

Typical use::

    fake = FakeBotApi()
    app = fake.application_builder().build()
    app.add_handler(...)
    async with running_polling(app):
        fake.user(7).text("hello")
        msg = await fake.wait_for(lambda m: m.chat_id == 7)

Semantics worth knowing:

* ``getUpdates`` confirms (forgets) updates whose ``update_id`` is below ``offset`` and
  long-polls up to ``timeout`` seconds. Updates queued with :meth:`FakeBotApi.duplicate` are
  delivered once regardless of ``offset`` (a re-delivery, to test dedupe).
* Message ids are counted per chat and shared by user and bot messages, as in private chats.
* Edits are recorded as :class:`SentMessage` too (``method`` tells them apart). Editing to
  identical content answers 400 "message is not modified", and ``editMessageText`` without
  ``reply_markup`` drops the inline keyboard, like Telegram does.
* Texts are stored verbatim: ``parse_mode`` markup is not rendered into entities.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from telegram._utils.types import ODVInput
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, RequestData

JSONDict = dict[str, Any]
RequestHook = Callable[[str, JSONDict], "tuple[int, JSONDict] | None"]

BOT_ID = 4242
BOT_USERNAME = "sanad_test_bot"
BOT_FIRST_NAME = "Sanad"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
COMMANDS_LIMIT = 100  # setMyCommands: commands per list
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")

#: Methods that produce a :class:`SentMessage` and are subject to :meth:`FakeBotApi.limits`.
SEND_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageReplyMarkup"}
)


@dataclass
class SentMessage:
    """One outgoing message (or edit) recorded by the fake server."""

    method: str
    chat_id: int
    message_id: int
    text: str | None
    reply_markup: JSONDict | None
    parse_mode: str | None
    params: JSONDict
    file_name: str | None = None
    file_bytes: bytes | None = None
    file_id: str | None = None


@dataclass
class _Failure:
    """A queued failure registered with :meth:`FakeBotApi.fail_next`."""

    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    times: int


@dataclass
class _Pending:
    """An update waiting to be fetched through ``getUpdates``."""

    update: JSONDict
    forced: bool = False


@dataclass
class _Bucket:
    """Token bucket used for the optional rate limits."""

    rate: float
    capacity: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last refill."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_needed(self) -> float:
        """Seconds until one token is available (0 when available now)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class _Signal:
    """Loop-agnostic "something changed" notification (sync ``notify``, async ``wait``)."""

    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def notify(self) -> None:
        """Wake every current waiter."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Wait for the next :meth:`notify`; return ``False`` on timeout."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that comes
            # just as the future completes, and the cancelled task would go on waiting.
            async with asyncio.timeout(timeout):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)


def utf16_length(text: str) -> int:
    """The length Telegram counts: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _ok(result: Any) -> tuple[int, JSONDict]:
    return 200, {"ok": True, "result": result}


def _error(status: int, description: str, retry_after: int | None = None) -> tuple[int, JSONDict]:
    body: JSONDict = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return status, body


class _ApiError(Exception):
    """Raised inside handlers to answer with a Telegram error."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _chat_id(value: Any) -> int:
    """Parse a ``chat_id`` parameter; usernames are unknown chats here."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, "Bad Request: chat not found") from None


def _scope_key(value: Any) -> str:
    """A BotCommandScope as a key: "default", "all_private_chats" or "chat:<id>"."""
    scope = _as_dict(value) if value is not None else {"type": "default"}
    kind = scope.get("type") if scope else None
    if kind in ("default", "all_private_chats"):
        return str(kind)
    if kind == "chat":
        return f"chat:{_chat_id(scope.get('chat_id') if scope else None)}"
    raise _ApiError(400, "Bad Request: unsupported bot command scope")


def _as_dict(value: Any) -> JSONDict | None:
    """Return ``reply_markup`` style values as a dict (accepts JSON strings)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else None


def _read_content(content: Any) -> bytes:
    """Read multipart content that may be bytes or a file handle."""
    if isinstance(content, bytes | bytearray):
        return bytes(content)
    data = content.read()
    return data.encode() if isinstance(data, str) else bytes(data)


class FakeRequest(BaseRequest):
    """PTB networking backend that answers from a :class:`FakeBotApi` instead of HTTP."""

    def __init__(self, api: FakeBotApi, read_timeout: float | None = 5.0) -> None:
        self._api = api
        self._read_timeout = read_timeout

    @property
    def read_timeout(self) -> float | None:
        """Default read timeout reported to PTB (used to size ``getUpdates`` timeouts)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Route the call to the fake server and return ``(status, payload)``."""
        return await self._api.handle(url, method, request_data)


class FakeUser:
    """A Telegram user in a private chat with the bot; each method enqueues an update."""

    def __init__(
        self,
        api: FakeBotApi,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "ar",
        username: str | None = None,
    ) -> None:
        self.api = api
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username

    @property
    def user_dict(self) -> JSONDict:
        """The ``User`` JSON object for this user."""
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    @property
    def chat_dict(self) -> JSONDict:
        """The private ``Chat`` JSON object for this user."""
        chat: JSONDict = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            chat["username"] = self.username
        return chat

    def _message(self, **content: Any) -> JSONDict:
        message: JSONDict = {
            "message_id": self.api._next_message_id(self.id),
            "date": int(time.time()),
            "chat": self.chat_dict,
            "from": self.user_dict,
            **content,
        }
        return self.api.enqueue({"message": message})

    def text(self, s: str) -> JSONDict:
        """Send a plain text message."""
        return self._message(text=s)

    def reply(self, s: str, to: SentMessage) -> JSONDict:
        """Send a plain text message as a reply to the bot's message ``to`` (Telegram's
        "Reply": the update carries that message as ``reply_to_message``)."""
        replied = self.api._messages.get((to.chat_id, to.message_id))
        if replied is None:
            raise ValueError(f"message {to.message_id} in chat {to.chat_id} is unknown")
        return self._message(text=s, reply_to_message=copy.deepcopy(replied))

    def command(self, name: str, *args: str) -> JSONDict:
        """Send ``/name args`` with a ``bot_command`` entity."""
        cmd = "/" + name.lstrip("/")
        text = " ".join([cmd, *args])
        entity = {"type": "bot_command", "offset": 0, "length": len(cmd)}
        return self._message(text=text, entities=[entity])

    def press(self, callback_data: str, message: SentMessage | None = None) -> JSONDict:
        """Press an inline button on ``message`` (default: last message sent to this user)."""
        target = message or self.api._last_real_message(self.id)
        if target is None:
            raise ValueError(f"no message was sent to user {self.id} to press a button on")
        msg_json = self.api._messages.get((target.chat_id, target.message_id))
        if msg_json is None:
            raise ValueError(f"message {target.message_id} in chat {target.chat_id} is unknown")
        query_id = str(next(self.api._callback_ids))
        self.api._callback_query_ids.add(query_id)
        query = {
            "id": query_id,
            "from": self.user_dict,
            "chat_instance": str(self.id),
            "data": callback_data,
            "message": msg_json,  # stored messages are replaced on edit, never changed
        }
        return self.api.enqueue({"callback_query": query})

    def photo(self, file_id: str, content: bytes = b"...", caption: str | None = None) -> JSONDict:
        """Send a photo; ``file_id`` is registered so the bot can download ``content``."""
        small_id = f"{file_id}_small"
        self.api.add_file(file_id, content)
        self.api.add_file(small_id, content)
        sizes = [
            {
                "file_id": small_id,
                "file_unique_id": f"u_{small_id}",
                "width": 90,
                "height": 90,
                "file_size": len(content),
            },
            {
                "file_id": file_id,
                "file_unique_id": f"u_{file_id}",
                "width": 1280,
                "height": 960,
                "file_size": len(content),
            },
        ]
        extra: JSONDict = {"caption": caption} if caption is not None else {}
        return self._message(photo=sizes, **extra)

    def document(
        self,
        file_id: str,
        content: bytes = b"...",
        file_name: str = "file.bin",
        mime_type: str = "application/octet-stream",
    ) -> JSONDict:
        """Send a document; ``file_id`` is registered so the bot can download ``content``."""
        self.api.add_file(file_id, content)
        doc = {
            "file_id": file_id,
            "file_unique_id": f"u_{file_id}",
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(content),
        }
        return self._message(document=doc)

    def location(self, lat: float, lon: float) -> JSONDict:
        """Share a location."""
        return self._message(location={"latitude": lat, "longitude": lon})


class FakeBotApi:
    """In-memory Telegram Bot API server state.

    Create one per test, hand :meth:`request` objects to PTB, drive it with :meth:`user`,
    and inspect :attr:`sent`. Everything runs on the event loop; no threads.
    """

    bot_user: JSONDict = {
        "id": BOT_ID,
        "is_bot": True,
        "first_name": BOT_FIRST_NAME,
        "username": BOT_USERNAME,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }

    def __init__(self) -> None:
        self.sent: list[SentMessage] = []
        self.calls: list[tuple[str, JSONDict]] = []
        self.callback_answers: list[JSONDict] = []
        self.chat_actions: list[tuple[int, str]] = []
        # The default scope's command lists by language code ("" for every language) ...
        self.commands: dict[str, list[JSONDict]] = {}
        # ... and every scope's: (scope key, language code) -> commands; see `commands_shown`.
        self.scoped_commands: dict[tuple[str, str], list[JSONDict]] = {}
        self.webhook_url: str = ""
        self.blocked: set[int] = set()
        self.on_request: RequestHook | None = None
        self.rejected_429: int = 0
        self._users: dict[int, FakeUser] = {}
        self._pending: list[_Pending] = []
        self._update_seq = 0
        self._message_seq: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._last_by_chat: dict[int, SentMessage] = {}
        self._files: dict[str, bytes] = {}
        self._file_paths: dict[str, str] = {}
        self._upload_seq = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._callback_query_ids: set[str] = set()
        self._failures: list[_Failure] = []
        self._updates_signal = _Signal()
        self._sent_signal = _Signal()
        self._clock: Callable[[], float] = time.monotonic
        self._overall: _Bucket | None = None
        self._per_chat_rate: float | None = None
        self._per_chat_burst: float = 1.0
        self._per_chat: dict[int, _Bucket] = {}
        self._handlers: dict[str, Callable[[JSONDict, RequestData | None], Any]] = {
            "getMe": self._get_me,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "getFile": self._get_file,
            "close": lambda _p, _d: True,
            "logOut": lambda _p, _d: True,
        }

    # ------------------------------------------------------------------ wiring

    def request(self, read_timeout: float | None = 5.0) -> FakeRequest:
        """Return a new PTB request object bound to this server."""
        return FakeRequest(self, read_timeout=read_timeout)

    def application_builder(self, token: str = "123:TEST") -> ApplicationBuilder:
        """An ``ApplicationBuilder`` with token and both request objects wired to this fake."""
        return (
            ApplicationBuilder()
            .token(token)
            .request(self.request())
            .get_updates_request(self.request())
        )

    # ------------------------------------------------------------------ updates

    def user(
        self,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "ar",
        username: str | None = None,
    ) -> FakeUser:
        """A user whose actions enqueue updates."""
        user = FakeUser(self, user_id, first_name, language_code, username)
        self._users[user_id] = user
        return user

    def enqueue(self, update: JSONDict) -> JSONDict:
        """Queue ``update`` for ``getUpdates``; assigns ``update_id`` if missing. Returns it."""
        if "update_id" not in update:
            self._update_seq += 1
            update = {"update_id": self._update_seq, **update}
        else:
            self._update_seq = max(self._update_seq, int(update["update_id"]))
        self._pending.append(_Pending(update))
        self._updates_signal.notify()
        return update

    def duplicate(self, update: JSONDict) -> JSONDict:
        """Re-deliver ``update`` (same ``update_id``) once, even if already confirmed."""
        self._pending.append(_Pending(update, forced=True))
        self._updates_signal.notify()
        return update

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by the client."""
        return [p.update for p in self._pending]

    # ------------------------------------------------------------------ files

    def add_file(self, file_id: str, content: bytes) -> None:
        """Register a downloadable file."""
        self._files[file_id] = bytes(content)
        self._file_paths[f"photos/{file_id}.jpg"] = file_id

    def file_bytes(self, file_id: str) -> bytes:
        """Content of a registered or uploaded file."""
        return self._files[file_id]

    # ------------------------------------------------------------------ failures/limits

    def fail_next(
        self,
        method: str,
        *,
        status: int,
        description: str,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (optionally for ``chat_id``) with an
        error; PTB maps 429+retry_after to RetryAfter, 403 to Forbidden, 400 to BadRequest,
        others to NetworkError."""
        self._failures.append(_Failure(method, status, description, retry_after, chat_id, times))

    def limits(
        self,
        per_second_overall: float | None = None,
        per_chat_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        burst_overall: float | None = None,
        burst_per_chat: float | None = None,
    ) -> None:
        """Enable (or with ``None`` disable) token-bucket rate limits on :data:`SEND_METHODS`.

        Bursts default to ``max(1, rate)``. Excess calls get 429 with an integer
        ``retry_after`` (>= 1) and increment :attr:`rejected_429`.
        """
        self._clock = clock
        now = clock()
        self._overall = None
        if per_second_overall:
            cap = burst_overall or max(1.0, per_second_overall)
            self._overall = _Bucket(per_second_overall, cap, cap, now)
        self._per_chat_rate = per_chat_per_second or None
        self._per_chat_burst = burst_per_chat or max(1.0, per_chat_per_second or 1.0)
        self._per_chat = {}

    # ------------------------------------------------------------------ queries

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """All recorded messages/edits for ``chat_id``, oldest first."""
        return [m for m in self.sent if m.chat_id == chat_id]

    def last_to(self, chat_id: int) -> SentMessage:
        """The last recorded message/edit for ``chat_id`` (``LookupError`` if none)."""
        msgs = self.messages_to(chat_id)
        if not msgs:
            raise LookupError(f"nothing was sent to chat {chat_id}")
        return msgs[-1]

    @staticmethod
    def buttons(msg: SentMessage) -> list[tuple[str, str]]:
        """``(text, callback_data)`` of the inline keyboard, flattened row by row."""
        rows = (msg.reply_markup or {}).get("inline_keyboard") or []
        return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]

    @staticmethod
    def keyboard(msg: SentMessage) -> list[str]:
        """Button texts of a reply keyboard (``ReplyKeyboardMarkup``), flattened."""
        rows = (msg.reply_markup or {}).get("keyboard") or []
        return [b if isinstance(b, str) else b.get("text", "") for row in rows for b in row]

    def message_json(self, chat_id: int, message_id: int) -> JSONDict:
        """Current ``Message`` JSON of a bot message (edits applied)."""
        return copy.deepcopy(self._messages[(chat_id, message_id)])

    async def wait_for(
        self, predicate: Callable[[SentMessage], bool], timeout: float = 5.0, *, start: int = 0
    ) -> SentMessage:
        """Wait until a message in ``sent[start:]`` satisfies ``predicate`` and return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = start
        while True:
            index = min(index, len(self.sent))
            for msg in self.sent[index:]:
                if predicate(msg):
                    return msg
            index = len(self.sent)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"no sent message matched within {timeout}s; sent: {self.sent[start:]!r}"
                )
            await self._sent_signal.wait(remaining)

    def clear(self) -> None:
        """Forget recorded output (sent, calls, answers, actions); keeps updates and files."""
        self.sent.clear()
        self.calls.clear()
        self.callback_answers.clear()
        self.chat_actions.clear()

    # ------------------------------------------------------------------ dispatch

    async def handle(
        self, url: str, http_method: str, data: RequestData | None
    ) -> tuple[int, bytes]:
        """Answer one HTTP request made by PTB."""
        path = unquote(urlsplit(url).path)
        if "/file/bot" in path:
            status, payload = self._download(path)
            return status, payload
        method = path.rsplit("/", 1)[-1]
        params: JSONDict = (
            json.loads(json.dumps(data.parameters, default=str)) if data is not None else {}
        )
        self.calls.append((method, params))
        status, body = await self._dispatch(method, params, data)
        return status, json.dumps(body).encode()

    async def _dispatch(
        self, method: str, params: JSONDict, data: RequestData | None
    ) -> tuple[int, JSONDict]:
        if self.on_request is not None:
            answer = self.on_request(method, params)
            if answer is not None:
                return answer
        failure = self._take_failure(method, params)
        if failure is not None:
            return _error(failure.status, failure.description, failure.retry_after)
        if method == "getUpdates":
            return await self._get_updates(params)
        handler = self._handlers.get(method)
        if handler is None:
            return _error(404, f"Not Found: method {method}")
        try:
            if method in SEND_METHODS and params.get("chat_id") is not None:
                chat_id = _chat_id(params["chat_id"])
                if chat_id in self.blocked:
                    return _error(403, "Forbidden: bot was blocked by the user")
                limited = self._check_limits(chat_id)
                if limited is not None:
                    return limited
            return _ok(handler(params, data))
        except _ApiError as exc:
            return _error(exc.status, exc.description)

    def _take_failure(self, method: str, params: JSONDict) -> _Failure | None:
        for failure in self._failures:
            if failure.method != method:
                continue
            if failure.chat_id is not None:
                try:
                    if int(params.get("chat_id", "x")) != failure.chat_id:
                        continue
                except ValueError:
                    continue
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
            return failure
        return None

    def _check_limits(self, chat_id: int) -> tuple[int, JSONDict] | None:
        if self._overall is None and self._per_chat_rate is None:
            return None
        now = self._clock()
        buckets: list[_Bucket] = []
        if self._overall is not None:
            buckets.append(self._overall)
        if self._per_chat_rate is not None:
            bucket = self._per_chat.get(chat_id)
            if bucket is None:
                cap = self._per_chat_burst
                bucket = self._per_chat[chat_id] = _Bucket(self._per_chat_rate, cap, cap, now)
            buckets.append(bucket)
        for bucket in buckets:
            bucket.refill(now)
        wait = max(bucket.wait_needed() for bucket in buckets)
        if wait > 0:
            self.rejected_429 += 1
            retry_after = max(1, math.ceil(wait))
            return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        for bucket in buckets:
            bucket.tokens -= 1
        return None

    # ------------------------------------------------------------------ getUpdates

    async def _get_updates(self, params: JSONDict) -> tuple[int, JSONDict]:
        if self.webhook_url:
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        offset = int(offset) if offset is not None else None
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._confirm(offset)
            batch = self._take_updates(offset, limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0:
                return _ok(batch)
            await self._updates_signal.wait(remaining)

    def _confirm(self, offset: int | None) -> None:
        """Forget updates confirmed by ``offset`` (negative: keep only the last ``-offset``)."""
        if offset is None:
            return
        if offset < 0:
            self._pending = self._pending[offset:]
            return
        self._pending = [
            p for p in self._pending if p.forced or int(p.update["update_id"]) >= offset
        ]

    def _take_updates(self, offset: int | None, limit: int) -> list[JSONDict]:
        ready = [
            p
            for p in self._pending
            if p.forced or offset is None or offset < 0 or int(p.update["update_id"]) >= offset
        ]
        ready.sort(key=lambda p: int(p.update["update_id"]))
        batch = ready[: max(1, min(limit, 100))]
        taken = {id(p) for p in batch if p.forced}
        self._pending = [p for p in self._pending if id(p) not in taken]
        return [p.update for p in batch]  # serialized at once by `handle`

    # ------------------------------------------------------------------ handlers

    def _get_me(self, params: JSONDict, data: RequestData | None) -> JSONDict:
        return dict(self.bot_user)

    def _delete_webhook(self, params: JSONDict, data: RequestData | None) -> bool:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, params: JSONDict, data: RequestData | None) -> bool:
        self.webhook_url = str(params.get("url", ""))
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _get_webhook_info(self, params: JSONDict, data: RequestData | None) -> JSONDict:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _set_my_commands(self, params: JSONDict, data: RequestData | None) -> bool:
        """As Telegram: at most 100 commands, names of 1-32 characters a-z, 0-9 and _,
        descriptions of 1-256 characters; a scope (default, all private chats, one chat) and
        an optional two-letter language code. An empty list deletes the scope's list."""
        commands = params.get("commands") or []
        if isinstance(commands, str):
            commands = json.loads(commands)
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > COMMANDS_LIMIT:
            raise _ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _ApiError(400, "Bad Request: invalid language code specified")
        scope = _scope_key(params.get("scope"))
        if commands:
            self.scoped_commands[(scope, language)] = list(commands)
        else:
            self.scoped_commands.pop((scope, language), None)
        if scope == "default":
            self.commands[language] = list(commands)
        return True

    def commands_shown(self, chat_id: int, language_code: str = "") -> list[tuple[str, str]]:
        """The command menu a person sees in their private chat, resolved as Telegram does:
        the chat's scope, then all private chats, then the default; in each, the list for the
        app's language before the list for every language."""
        for scope in (f"chat:{chat_id}", "all_private_chats", "default"):
            for language in (language_code, ""):
                commands = self.scoped_commands.get((scope, language))
                if commands:
                    return [(c["command"], c["description"]) for c in commands]
        return []

    def _answer_callback_query(self, params: JSONDict, data: RequestData | None) -> bool:
        query_id = str(params.get("callback_query_id"))
        if query_id not in self._callback_query_ids:
            raise _ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.callback_answers.append(params)
        return True

    def _send_chat_action(self, params: JSONDict, data: RequestData | None) -> bool:
        self.chat_actions.append((_chat_id(params.get("chat_id")), str(params.get("action"))))
        return True

    def _get_file(self, params: JSONDict, data: RequestData | None) -> JSONDict:
        file_id = str(params.get("file_id"))
        if file_id not in self._files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u_{file_id}",
            "file_size": len(self._files[file_id]),
            "file_path": f"photos/{file_id}.jpg",
        }

    def _download(self, path: str) -> tuple[int, bytes]:
        rest = path.split("/file/bot", 1)[1]
        file_path = rest.split("/", 1)[1] if "/" in rest else ""
        file_id = self._file_paths.get(file_path)
        if file_id is None:
            _, body = _error(404, "Not Found")
            return 404, json.dumps(body).encode()
        return 200, self._files[file_id]

    # -- sending

    def _send_message(self, params: JSONDict, data: RequestData | None) -> JSONDict:
        text = params.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_length(str(text)) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        return self._record("sendMessage", params, {"text": str(text)})

    def _send_photo(self, params: JSONDict, data: RequestData | None) -> JSONDict:
        file_name, content, file_id = self._file_param("photo", params, data)
        size = len(content) if content is not None else len(self._files.get(file_id, b""))
        sizes = [
            {
                "file_id": file_id,
                "file_unique_id": f"u_{file_id}",
                "width": 1280,
                "height": 960,
                "file_size": size,
            }
        ]
        return self._record("sendPhoto", params, {"photo": sizes}, file_name, content, file_id)

    def _send_document(self, params: JSONDict, data: RequestData | None) -> JSONDict:
        file_name, content, file_id = self._file_param("document", params, data)
        doc: JSONDict = {"file_id": file_id, "file_unique_id": f"u_{file_id}"}
        if file_name:
            doc["file_name"] = file_name
        if content is not None:
            doc["file_size"] = len(content)
        return self._record("sendDocument", params, {"document": doc}, file_name, content, file_id)

    def _file_param(
        self, name: str, params: JSONDict, data: RequestData | None
    ) -> tuple[str | None, bytes | None, str]:
        """Resolve an upload (multipart) or a ``file_id`` string for parameter ``name``."""
        caption = params.get("caption")
        if caption is not None and utf16_length(str(caption)) > MAX_CAPTION_LENGTH:
            raise _ApiError(400, "Bad Request: message caption is too long")
        value = params.get(name)
        multipart = data.multipart_data if data is not None else {}
        part_name = name
        if isinstance(value, str) and value.startswith("attach://"):
            part_name = value.removeprefix("attach://")
        if part_name in multipart:
            file_name, raw, _mime = multipart[part_name]
            content = _read_content(raw)
            file_id = f"uploaded_{name}_{next(self._upload_seq)}"
            self.add_file(file_id, content)
            return file_name, content, file_id
        if not value:
            raise _ApiError(400, f"Bad Request: there is no {name} in the request")
        return None, None, str(value)

    def _record(
        self,
        method: str,
        params: JSONDict,
        content: JSONDict,
        file_name: str | None = None,
        file_bytes: bytes | None = None,
        file_id: str | None = None,
    ) -> JSONDict:
        chat_id = _chat_id(params.get("chat_id"))
        markup = _as_dict(params.get("reply_markup"))
        self._validate_markup(markup)
        message_id = self._next_message_id(chat_id)
        message: JSONDict = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat_json(chat_id),
            "from": dict(self.bot_user),
            **content,
        }
        caption = params.get("caption")
        if caption is not None and method != "sendMessage":
            message["caption"] = str(caption)
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._messages[(chat_id, message_id)] = message
        text = message.get("text", message.get("caption"))
        self._add_sent(
            SentMessage(
                method=method,
                chat_id=chat_id,
                message_id=message_id,
                text=text,
                reply_markup=markup,
                parse_mode=params.get("parse_mode"),
                params=params,
                file_name=file_name,
                file_bytes=file_bytes,
                file_id=file_id,
            )
        )
        return message  # serialized at once by `handle`

    def _edit_target(self, params: JSONDict) -> tuple[int, JSONDict] | None:
        """The ``(chat_id, message)`` addressed by an edit, or ``None`` for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat_id = _chat_id(params.get("chat_id"))
        message = self._messages.get((chat_id, int(params.get("message_id") or 0)))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return chat_id, message

    def _edit_message_text(self, params: JSONDict, data: RequestData | None) -> JSONDict | bool:
        text = params.get("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_length(str(text)) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        target = self._edit_target(params)
        if target is None:
            return True
        chat_id, message = target
        if "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = _as_dict(params.get("reply_markup"))
        return self._apply_edit("editMessageText", chat_id, message, params, str(text), markup)

    def _edit_message_reply_markup(
        self, params: JSONDict, data: RequestData | None
    ) -> JSONDict | bool:
        target = self._edit_target(params)
        if target is None:
            return True
        chat_id, message = target
        markup = _as_dict(params.get("reply_markup"))
        text = message.get("text", message.get("caption"))
        return self._apply_edit("editMessageReplyMarkup", chat_id, message, params, text, markup)

    def _apply_edit(
        self,
        method: str,
        chat_id: int,
        message: JSONDict,
        params: JSONDict,
        text: str | None,
        markup: JSONDict | None,
    ) -> JSONDict:
        self._validate_markup(markup)
        inline = markup if markup and "inline_keyboard" in markup else None
        text_key = "text" if "text" in message else "caption"
        if message.get(text_key) == text and message.get("reply_markup") == inline:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message",
            )
        # A new dict, never the stored one changed: updates already queued (a button press)
        # carry the message as it was, without a copy of their own.
        message = {key: value for key, value in message.items() if key != "reply_markup"}
        if text is not None:
            message[text_key] = text
        if inline is not None:
            message["reply_markup"] = inline
        message["edit_date"] = int(time.time())
        self._messages[(chat_id, int(message["message_id"]))] = message
        self._add_sent(
            SentMessage(
                method=method,
                chat_id=chat_id,
                message_id=int(message["message_id"]),
                text=text,
                reply_markup=markup,
                parse_mode=params.get("parse_mode"),
                params=params,
            )
        )
        return message  # serialized at once by `handle`

    @staticmethod
    def _validate_markup(markup: JSONDict | None) -> None:
        for row in (markup or {}).get("inline_keyboard") or []:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= (
                    MAX_CALLBACK_DATA_BYTES
                ):
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    # ------------------------------------------------------------------ helpers

    def _add_sent(self, msg: SentMessage) -> None:
        self.sent.append(msg)
        self._last_by_chat[msg.chat_id] = msg
        self._sent_signal.notify()

    def _last_real_message(self, chat_id: int) -> SentMessage | None:
        return self._last_by_chat.get(chat_id)

    def _next_message_id(self, chat_id: int) -> int:
        self._message_seq[chat_id] = self._message_seq.get(chat_id, 0) + 1
        return self._message_seq[chat_id]

    def _chat_json(self, chat_id: int) -> JSONDict:
        if chat_id in self._users:
            return self._users[chat_id].chat_dict
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Test"}
        return {"id": chat_id, "type": "group", "title": "Group"}


@contextlib.asynccontextmanager
async def running_polling(app: Application, *, timeout: int = 1) -> AsyncIterator[Application]:
    """Run ``app`` with polling for the duration of the block, then shut it down cleanly."""
    if app.updater is None:
        raise ValueError("the application was built without an updater")
    await app.initialize()
    try:
        await app.start()
        try:
            await app.updater.start_polling(poll_interval=0, timeout=timeout)
            try:
                yield app
            finally:
                await app.updater.stop()
        finally:
            await app.stop()
    finally:
        await app.shutdown()
