"""Photos Telegram keeps (a `Photo.file_id`), as files on this machine for another channel to
upload: a WhatsApp recipient of a broadcast whose picture an admin sent on Telegram.

Each file is fetched once with the Bot API (`getFile`, then the file URL) and kept under
DATA_DIR/media/telegram, named after its file id; later sends, in this process or another,
find it there. Telegram's file ids stay valid for the bot that received them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from telegram import Bot
from telegram.error import BadRequest, TelegramError
from telegram.request import HTTPXRequest

from bot.channels.base import Rejected, Transient
from bot.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "telegram"


class TelegramFiles:
    """The files of one bot, fetched on first use; `local` is a `bot.channels.base.KeptFile`."""

    def __init__(self, make_bot: Callable[[], Bot], folder: Path) -> None:
        self.make_bot = make_bot
        self.folder = folder
        self._fetching: dict[str, asyncio.Future[Path]] = {}
        self._bot: Bot | None = None

    @classmethod
    def of(cls, settings: Settings) -> TelegramFiles:
        """For a process that runs another channel: its own Bot, made and connected on first
        use (most processes never need it)."""
        token = settings.telegram_bot_token
        assert token is not None

        def make_bot() -> Bot:
            return Bot(
                token.get_secret_value(),
                base_url=settings.bot_api_url,
                base_file_url=settings.bot_file_url,
                request=HTTPXRequest(connection_pool_size=4),
            )

        return cls(make_bot, settings.media_dir / CHANNEL)

    def path_of(self, file_id: str) -> Path:
        name = hashlib.sha256(file_id.encode()).hexdigest()[:32]
        return self.folder.resolve() / f"{name}.jpg"  # Telegram's photos are JPEG

    async def local(self, file_id: str) -> Path:
        """The file `file_id` on this machine; concurrent asks for one file fetch it once."""
        target = self.path_of(file_id)
        if target.exists():
            return target
        fetching = self._fetching.get(file_id)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch(file_id, target))
            self._fetching[file_id] = fetching
            fetching.add_done_callback(lambda _: self._fetching.pop(file_id, None))
        return await asyncio.shield(fetching)

    async def _fetch(self, file_id: str, target: Path) -> Path:
        partial = target.with_suffix(f".{os.getpid()}.part")  # processes may fetch at once
        try:
            if self._bot is None:
                bot = self.make_bot()
                await bot.initialize()
                self._bot = bot
            found = await self._bot.get_file(file_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            await found.download_to_drive(partial)
        except BadRequest as error:  # an id this bot does not know: it never will
            raise Rejected(f"Telegram file: {error.message}") from error
        except TelegramError as error:
            raise Transient(f"Telegram file: {error.message}") from error
        except OSError as error:
            raise Transient(f"Telegram file: {error.strerror}") from error
        partial.replace(target)
        log.info("telegram: kept a photo for another channel (%d bytes)", target.stat().st_size)
        return target

    async def aclose(self) -> None:
        if self._bot is not None:
            await self._bot.shutdown()
            self._bot = None
