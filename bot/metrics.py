"""Prometheus counters of one process, in a registry of its own (not the global one).

Every command (`run`, `worker`, `webhook`) serves them on METRICS_PORT when it is set, bound to
METRICS_HOST (127.0.0.1 unless the operator says otherwise): never on the public webhook port,
unless METRICS_TOKEN is set, and then only to a request bearing it. A scrape costs no query
beyond one per `cache_seconds` (the outbox depth is read at most that often).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from sqlalchemy import Engine

from storage.db import transaction
from storage.outbox import depth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)


class Metrics:
    """Updates received, replies sent and how long they took, errors, the outbox depth (read
    at scrape time), and the sender's latency: each Bot API call, and enqueue to sent."""

    def __init__(self, engine: Engine, cache_seconds: float = 15.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "sanad_updates_received", "Telegram updates received", registry=self.registry
        )
        self.replies = Counter(
            "sanad_replies_sent", "Direct replies sent to Telegram", registry=self.registry
        )
        self.reply_seconds = Histogram(
            "sanad_reply_seconds",
            "From an update reaching the bot to its last reply sent",
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "sanad_errors",
            "Updates that failed (500) or that the dispatcher could not apply",
            registry=self.registry,
        )
        self.outbox = Gauge(
            "sanad_outbox_depth", "Outbox messages waiting to be sent", registry=self.registry
        )
        self.outbox_depth = Cached(lambda: _depth(engine), cache_seconds)
        self.outbox.set_function(self.outbox_depth.get)
        self.send_seconds = Histogram(
            "sanad_send_seconds",
            "One Bot API call delivering an outbox message",
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.outbox_wait_seconds = Histogram(
            "sanad_outbox_wait_seconds",
            "From a message entering the outbox to its delivery "
            "(includes planned holds such as quiet hours)",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.error_log = _CountErrors(self.errors)

    def replied(self, count: int, seconds: float) -> None:
        self.replies.inc(count)
        self.reply_seconds.observe(seconds)

    def sent(self, call_seconds: float, waited_seconds: float) -> None:
        self.send_seconds.observe(call_seconds)
        self.outbox_wait_seconds.observe(max(0.0, waited_seconds))

    def render(self) -> bytes:
        """The text exposition; may query the database once per cache period (call it off
        the event loop)."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """Serve /metrics on `port` from a thread (processes without a web server); the
        server is returned so that it can be shut down."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server

    def count_errors_of(self, *loggers: str) -> None:
        for name in loggers:
            logging.getLogger(name).addHandler(self.error_log)


class Cached:
    """The value of `read`, read again at most once per `seconds`; while one caller reads, the
    others get the value read before (the first callers wait for the first value)."""

    def __init__(
        self,
        read: Callable[[], float],
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read, self.seconds, self.clock = read, seconds, clock
        self.value = math.nan
        self.read_at: float | None = None
        self.reads = 0
        self._lock = threading.Lock()

    def fresh(self) -> float | None:
        """The value if it is recent enough, else None (then `get` reads it again)."""
        if self.read_at is not None and self.clock() - self.read_at < self.seconds:
            return self.value
        return None

    def get(self) -> float:
        fresh = self.fresh()
        if fresh is not None:
            return fresh
        if not self._lock.acquire(blocking=self.read_at is None):
            return self.value  # another caller is reading it again
        try:
            if self.read_at is None or self.clock() - self.read_at >= self.seconds:
                self.value = self.read()
                self.reads += 1
                self.read_at = self.clock()
            return self.value
        finally:
            self._lock.release()


def _depth(engine: Engine) -> float:
    try:
        with transaction(engine) as session:
            return float(depth(session))
    except Exception:  # a scrape must not fail because the database does
        return float("nan")


class _CountErrors(logging.Handler):
    """Counts the dispatcher's error records (it answers "sorry" instead of raising)."""

    def __init__(self, errors: Counter) -> None:
        super().__init__(logging.ERROR)
        self.counter = errors

    def emit(self, record: logging.LogRecord) -> None:
        self.counter.inc()
