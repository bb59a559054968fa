"""A strict fake of the WhatsApp Business Cloud API over real HTTP, and Meta's side of webhooks.

The bot reaches it through ``WHATSAPP_BASE_URL``::

    api = FakeCloudApi(phone_number_id="1001", token="t", app_secret="s")
    async with serving_cloud(api) as base_url:      # "http://127.0.0.1:PORT/v26.0"
        api.webhook_url = "http://127.0.0.1:8080/whatsapp"
        api.user("201001112222").text("start ABC123")
        await api.push()                             # signed POSTs, retried until a 2xx
        await api.wait_for(lambda m: m.to == "201001112222")

What it enforces, answering Graph-style errors (``{"error": {"code": ..., ...}}``):

* ``POST /{phone-number-id}/messages``: the bearer token; text body <= 4096; captions <= 1024;
  reply buttons 1-3, titles 1-20 and unique, ids <= 256; lists: button text 1-20, at most 10
  sections and 10 rows in all, row title 1-24, description <= 72, row id <= 200, section titles
  <= 24 (required with several sections), body <= 1024, header/footer <= 60;
  ``location_request_message``; templates known by name and language (132001), the number of
  body parameters (132000), text parameters without newline, tab or more than 4 spaces in a
  row (132018), quick-reply buttons with a payload;
* the 24-hour window: a free-form message to someone whose last message is older (or who
  never wrote) is accepted, then reported failed with 131047 in a status webhook, as Meta does;
  someone not on WhatsApp (``not_on_whatsapp``) likewise gets a failed status with 131026;
* throughput: more than ``messages_per_second`` messages in one second -> 130429; more than
  ``pair_burst`` messages to one person within ``pair_seconds`` -> 131056;
* ``fail_next(status, code)`` answers the next requests with an error, whatever they are.

Media: ``POST /{phone-number-id}/media`` (multipart ``file``, ``type``,
``messaging_product``) -> ``{"id"}``, within Meta's documented types and sizes (``MEDIA_LIMITS``:
images JPEG or PNG up to 5 MB, stickers WebP up to 500 KB, audio and video 16 MB, documents —
text, PDF, Word, Excel, PowerPoint — 100 MB; else 131053), each counted in ``uploads``; an
image message must name an image (JPEG, PNG); ``GET /{media-id}`` -> ``{"url", "mime_type",
...}``; ``GET`` that url with the bearer token -> the bytes.

Webhooks: each inbound message and each status is queued as a webhook delivery, signed with
``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the app secret>``. ``push``
posts what is queued to ``webhook_url`` and posts again what did not get a 2xx (as Meta does,
for days); ``repeat_next``, ``drop_next`` (lost on the way: delivered again later) and
``reorder`` play the network's tricks. A message's ``biz_opaque_callback_data`` (<= 512) comes
back in its statuses; ``statuses_before_answer`` posts them before the send request is
answered, as Meta's webhook sometimes outruns its HTTP answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.telegram_bot_server import parse_multipart, serving_asgi

JSON = dict[str, Any]
VERSION = "v26.0"
WINDOW_SECONDS = 24 * 3600
MB = 1024 * 1024
#: Meta's supported media types and their largest size ("Supported media types").
MEDIA_LIMITS = {
    "image/jpeg": 5 * MB,
    "image/png": 5 * MB,
    "image/webp": 500 * 1024,  # stickers
    **dict.fromkeys(["audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"], 16 * MB),
    **dict.fromkeys(["video/mp4", "video/3gpp"], 16 * MB),
    **dict.fromkeys(
        [
            "text/plain",
            "application/pdf",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ],
        100 * MB,
    ),
}
IMAGE_TYPES = ("image/jpeg", "image/png")
TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
VARIABLE = re.compile(r"\{\{(\d+)\}\}")


class GraphError(Exception):
    """An error the fake answers, in Graph's shape."""

    def __init__(self, code: int, message: str, status: int = 400, details: str = "") -> None:
        super().__init__(f"({code}) {message}: {details or message}")
        self.code = code
        self.message = message
        self.status = status
        self.details = details or message

    def body(self) -> JSON:
        return {
            "error": {
                "message": f"({self.code}) {self.message}",
                "type": "OAuthException",
                "code": self.code,
                "error_data": {"messaging_product": "whatsapp", "details": self.details},
                "fbtrace_id": "Afake",
            }
        }


