"""A webhook request's body, read within bounds: every webhook route (Telegram's, WhatsApp's)
takes it this way, so that a client can make the process neither hold more than
WEBHOOK_MAX_BODY_BYTES in memory (413) nor wait longer than WEBHOOK_READ_TIMEOUT for it (408)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request


class BodyRefused(Exception):
    """The body was not taken; `status` is the HTTP answer that says why."""

    status = 400


class BodyTooLarge(BodyRefused):
    """The request's body is larger than the webhook takes."""

    status = 413


class BodyTooSlow(BodyRefused):
    """The request's body did not arrive in time."""

    status = 408


async def read_bounded(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused with BodyTooLarge past `limit` bytes, BodyTooSlow past `timeout`
    seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await read_body(request, limit)
    except TimeoutError:
        raise BodyTooSlow(f"a body not read within {timeout}s") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (BodyTooLarge) as soon as it passes `limit` bytes: a declared
    Content-Length above it is refused before reading anything."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"a body above {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"a body above {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
