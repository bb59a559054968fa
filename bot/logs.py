"""Logging set-up: secrets are masked in every record, whatever library logs them."""

from __future__ import annotations

import logging
import sys
from typing import TextIO


class SecretMask(logging.Filter):
    """Replaces each secret by a placeholder in the formatted message."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = message
        for secret in self.secrets:
            masked = masked.replace(secret, "<secret>")
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure(secrets: list[str], level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Log to stderr (or `stream`) with every secret masked."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMask(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and Telegram's URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
