"""Settings from the environment or a .env file. Secrets are SecretStr so they never print."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILE_API = "https://api.telegram.org/file/bot"
WHATSAPP_GRAPH_API = "https://graph.facebook.com/v26.0"  # Meta's current Graph API version


class Settings(BaseSettings):
    """Everything an operator configures. Names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_bot_username: str | None = None
    telegram_base_url: str | None = None
    telegram_base_file_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None  # required by `python -m bot webhook`
    whatsapp_token: SecretStr | None = None  # a permanent (system user) access token
    whatsapp_phone_number_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None  # signs webhook deliveries
    whatsapp_verify_token: SecretStr | None = None  # answers Meta's webhook verification
    whatsapp_number: str | None = None  # the business number, digits only, for wa.me links
    whatsapp_base_url: str = WHATSAPP_GRAPH_API
    whatsapp_messages_per_second: float = 80.0  # the number's throughput (higher tiers: more)
    log_format: Literal["text", "json"] = "text"
    # Metrics: on their own port, bound to metrics_host; on the webhook port only with a token.
    metrics_port: int | None = None  # `run`, `worker` and `webhook` serve /metrics here
    metrics_host: str = "127.0.0.1"
    metrics_token: SecretStr | None = None  # adds GET /metrics (Bearer) to the webhook port
    metrics_cache_seconds: float = 15.0  # the outbox depth is counted at most this often
    health_cache_seconds: float = 5.0  # /health asks the database at most this often
    # What the webhook takes from a client (Telegram's updates are a few KiB).
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_max_header_bytes: int = 16 * 1024
    webhook_read_timeout: float = 10.0
    webhook_keep_alive_seconds: int = 5
    webhook_max_connections: int = 200
    # A claimed outbox message whose sender went silent this long is sent again (PostgreSQL,
    # several senders; on SQLite the one sender takes back every claim when it starts).
    outbox_claim_timeout: float = 600.0
    database_url: str = "sqlite:///data/sanad.db"
    backup_keep: int = 14  # `backup FOLDER` keeps this many copies
    data_dir: Path = Path("data")

    @property
    def bot_api_url(self) -> str:
        """The Bot API URL python-telegram-bot appends the token to (or fills `{token}` in)."""
        base = self.telegram_base_url
        if not base:
            return TELEGRAM_API
        if "{token}" in base or base.endswith("/bot"):
            return base
        return base.rstrip("/") + "/bot"

    @property
    def bot_file_url(self) -> str:
        """The file URL; derived from a custom Bot API URL when only that one is set."""
        if self.telegram_base_file_url:
            return self.telegram_base_file_url
        if not self.telegram_base_url:
            return TELEGRAM_FILE_API
        api = self.bot_api_url
        marker = "/bot{token}" if "/bot{token}" in api else "/bot"
        head, _, tail = api.rpartition(marker)
        return f"{head}/file{marker}{tail}"

    @property
    def whatsapp_configured(self) -> bool:
        """Whether every setting the WhatsApp channel needs is there."""
        return None not in (
            self.whatsapp_token,
            self.whatsapp_phone_number_id,
            self.whatsapp_app_secret,
            self.whatsapp_verify_token,
        )

    @property
    def charts_dir(self) -> Path:
        """Where digest charts are drawn before they are sent."""
        return self.data_dir / "charts"

    @property
    def media_dir(self) -> Path:
        """Where photos given on the console are kept; never a served path."""
        return self.data_dir / "media"