def _invalid(details: str) -> GraphError:
    return GraphError(100, "Invalid parameter", details=details)


def _limit(value: Any, name: str, longest: int, shortest: int = 1) -> str:
    if not isinstance(value, str) or not shortest <= len(value) <= longest:
        size = len(value) if isinstance(value, str) else "missing"
        raise GraphError(
            131009,
            "Parameter value is not valid",
            details=f"{name} must be {shortest}-{longest} characters (got {size})",
        )
    return value


@dataclass
class Template:
    """An approved message template: its body text with {{n}} variables, its quick replies."""

    name: str
    language: str
    category: str
    body: str
    buttons: list[str]

    @property
    def parameters(self) -> int:
        return len(VARIABLE.findall(self.body))

    @classmethod
    def review(cls, submitted: JSON) -> Template:
        """Check a submission in the message-template format as Meta's review would."""
        name = submitted.get("name", "")
        if not TEMPLATE_NAME.fullmatch(name):
            raise _invalid(f"template name {name!r}: lowercase letters, digits and _")
        if submitted.get("category") not in ("UTILITY", "MARKETING", "AUTHENTICATION"):
            raise _invalid("category must be UTILITY, MARKETING or AUTHENTICATION")
        language = submitted.get("language")
        if not isinstance(language, str) or not language:
            raise _invalid("language missing")
        components = {c.get("type"): c for c in submitted.get("components", [])}
        body = components.get("BODY")
        if body is None:
            raise _invalid("a BODY component is required")
        text = _limit(body.get("text"), "BODY text", 1024)
        numbers = [int(n) for n in VARIABLE.findall(text)]
        if numbers != list(range(1, len(numbers) + 1)):
            raise _invalid("variables must be {{1}}, {{2}} ... in order")
        stripped = text.strip()
        if VARIABLE.match(stripped) or re.search(r"\{\{\d+\}\}$", stripped):
            raise _invalid("the body may not start or end with a variable")
        if numbers:
            examples = body.get("example", {}).get("body_text", [[]])
            if len(examples) != 1 or len(examples[0]) != len(numbers):
                raise _invalid("example.body_text must give one value per variable")
        buttons = []
        for button in components.get("BUTTONS", {}).get("buttons", []):
            if button.get("type") != "QUICK_REPLY":
                raise _invalid("only QUICK_REPLY buttons are known to this fake")
            buttons.append(_limit(button.get("text"), "button text", 25))
        if len(buttons) > 10:
            raise _invalid("at most 10 buttons")
        return cls(name, language, submitted["category"], text, buttons)


