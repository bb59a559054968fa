"""The baseline of `bench.e2e`: a bare python-telegram-bot echo bot in its own process.

    TELEGRAM_BOT_TOKEN=... TELEGRAM_BASE_URL=http://127.0.0.1:PORT/bot python -m bench.echo_bot

An Application with one TypeHandler, polling as PTB's `run_polling` does: every update is
answered with one message ("echo"), and a button press is answered (answerCallbackQuery)
first, as any bot with buttons does. Nothing else: no database, no state.
"""

from __future__ import annotations

import os
import sys

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    if chat is not None:
        await context.bot.send_message(chat.id, "echo")


def main() -> int:
    base_url = os.environ["TELEGRAM_BASE_URL"]
    application = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(base_url)
        .base_file_url(base_url.replace("/bot", "/file/bot"))
        .build()
    )
    application.add_handler(TypeHandler(Update, echo))
    application.run_polling(poll_interval=0.0, timeout=10, allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
