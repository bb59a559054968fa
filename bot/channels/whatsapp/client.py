"""The Graph API over httpx: send messages, upload and fetch media; errors in neutral terms.

The token goes in the Authorization header only (never in a URL, so never in httpx's request
log) and is not part of any error text.

How Graph's errors map (outbox.sender decides what each means for a row):

* 130429 (throughput reached) -> `RetryAfter(1)`: the number's limit, the whole sender waits;
* 131056 (pair rate: too many messages to one person) -> `Transient`: retried with backoff;
* 131026 (undeliverable: not on WhatsApp, or an old version) -> `Unreachable`;
* 131047 (more than 24 hours since the person wrote) -> `WindowClosed` (a `Rejected`);
* 5xx, 131000, 2, 133004, timeouts and the network -> `Transient`;
* 401 / 190 (the token) -> `Transient`: the operator fixes the token, the rows go out then;
* any other 4xx -> `Rejected`, with Graph's message and details.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bot.channels.whatsapp.render import Outgoing, mime_type
from outbox.sender import Rejected, RetryAfter, Transient, Unreachable

log = logging.getLogger(__name__)
JSON = dict[str, Any]
THROUGHPUT = 130429
PAIR_RATE = 131056
UNDELIVERABLE = 131026
WINDOW = 131047
TRANSIENT_CODES = frozenset({1, 2, 131000, 133004, 131016})
TOKEN_CODES = frozenset({190})
CONNECTIONS = 32


class WindowClosed(Rejected):
    """The person last wrote more than 24 hours ago: only a template reaches them."""


class CloudClient:
    """The Cloud API of one business phone number."""

    def __init__(
        self,
        base_url: str,
        phone_number_id: str,
        token: SecretStr,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.phone_number_id = phone_number_id
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=CONNECTIONS),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, to: str, outgoing: Outgoing, callback: str | None = None) -> str:
        """Send one message (uploading its file first); returns WhatsApp's message id.
        `callback` comes back in the message's status webhooks (biz_opaque_callback_data)."""
        payload = dict(outgoing.payload)
        if outgoing.upload is not None:
            kind = payload["type"]
            payload[kind] = {**payload[kind], "id": await self.upload(outgoing.upload)}
        body: JSON = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        if callback:
            body["biz_opaque_callback_data"] = callback
        answer = await self._call("POST", f"/{self.phone_number_id}/messages", json=body | payload)
        return str(answer["messages"][0]["id"])

    async def upload(self, path: Path) -> str:
        """Upload a file for sending; returns its media id."""
        try:
            data = path.read_bytes()
        except OSError as error:
            raise Rejected(f"file {path.name}: {error.strerror}") from error
        kind = mime_type(path)
        answer = await self._call(
            "POST",
            f"/{self.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": kind},
            files={"file": (path.name, data, kind)},
        )
        return str(answer["id"])

    async def download(self, media_id: str) -> tuple[bytes, str]:
        """A received file's bytes and type: its URL is looked up, then fetched with the token
        (the URL expires within minutes, so this is done at once)."""
        found = await self._call("GET", f"/{media_id}")
        try:
            answer = await self._http.get(str(found["url"]))
        except httpx.HTTPError as error:
            raise Transient(f"media download: {error.__class__.__name__}") from error
        if answer.status_code != 200:
            raise _error(answer)
        return answer.content, str(found.get("mime_type") or answer.headers.get("content-type"))

    async def _call(self, method: str, path: str, **request: Any) -> JSON:
        try:
            answer = await self._http.request(method, self.base_url + path, **request)
        except httpx.HTTPError as error:
            raise Transient(f"Graph API: {error.__class__.__name__}") from error
        if answer.status_code // 100 != 2:
            raise _error(answer)
        try:
            return dict(answer.json())
        except ValueError as error:
            raise Transient("Graph API: an answer that is not JSON") from error


def _error(answer: httpx.Response) -> Exception:
    """The neutral exception for a Graph error answer."""
    try:
        error = answer.json().get("error", {})
    except ValueError:
        error = {}
    code = error.get("code")
    details = (error.get("error_data") or {}).get("details", "")
    text = f"HTTP {answer.status_code}, Graph error {code}: {error.get('message', '')} {details}"
    if code == THROUGHPUT:
        return RetryAfter(1.0)
    if code == UNDELIVERABLE:
        return Unreachable(text.strip())
    if code == WINDOW:
        return WindowClosed(text.strip())
    if (
        code == PAIR_RATE
        or code in TRANSIENT_CODES
        or code in TOKEN_CODES
        or answer.status_code >= 500
        or answer.status_code in (401, 429)
    ):
        return Transient(text.strip())
    return Rejected(text.strip())
