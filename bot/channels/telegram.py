"""The Telegram channel: translates python-telegram-bot updates into Incoming and Replies back.

Conversation state is not kept here (no ConversationHandler, no PTB persistence): every update
goes to the channel-neutral dispatcher, which keeps state in the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from telegram import (
    Bot,
    BotCommand,
    Update,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import BaseRequest, HTTPXRequest

from bot.app import Sanad
from bot.background import Background
from bot.channels.telegram_delivery import CHANNEL, keyboard, telegram_deliver
from handlers.messages import Incoming, Location, Photo, Reply
from locales import LANGUAGES, translator
from storage.db import transaction
from storage.people import remember

log = logging.getLogger(__name__)
USERNAME_SETTING = "telegram_username"
CAPTION_LIMIT = 1024
SENDER_CONNECTIONS = 16  # above the sender's concurrency, so sends do not queue for a socket


def build_application(sanad: Sanad, *, request: BaseRequest | None = None,
                      get_updates_request: BaseRequest | None = None,
                      with_background: bool = False,
                      on_replies: Callable[[int], None] | None = None) -> Application:
    """The python-telegram-bot Application for `sanad`; requests can be replaced in tests.

    With `with_background`, the scheduler and the outbox sender run in the same process,
    started after the bot introduced itself and stopped before it shuts down.
    `on_replies` is told how many replies each update produced, once they were sent.
    """
    settings = sanad.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    builder = (Application.builder()
               .token(settings.telegram_bot_token.get_secret_value())
               .base_url(settings.bot_api_url)
               .base_file_url(settings.bot_file_url))
    if request is not None:
        builder = builder.request(request).get_updates_request(get_updates_request or request)
    background: list[Background] = []

    async def started(application: Application) -> None:
        await _introduce(sanad, application)
        if with_background:
            background.append(Background(sanad, telegram_deliver(application.bot)))
            await background[0].start()

    async def stopping(application: Application) -> None:
        for work in background:
            await work.stop()

    application = builder.post_init(started).post_stop(stopping).build()
    # One handler for every update: the dispatcher decides what it means, so PTB's handler
    # groups have nothing to order. Updates of one chat are processed in arrival order.
    application.add_handler(TypeHandler(Update, _handler(sanad, on_replies)))
    return application


def run_polling(sanad: Sanad, *, with_background: bool = True) -> None:
    application = build_application(sanad, with_background=with_background)
    application.run_polling(allowed_updates=["message", "callback_query"])


def make_bot(sanad: Sanad) -> Bot:
    """A bare Bot (no updates) for a process that only sends, such as the worker."""
    settings = sanad.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    return Bot(settings.telegram_bot_token.get_secret_value(), base_url=settings.bot_api_url,
               base_file_url=settings.bot_file_url,
               request=HTTPXRequest(connection_pool_size=SENDER_CONNECTIONS))


async def run_worker(sanad: Sanad, stop: asyncio.Event, bot: Bot | None = None) -> None:
    """The scheduler and the sender alone, until `stop` is set."""
    async with bot or make_bot(sanad) as ready:
        work = Background(sanad, telegram_deliver(ready))
        await work.start()
        await stop.wait()
        await work.stop()


async def _introduce(sanad: Sanad, application: Application) -> None:
    """Remember the bot's username (for invite links) and publish its commands per language."""
    username = application.bot.username
    with transaction(sanad.engine) as session:
        remember(session, USERNAME_SETTING, username)
    forms = sanad.dispatcher.services.forms
    for language in LANGUAGES:
        tr = translator(language)
        commands = [BotCommand("report", tr.gettext("Choose a report to fill in"))]
        commands += [BotCommand(f.command, f.title.get(language)) for f in forms.values()]
        commands += [BotCommand("myreports", tr.gettext("Your recent reports")),
                     BotCommand("language", tr.gettext("Change the language")),
                     BotCommand("help", tr.gettext("What I can do"))]
        try:
            await application.bot.set_my_commands(
                commands, language_code=None if language == "ar" else language)
        except TelegramError as error:
            log.warning("could not publish the command list: %s", error)


def _handler(sanad: Sanad,  # type: ignore[no-untyped-def]
             on_replies: Callable[[int], None] | None = None):
    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = to_incoming(update)
        if incoming is None:
            return
        if update.callback_query is not None:
            await _acknowledge(update)
        replies = sanad.dispatcher.handle(incoming)
        chat_id = int(incoming.chat_id)
        for reply in replies:
            await send(context.bot, chat_id, reply)
        if on_replies is not None:
            on_replies(len(replies))

    return handle


def to_incoming(update: Update) -> Incoming | None:
    """The neutral form of an update, or None for updates Sanad does not act on."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != "private":
        return None
    base = {"channel": CHANNEL, "chat_id": str(chat.id), "sender": str(user.id),
            "update_id": str(update.update_id), "sender_name": user.full_name,
            "language_code": user.language_code}
    query = update.callback_query
    if query is not None:
        return Incoming(**base, choice=query.data or "")
    message = update.message
    if message is None:
        return None
    if message.photo:
        return Incoming(**base, photo=Photo(file_id=message.photo[-1].file_id),
                        text=message.caption)
    if message.location is not None:
        return Incoming(**base, location=Location(message.location.latitude,
                                                  message.location.longitude))
    if message.text is not None:
        return Incoming(**base, text=message.text)
    return Incoming(**base, text="")


async def _acknowledge(update: Update) -> None:
    """Answer the button press (Telegram shows a spinner until then).

    The pressed message keeps its buttons: editing them away would cost a second request per
    press on patchy networks, and an old button pressed again is refused by the handlers.
    """
    query = update.callback_query
    assert query is not None
    try:
        await query.answer()
    except BadRequest as error:
        log.debug("could not answer the button press: %s", error)


async def send(bot: Bot, chat_id: int, reply: Reply) -> None:
    """Send one reply; options become an inline keyboard on its last message."""
    markup = keyboard([(o.label, o.value) for o in reply.options], reply.columns)
    if reply.document is not None:
        with reply.document.open("rb") as document:
            await bot.send_document(chat_id, document, caption=reply.text[:CAPTION_LIMIT],
                                    filename=reply.document.name, reply_markup=markup)
        return
    if reply.photo is not None:
        caption = reply.text if len(reply.text) <= CAPTION_LIMIT else None
        with reply.photo.open("rb") as photo:
            await bot.send_photo(chat_id, photo, caption=caption,
                                 reply_markup=markup if caption is not None else None)
        if caption is not None:
            return
    parts = _split(reply.text)
    for number, part in enumerate(parts, 1):
        await bot.send_message(chat_id, part,
                               reply_markup=markup if number == len(parts) else None)


def _split(text: str, limit: int = 4000) -> list[str]:
    """Telegram takes at most 4096 characters a message: split long texts at line ends."""
    if len(text) <= limit:
        return [text]
    parts, current = [], ""
    for line in text.splitlines(keepends=True):
        if len(current) + len(line) > limit and current:
            parts.append(current)
            current = ""
        current += line[:limit]
    parts.append(current)
    return parts
