"""The HTTP connection pool both platforms' clients use: httpx's transport over httpcore's pool,
with a network backend whose connections tell cheaply whether they are still usable.

httpcore's pool looks at every pooled connection whenever a request starts or ends, and asks
each idle one whether the server closed it (`has_expired`: is its socket readable?). Its
anyio backend answers `get_extra_info` by building a table of every socket attribute anew, so
with the dozen connections a process keeps to the Bot API (replies to several chats at once,
the outbox sender beside them) that question cost 12% of the event loop's CPU (py-spy, bench
e2e on PostgreSQL). The streams here keep their socket and ask the kernel directly (one
`poll`, as httpcore does). Upstream's own fix is under review (encode/httpcore#928); this goes
once a release has it.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.request import getproxies

import httpcore
import httpx


def pooled_transport(connections: int) -> httpx.AsyncHTTPTransport | None:
    """httpx's transport for up to `connections` at once, its connections made by
    `CheapCheckBackend`; None (httpx's own, which honours them) when the environment names
    a proxy."""
    if getproxies():
        return None
    limits = httpx.Limits(max_connections=connections)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx builds its pool without a way to name the network backend; the same pool, with it.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=CheapCheckBackend(),
    )
    return transport


class CheapCheckBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, its streams wrapped in `CheapCheckStream`."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return CheapCheckStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        return CheapCheckStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class CheapCheckStream(httpcore.AsyncNetworkStream):
    """A stream that answers "is_readable" from the socket it keeps."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return CheapCheckStream(stream)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return readable(self._socket)
        return self._stream.get_extra_info(info)


def readable(sock: socket.socket | None) -> bool:
    """Whether reading `sock` would return at once: data, or the end a closed socket gives (a
    socket gone counts as readable, as in httpcore)."""
    descriptor = -1 if sock is None else sock.fileno()
    if descriptor < 0:
        return True
    poll = select.poll()
    poll.register(descriptor, select.POLLIN)
    return bool(poll.poll(0))
