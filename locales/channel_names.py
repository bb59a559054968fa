"""How each channel is named to people (exports, broadcast reports): a catalog entry each,
so that Arabic readers see "واتساب"; a channel without one is shown by its key."""

from __future__ import annotations

from locales import N_

CHANNEL_NAMES = {"telegram": N_("Telegram"), "whatsapp": N_("WhatsApp"), "console": N_("Console")}


def channel_name_msgid(channel: str) -> str | None:
    """The msgid naming `channel`, None for a channel the catalogs do not name."""
    return CHANNEL_NAMES.get(channel)