@dataclass
class Sent:
    """A message the business sent, as accepted."""

    id: str
    to: str
    payload: JSON
    at: float

    @property
    def type(self) -> str:
        return str(self.payload["type"])

    @property
    def text(self) -> str:
        """What the person reads: the body, caption or template text with its parameters."""
        kind = self.type
        if kind == "text":
            return str(self.payload["text"]["body"])
        if kind in ("image", "document"):
            return str(self.payload[kind].get("caption", ""))
        if kind == "interactive":
            return str(self.payload["interactive"]["body"]["text"])
        if kind == "template":
            return str(self.payload["template"].get("_rendered", ""))
        return ""

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(id, title) of its buttons or list rows."""
        if self.type == "template":
            return [(b, b) for b in self.payload["template"].get("_payloads", [])]
        if self.type != "interactive":
            return []
        interactive = self.payload["interactive"]
        action = interactive["action"]
        if interactive["type"] == "button":
            return [(b["reply"]["id"], b["reply"]["title"]) for b in action["buttons"]]
        if interactive["type"] == "list":
            return [(r["id"], r["title"]) for s in action["sections"] for r in s["rows"]]
        return []

    @property
    def rows(self) -> list[JSON]:
        if self.type == "interactive" and self.payload["interactive"]["type"] == "list":
            return [r for s in self.payload["interactive"]["action"]["sections"] for r in s["rows"]]
        return []


@dataclass
class Delivery:
    """One webhook delivery waiting to reach the bot."""

    body: bytes
    attempts: int = 0


@dataclass
class FakeCloudApi:
    """The Cloud API's state: users, accepted messages, templates, media, webhook queue."""

    phone_number_id: str = "1001"
    token: str = "test-token"
    app_secret: str = "app-secret"
    display_number: str = "97317000000"
    messages_per_second: float = 80.0
    pair_burst: int = 45
    pair_seconds: float = 6.0
    clock: Callable[[], float] = time.time
    webhook_url: str | None = None
    statuses: bool = True  # send sent/delivered status webhooks for accepted messages
    read_receipts: bool = False
    # Post the status webhooks of an accepted message before answering its send request (Meta's
    # webhook may reach the bot before the answer does).
    statuses_before_answer: bool = False

    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[JSON, GraphError]] = field(default_factory=list)
    templates: dict[tuple[str, str], Template] = field(default_factory=dict)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    uploads: list[tuple[str, int]] = field(default_factory=list)  # (type, size) uploaded
    last_inbound: dict[str, float] = field(default_factory=dict)
    not_on_whatsapp: set[str] = field(default_factory=set)
    queue: deque[Delivery] = field(default_factory=deque)
    delivered: list[JSON] = field(default_factory=list)  # bodies the bot took (2xx)
    answers: list[int] = field(default_factory=list)  # every status code the bot answered
    errors: dict[int, int] = field(default_factory=dict)  # error code -> how many answered
    _failures: deque[GraphError] = field(default_factory=deque)
    _repeat: int = 0
    _drop: int = 0
    _reorder: bool = False
    _recent: deque[float] = field(default_factory=deque)
    _pair: dict[str, deque[float]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event | None = None

    # --- the test's controls -------------------------------------------------------------

    def user(self, wa_id: str, name: str = "") -> FakeUser:
        return FakeUser(self, wa_id, name or f"User {wa_id[-4:]}")

    def approve(self, submitted: JSON) -> Template:
        """Take a template submission (the `whatsapp-templates` output) as Meta approves it."""
        template = Template.review(submitted)
        self.templates[(template.name, template.language)] = template
        return template

    def fail_next(self, count: int = 1, *, status: int = 500, code: int = 131000) -> None:
        message = {
            130429: "Rate limit hit",
            131056: "(Business Account, Consumer Account) pair rate limit hit",
            131026: "Message undeliverable",
            131047: "Re-engagement message",
        }.get(code, "Something went wrong")
        for _ in range(count):
            self._failures.append(GraphError(code, message, status=status))

    def repeat_next(self, count: int = 1) -> None:
        """The next `count` deliveries are posted twice."""
        self._repeat += count

    def drop_next(self, count: int = 1) -> None:
        """The next `count` deliveries are lost on the way (posted again at the next push)."""
        self._drop += count

    def reorder(self, on: bool = True) -> None:
        """Post queued deliveries in a shuffled order."""
        self._reorder = on

    def to(self, wa_id: str) -> list[Sent]:
        return [m for m in self.sent if m.to == wa_id]

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def wait_for(self, predicate: Callable[[Sent], bool], timeout: float = 10.0) -> Sent:
        """The first accepted message (since the start) that matches, waiting for it."""
        return (await self.wait_for_all(predicate, 1, timeout))[0]

    async def wait_for_all(
        self, predicate: Callable[[Sent], bool], count: int, timeout: float = 10.0
    ) -> list[Sent]:
        if self._changed is None:
            self._changed = asyncio.Event()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [m for m in self.sent if predicate(m)]
            if len(found) >= count:
                return found
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                shown = [(m.to, m.type, m.text[:60]) for m in self.sent[-5:]]
                raise TimeoutError(f"{len(found)}/{count} matching messages; last: {shown}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # --- Meta's side of webhooks -------------------------------------------------------------

    def envelope(self, value: JSON) -> JSON:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_number,
                "phone_number_id": self.phone_number_id,
            },
            **value,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": "WABA1", "changes": [{"value": value, "field": "messages"}]}],
        }

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()

    def queue_event(self, value: JSON) -> None:
        self.queue.append(Delivery(json.dumps(self.envelope(value)).encode()))

    async def push(self, rounds: int = 20, timeout: float = 10.0) -> None:
        """Post every queued delivery until each got a 2xx (or `rounds` tries went by)."""
        assert self.webhook_url, "set webhook_url first"
        async with httpx.AsyncClient(timeout=timeout) as client:
            for _ in range(rounds):
                if not self.queue:
                    return
                batch = list(self.queue)
                self.queue.clear()
                if self._reorder:
                    random.shuffle(batch)
                for delivery in batch:
                    if self._drop:
                        self._drop -= 1
                        self.queue.append(delivery)
                        continue
                    times = 2 if self._repeat else 1
                    self._repeat = max(0, self._repeat - 1)
                    taken = False
                    for _ in range(times):
                        taken = await self._post(client, delivery) or taken
                    if not taken:
                        self.queue.append(delivery)
                if self.queue:
                    await asyncio.sleep(0.05)  # Meta backs off before posting again
        if self.queue:
            raise TimeoutError(f"{len(self.queue)} deliveries were not taken: {self.answers[-5:]}")

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery) -> bool:
        assert self.webhook_url is not None
        delivery.attempts += 1
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": self.signature(delivery.body),
        }
        try:
            answer = await client.post(self.webhook_url, content=delivery.body, headers=headers)
        except httpx.HTTPError:
            self.answers.append(0)
            return False
        self.answers.append(answer.status_code)
        if 200 <= answer.status_code < 300:
            self.delivered.append(json.loads(delivery.body))
            return True
        return False

    def _status(self, message: Sent, status: str, error: GraphError | None = None) -> None:
        value: JSON = {
            "id": message.id,
            "status": status,
            "timestamp": str(int(self.clock())),
            "recipient_id": message.to,
        }
        if message.payload.get("biz_opaque_callback_data"):
            value["biz_opaque_callback_data"] = message.payload["biz_opaque_callback_data"]
        if error is not None:
            value["errors"] = [
                {
                    "code": error.code,
                    "title": error.message,
                    "message": error.message,
                    "error_data": {"details": error.details},
                }
            ]
        self.queue_event({"statuses": [value]})

    # --- the Graph API -------------------------------------------------------------------

    def send(self, payload: JSON) -> JSON:
        """What POST /messages does with a JSON payload (raises GraphError)."""
        try:
            if self._failures:
                raise self._failures.popleft()
            to = self._check(payload)
            now = self.clock()
            self._rate(to, now)
        except GraphError as error:
            self.refused.append((payload, error))
            self.errors[error.code] = self.errors.get(error.code, 0) + 1
            raise
        message = Sent(f"wamid.FAKE{next(self._ids):08d}", to, payload, now)
        self.sent.append(message)
        self._notify()
        if to in self.not_on_whatsapp:
            self._status(message, "failed", GraphError(131026, "Message undeliverable"))
        elif payload["type"] != "template" and now - self.last_inbound.get(to, -1e18) > (
            WINDOW_SECONDS
        ):
            self._status(
                message,
                "failed",
                GraphError(
                    131047,
                    "Re-engagement message",
                    details="Message failed to send because more than 24 hours have passed "
                    "since the customer last replied to this number.",
                ),
            )
        elif self.statuses:
            self._status(message, "sent")
            self._status(message, "delivered")
            if self.read_receipts:
                self._status(message, "read")
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": message.id}],
        }

    def _rate(self, to: str, now: float) -> None:
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.messages_per_second:
            raise GraphError(130429, "Rate limit hit", details="Cloud API throughput reached")
        pair = self._pair.setdefault(to, deque())
        while pair and pair[0] <= now - self.pair_seconds:
            pair.popleft()
        if len(pair) >= self.pair_burst:
            raise GraphError(131056, "(Business Account, Consumer Account) pair rate limit hit")
        self._recent.append(now)
        pair.append(now)

    def _check(self, payload: JSON) -> str:
        if payload.get("messaging_product") != "whatsapp":
            raise _invalid("messaging_product must be whatsapp")
        to = payload.get("to")
        if not isinstance(to, str) or not to.isdigit():
            raise _invalid("to must be a phone number (digits)")
        if "biz_opaque_callback_data" in payload:
            _limit(payload["biz_opaque_callback_data"], "biz_opaque_callback_data", 512)
        kind = payload.get("type", "text")
        payload["type"] = kind
        content = payload.get(kind)
        if not isinstance(content, dict):
            raise GraphError(131008, "Required parameter is missing", details=f"{kind} missing")
        if kind == "text":
            _limit(content.get("body"), "text.body", 4096)
        elif kind in ("image", "document"):
            if not content.get("id") and not content.get("link"):
                raise GraphError(131008, "Required parameter is missing", details="media id")
            if content.get("id") and content["id"] not in self.media:
                raise GraphError(131053, "Media upload error", details="unknown media id")
            media_type = self.media[content["id"]][1] if content.get("id") else None
            if kind == "image" and media_type is not None and media_type not in IMAGE_TYPES:
                raise GraphError(131053, "Media upload error", details="not an image")
            if "caption" in content:
                _limit(content["caption"], f"{kind}.caption", 1024, 0)
        elif kind == "interactive":
            self._check_interactive(content)
        elif kind == "template":
            self._check_template(content)
        else:
            raise _invalid(f"type {kind!r} is not known to this fake")
        return to

    def _check_interactive(self, content: JSON) -> None:
        kind = content.get("type")
        body = content.get("body", {})
        _limit(body.get("text"), "interactive.body.text", 1024)
        if "header" in content:
            _limit(content["header"].get("text"), "header.text", 60)
        if "footer" in content:
            _limit(content["footer"].get("text"), "footer.text", 60)
        action = content.get("action", {})
        if kind == "button":
            buttons = action.get("buttons", [])
            if not 1 <= len(buttons) <= 3:
                raise _invalid(f"buttons: 1-3 reply buttons (got {len(buttons)})")
            titles, ids = set(), set()
            for button in buttons:
                if button.get("type") != "reply":
                    raise _invalid("button type must be reply")
                reply = button.get("reply", {})
                title = _limit(reply.get("title"), "button title", 20)
                ident = _limit(reply.get("id"), "button id", 256)
                if title in titles or ident in ids:
                    raise _invalid("button titles and ids must be unique")
                titles.add(title)
                ids.add(ident)
        elif kind == "list":
            _limit(action.get("button"), "list button", 20)
            sections = action.get("sections", [])
            if not 1 <= len(sections) <= 10:
                raise _invalid("sections: 1-10")
            rows = [row for section in sections for row in section.get("rows", [])]
            if not 1 <= len(rows) <= 10:
                raise _invalid(f"rows: 1-10 in all sections (got {len(rows)})")
            for section in sections:
                if len(sections) > 1 or "title" in section:
                    _limit(section.get("title"), "section title", 24)
            ids = set()
            for row in rows:
                ident = _limit(row.get("id"), "row id", 200)
                _limit(row.get("title"), "row title", 24)
                if "description" in row:
                    _limit(row["description"], "row description", 72, 0)
                if ident in ids:
                    raise _invalid("row ids must be unique")
                ids.add(ident)
        elif kind == "location_request_message":
            if action.get("name") != "send_location":
                raise _invalid("location_request_message action.name must be send_location")
        else:
            raise _invalid(f"interactive type {kind!r} is not known to this fake")

    def _check_template(self, content: JSON) -> None:
        name = content.get("name")
        code = content.get("language", {}).get("code")
        template = self.templates.get((name, code))  # type: ignore[arg-type]
        if template is None:
            raise GraphError(
                132001,
                "Template name does not exist in the translation",
                status=404,
                details=f"template {name!r} does not exist in {code!r}",
            )
        body: list[JSON] = []
        payloads: list[str] = []
        for component in content.get("components", []):
            if component.get("type") == "body":
                body = component.get("parameters", [])
            elif component.get("type") == "button":
                if component.get("sub_type") != "quick_reply":
                    raise _invalid("button sub_type must be quick_reply")
                index = int(component.get("index", -1))
                if not 0 <= index < len(template.buttons):
                    raise _invalid(f"button index {index} out of range")
                parameter = (component.get("parameters") or [{}])[0]
                payloads.append(_limit(parameter.get("payload"), "button payload", 256))
        if len(body) != template.parameters:
            raise GraphError(
                132000,
                "Number of parameters does not match the expected number of params",
                details=f"{template.name} takes {template.parameters}, got {len(body)}",
            )
        values = []
        for parameter in body:
            value = parameter.get("text")
            if parameter.get("type") != "text" or not isinstance(value, str) or not value.strip():
                raise GraphError(131008, "Required parameter is missing", details="text param")
            if "\n" in value or "\t" in value or "     " in value:
                raise GraphError(
                    132018,
                    "There was an issue with the parameters in your template.",
                    details="Param text cannot have new-line/tab characters or more than "
                    "4 consecutive spaces",
                )
            values.append(value)
        rendered = VARIABLE.sub(lambda m: values[int(m[1]) - 1], template.body)
        _limit(rendered, "template body", 1024)
        content["_rendered"] = rendered  # for the tests' eyes; not part of the request
        content["_payloads"] = payloads

    def upload(self, data: bytes, mime_type: str) -> str:
        ident = f"{next(self._ids) + 900000000000}"
        self.media[ident] = (data, mime_type)
        return ident


