"""The composition root: settings -> database -> forms -> the dispatcher channels call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from bot.invite_links import invite_links
from bot.settings import Settings
from forms.loader import BUILT_IN, load_forms
from handlers.context import Services
from handlers.dispatcher import Dispatcher
from storage.db import open_database
from storage.types import utcnow


@dataclass(frozen=True)
class Sanad:
    """One assembled Sanad: what every channel and command-line action works with."""

    settings: Settings
    engine: Engine
    dispatcher: Dispatcher

    def close(self) -> None:
        """Let go of the database: the dispatcher's kept connection, then the pool."""
        self.dispatcher.close()
        self.engine.dispose()


def assemble(
    settings: Settings, *, forms_dir: Path = BUILT_IN, clock: Callable[[], datetime] = utcnow
) -> Sanad:
    """Build Sanad from its settings. A broken form file stops here, naming file and field."""
    forms = load_forms(forms_dir)
    engine = open_database(settings.database_url)
    services = Services(
        forms=forms,
        media_dir=settings.media_dir,
        charts_dir=settings.charts_dir,
        invite_link=invite_links(settings),
    )
    return Sanad(settings, engine, Dispatcher(engine, services, clock))
