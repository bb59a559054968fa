"""Logging set-up: secrets are masked in every record, whatever library logs them.

`LOG_FORMAT=json` writes one JSON object a line; the fields `update_id` and `person_id`
(Sanad's internal id, never a phone number or a name) are kept when a record carries them.
"""

from __future__ import annotations

import json
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


STRUCTURED_FIELDS = ("update_id", "person_id")


class MaskingFormatter(logging.Formatter):
    """Text or JSON lines; secrets are masked in the whole line, tracebacks included."""

    def __init__(self, secrets: list[str], json_lines: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = [s for s in secrets if s]
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        line = self._json(record) if self.json_lines else super().format(record)
        for secret in self.secrets:
            line = line.replace(secret, "<secret>")
        return line

    def _json(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in STRUCTURED_FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(
    secrets: list[str],
    level: int = logging.INFO,
    stream: TextIO | None = None,
    log_format: str = "text",
) -> None:
    """Log to stderr (or `stream`) with every secret masked; `log_format` text or json."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(MaskingFormatter(secrets, json_lines=log_format == "json"))
    handler.addFilter(SecretMask(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and Telegram's URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