@dataclass
class FakeUser:
    """A WhatsApp user writing to the business: each action queues a signed webhook delivery."""

    api: FakeCloudApi
    wa_id: str
    name: str

    def _message(self, kind: str, content: JSON, **extra: Any) -> str:
        api = self.api
        ident = f"wamid.IN{next(api._ids):08d}"
        api.last_inbound[self.wa_id] = api.clock()
        message = {
            "from": self.wa_id,
            "id": ident,
            "timestamp": str(int(api.clock())),
            "type": kind,
            **({kind: content} if content else {}),
            **extra,
        }
        api.queue_event(
            {
                "contacts": [{"profile": {"name": self.name}, "wa_id": self.wa_id}],
                "messages": [message],
            }
        )
        return ident

    def text(self, body: str) -> str:
        return self._message("text", {"body": body})

    def reply(self, sent: Sent, body: str) -> str:
        """Reply to the business message `sent` with text (WhatsApp's swipe-to-reply: the
        message carries the quoted one's id in its context)."""
        context = {"from": self.api.display_number, "id": sent.id}
        return self._message("text", {"body": body}, context=context)

    def press(self, sent: Sent, title: str) -> str:
        """Press the button or list row titled `title` of `sent` (or a template's button)."""
        if sent.type == "template":
            payload = sent.payload["template"]["_payloads"][0]
            return self._message("button", {"payload": payload, "text": title})
        for ident, shown in sent.choices:
            if shown == title:
                interactive = sent.payload["interactive"]["type"]
                kind = "button_reply" if interactive == "button" else "list_reply"
                reply = {"id": ident, "title": shown}
                return self._message(
                    "interactive", {"type": kind, kind: reply}, context={"id": sent.id}
                )
        raise KeyError(f"no choice titled {title!r} in {sent.choices}")

    def image(self, data: bytes, caption: str | None = None) -> str:
        media_id = self.api.upload(data, "image/jpeg")
        content = {
            "id": media_id,
            "mime_type": "image/jpeg",
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if caption:
            content["caption"] = caption
        return self._message("image", content)

    def location(self, latitude: float, longitude: float) -> str:
        return self._message("location", {"latitude": latitude, "longitude": longitude})

    def other(self, kind: str, content: JSON | None = None) -> str:
        """Audio, video, sticker, reaction, document, or "unsupported"."""
        if kind == "unsupported":
            return self._message(
                "unsupported",
                {},
                errors=[{"code": 131051, "title": "Message type unknown"}],
            )
        return self._message(kind, content or {"id": "0", "mime_type": "audio/ogg"})


# --- over HTTP -------------------------------------------------------------------------------


def create_app(api: FakeCloudApi) -> Starlette:
    def unauthorized(request: Request) -> bool:
        given = request.headers.get("Authorization", "")
        return not hmac.compare_digest(given.encode(), f"Bearer {api.token}".encode())

    def error(failure: GraphError) -> Response:
        return JSONResponse(failure.body(), status_code=failure.status)

    def auth_error() -> Response:
        return error(GraphError(190, "Invalid OAuth access token", status=401))

    async def messages(request: Request) -> Response:
        if unauthorized(request):
            return auth_error()
        if request.path_params["phone"] != api.phone_number_id:
            return error(GraphError(100, "Unsupported post request", details="phone number id"))
        try:
            payload = await request.json()
        except ValueError:
            return error(_invalid("the body is not JSON"))
        try:
            answer = api.send(payload)
        except GraphError as failure:
            return error(failure)
        if api.statuses_before_answer:
            await api.push()
        return JSONResponse(answer)

    async def upload(request: Request) -> Response:
        if unauthorized(request):
            return auth_error()
        try:
            fields, files = parse_multipart(
                request.headers.get("content-type", ""), await request.body()
            )
        except ValueError:
            return error(_invalid("not a multipart body"))
        file = files.get("file")
        if fields.get("messaging_product") != "whatsapp" or file is None:
            return error(GraphError(131008, "Required parameter is missing", details="file"))
        _, data, content_type = file
        kind = str(fields.get("type") or content_type).split(";")[0].strip().lower()
        if kind not in MEDIA_LIMITS:
            return error(GraphError(131053, "Media upload error", details=f"type {kind}"))
        if not data or len(data) > MEDIA_LIMITS[kind]:
            size = f"{len(data)} bytes, at most {MEDIA_LIMITS[kind]} for {kind}"
            return error(GraphError(131053, "Media upload error", details=size))
        api.uploads.append((kind, len(data)))
        return JSONResponse({"id": api.upload(data, kind)})

    async def lookup(request: Request) -> Response:
        if unauthorized(request):
            return auth_error()
        ident = request.path_params["ident"]
        if ident not in api.media:
            return error(GraphError(100, "Invalid parameter", status=404, details="media id"))
        data, mime = api.media[ident]
        url = str(request.base_url).rstrip("/") + f"/download/{ident}"
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": url,
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": ident,
            }
        )

    async def download(request: Request) -> Response:
        if unauthorized(request):
            return Response(status_code=401)
        ident = request.path_params["ident"]
        if ident not in api.media:
            return Response(status_code=404)
        data, mime = api.media[ident]
        return Response(data, media_type=mime)

    routes = [
        Route("/download/{ident}", download, methods=["GET"]),
        Route(f"/{VERSION}/{{phone}}/messages", messages, methods=["POST"]),
        Route(f"/{VERSION}/{{phone}}/media", upload, methods=["POST"]),
        Route(f"/{VERSION}/{{ident}}", lookup, methods=["GET"]),
    ]
    return Starlette(routes=routes)


@contextlib.asynccontextmanager
async def serving_cloud(api: FakeCloudApi, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve `api` over HTTP in the running loop; yields the base URL for WHATSAPP_BASE_URL."""
    api._changed = asyncio.Event()
    async with serving_asgi(create_app(api), host, 0) as root:
        yield f"{root}/{VERSION}"
