"""The Graph API over httpx: send messages, upload and fetch media; errors in neutral terms.

A file is uploaded once and sent by its media id (`POST /{phone number id}/media`, multipart):
the id is remembered per file (its path, size and modification time) for `MEDIA_VALID_FOR`,
a little less than the 30 days Meta keeps uploaded media, so that a broadcast photo sent to
300 people is uploaded once per process, and concurrent sends of one file share its upload.

The token goes in the Authorization header only (never in a URL, so never in httpx's request
log) and is not part of any error text.

How Graph's errors map (outbox.sender decides what each means for a row):

* 130429 (throughput reached) -> `RetryAfter(1)`: the number's limit, the whole sender waits;
* 131056 (pair rate: too many messages to one person) -> `Transient`: retried with backoff;
* 131026 (undeliverable: not on WhatsApp, or an old version) -> `Unreachable`;
* 131047 (more than 24 hours since the person wrote) -> `WindowClosed` (a `Rejected`);
* 131053 (media upload error: a media id Meta no longer has, a type or size it refuses)
  -> `MediaRefused` (a `Rejected`): a send by a remembered media id uploads the file again once;
* 5xx, 131000, 2, 133004, timeouts and the network -> `Transient`;
* 401 / 190 (the token) -> `Transient`: the operator fixes the token, the rows go out then;
* any other 4xx -> `Rejected`, with Graph's message and details.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bot.channels.http_pool import pooled_transport
from bot.channels.whatsapp.render import Outgoing, mime_type
from outbox.sender import Rejected, RetryAfter, Transient, Unreachable

log = logging.getLogger(__name__)
JSON = dict[str, Any]
THROUGHPUT = 130429
PAIR_RATE = 131056
UNDELIVERABLE = 131026
WINDOW = 131047
MEDIA = 131053
#: Meta keeps an uploaded file 30 days; its id is used a day less.
MEDIA_VALID_FOR = 29 * 24 * 3600.0
MEDIA_REMEMBERED = 1024  # files whose media ids are remembered (the most recently used)
#: The type a file is uploaded as, where its own is not one WhatsApp takes (CSV is text).
UPLOAD_TYPES = {"text/csv": "text/plain"}
TRANSIENT_CODES = frozenset({1, 2, 131000, 133004, 131016})
TOKEN_CODES = frozenset({190})
CONNECTIONS = 32


class WindowClosed(Rejected):
    """The person last wrote more than 24 hours ago: only a template reaches them."""


class MediaRefused(Rejected):
    """Meta refused a file, or no longer has the one a media id named."""


FileKey = tuple[str, int, int]  # path, size, modification time (ns)


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
        self.uploads = 0  # files uploaded by this client
        self._media: OrderedDict[FileKey, tuple[str, float]] = OrderedDict()
        self._uploading: dict[FileKey, asyncio.Future[str]] = {}
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=CONNECTIONS),
            transport=transport or pooled_transport(CONNECTIONS),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, to: str, outgoing: Outgoing, callback: str | None = None) -> str:
        """Send one message (its file by media id, uploaded if need be); returns WhatsApp's
        message id. `callback` comes back in the message's status webhooks
        (biz_opaque_callback_data)."""
        body: JSON = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        if callback:
            body["biz_opaque_callback_data"] = callback
        payload = body | outgoing.payload
        if outgoing.upload is None:
            return await self._send(payload)
        media_id, fresh = await self.media_id(outgoing.upload)
        try:
            return await self._send(_with_media(payload, media_id))
        except MediaRefused:
            if fresh:
                raise
            self.forget(outgoing.upload)  # Meta no longer has it: once more, uploaded now
            media_id, _ = await self.media_id(outgoing.upload)
            return await self._send(_with_media(payload, media_id))

    async def _send(self, payload: JSON) -> str:
        answer = await self._call("POST", f"/{self.phone_number_id}/messages", json=payload)
        return str(answer["messages"][0]["id"])

    async def media_id(self, path: Path) -> tuple[str, bool]:
        """The media id of the file at `path`, and whether it was uploaded just now: a
        remembered one while it is valid, else uploaded (once for concurrent asks)."""
        key = _file_key(path)
        known = self._media.get(key)
        if known is not None and time.monotonic() - known[1] < MEDIA_VALID_FOR:
            self._media.move_to_end(key)
            return known[0], False
        uploading = self._uploading.get(key)
        if uploading is None:
            uploading = asyncio.ensure_future(self._upload_once(key, path))
            self._uploading[key] = uploading
            uploading.add_done_callback(lambda _: self._uploading.pop(key, None))
        return await asyncio.shield(uploading), True

    def forget(self, path: Path) -> None:
        """Forget the media id of the file at `path`."""
        self._media.pop(_file_key(path), None)

    async def _upload_once(self, key: FileKey, path: Path) -> str:
        media_id = await self.upload(path)
        self._media[key] = (media_id, time.monotonic())
        while len(self._media) > MEDIA_REMEMBERED:
            self._media.popitem(last=False)
        return media_id

    async def upload(self, path: Path) -> str:
        """Upload a file for sending; returns its media id."""
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as error:
            raise Rejected(f"file {path.name}: {error.strerror}") from error
        kind = mime_type(path)
        kind = UPLOAD_TYPES.get(kind, kind)
        answer = await self._call(
            "POST",
            f"/{self.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": kind},
            files={"file": (path.name, data, kind)},
        )
        self.uploads += 1
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


def _with_media(payload: JSON, media_id: str) -> JSON:
    kind = payload["type"]
    return payload | {kind: {**payload[kind], "id": media_id}}


def _file_key(path: Path) -> FileKey:
    try:
        found = path.stat()
    except OSError as error:
        raise Rejected(f"file {path.name}: {error.strerror}") from error
    return str(path.resolve()), found.st_size, found.st_mtime_ns


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
    if code == MEDIA:
        return MediaRefused(text.strip())
    if (
        code == PAIR_RATE
        or code in TRANSIENT_CODES
        or code in TOKEN_CODES
        or answer.status_code >= 500
        or answer.status_code in (401, 429)
    ):
        return Transient(text.strip())
    return Rejected(text.strip())
