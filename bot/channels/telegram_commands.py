"""The command menu Telegram shows each person: their role's commands, in their language.

A reply that carries `commands` (handlers.messages.Reply) asks for this chat's list to be
replaced: setMyCommands with the chat's scope and no language code, so it applies to that
person whatever language their Telegram app is in (Sanad's language is the one they chose).
Telegram's limits are kept here: names of 1-32 characters a-z, 0-9 and _, descriptions of
1-256 characters, at most 100 commands. The command menu is a convenience: if Telegram does
not take it, the reply still goes out and the person can still type the commands.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import TelegramError

from handlers.messages import Command

log = logging.getLogger(__name__)
NAME = re.compile(r"[a-z0-9_]{1,32}")
DESCRIPTION_LIMIT = 256
COMMANDS_LIMIT = 100


def bot_commands(commands: Iterable[Command]) -> list[BotCommand]:
    """The commands Telegram accepts, in order; a name it would refuse is left out."""
    found = [
        BotCommand(command.name, _description(command))
        for command in commands
        if NAME.fullmatch(command.name)
    ]
    return found[:COMMANDS_LIMIT]


def _description(command: Command) -> str:
    text = " ".join(command.description.split()) or command.name
    if len(text) <= DESCRIPTION_LIMIT:
        return text
    return text[: DESCRIPTION_LIMIT - 1] + "…"


async def set_chat_commands(bot: Bot, chat_id: int, commands: Iterable[Command]) -> bool:
    """Show `commands` in this chat's command menu; False (logged) if Telegram refused."""
    try:
        await bot.set_my_commands(bot_commands(commands), scope=BotCommandScopeChat(chat_id))
    except TelegramError as error:
        log.warning("chat %s: the command list was not set (%s)", chat_id, error.__class__.__name__)
        return False
    return True
