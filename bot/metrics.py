"""Prometheus counters of one web process, in a registry of its own (not the global one)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import Engine

from storage.db import transaction
from storage.outbox import depth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Updates received, replies sent, errors, and the outbox depth read at scrape time.

    Send latency is not here: the sender runs in the worker process, which serves no HTTP.
    """

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter("sanad_updates_received", "Telegram updates received",
                               registry=self.registry)
        self.replies = Counter("sanad_replies_sent", "Direct replies sent to Telegram",
                               registry=self.registry)
        self.errors = Counter("sanad_errors", "Updates that failed (500) or that the "
                              "dispatcher could not apply", registry=self.registry)
        self.outbox = Gauge("sanad_outbox_depth", "Outbox messages waiting to be sent",
                            registry=self.registry)
        self.outbox.set_function(lambda: _depth(engine))
        self.error_log = _CountErrors(self.errors)

    def replied(self, count: int) -> None:
        self.replies.inc(count)

    def render(self) -> bytes:
        """The text exposition; queries the database (call it off the event loop)."""
        return generate_latest(self.registry)


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
