"""Tests for the fake Telegram Bot API, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings
from collections.abc import AsyncIterator

import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.error import BadRequest, EndPointNotFound, Forbidden, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_bot_api import BOT_ID, FakeBotApi, SentMessage, running_polling

TOKEN = "123:TEST"

# PTB itself reads RetryAfter.retry_after while building the exception (int -> timedelta
# deprecation); that is not something these tests can avoid.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
async def bot(fake: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, request=fake.request(), get_updates_request=fake.request()) as b:
        yield b


def _retry_seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds, whether PTB returns an int or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _no_other_tasks() -> bool:
    current = asyncio.current_task()
    return all(task is current or task.done() for task in asyncio.all_tasks())


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


def _echo_app(fake: FakeBotApi) -> Application:
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .request(fake.request())
        .get_updates_request(fake.request())
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, _echo))
    return app


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.first_name, me.is_bot) == (
        BOT_ID,
        "sanad_test_bot",
        "Sanad",
        True,
    )


async def test_send_message_with_inline_keyboard_round_trips(fake: FakeBotApi, bot: Bot) -> None:
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("نعم", callback_data="yes")],
            [InlineKeyboardButton("لا", callback_data="no"), InlineKeyboardButton("?", url="x")],
        ]
    )
    first = await bot.send_message(7, "مرحبا", reply_markup=markup, parse_mode="HTML")
    second = await bot.send_message(7, "again")
    other = await bot.send_message(8, "other chat")

    assert first.text == "مرحبا"
    assert first.reply_markup == markup
    assert first.chat.id == 7 and first.chat.type == "private"
    assert first.from_user is not None and first.from_user.id == BOT_ID
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)

    sent = fake.last_to(7)
    assert sent.text == "again"
    msg = fake.messages_to(7)[0]
    assert msg.method == "sendMessage" and msg.chat_id == 7 and msg.parse_mode == "HTML"
    assert fake.buttons(msg) == [("نعم", "yes"), ("لا", "no"), ("?", "")]
    assert msg.params["text"] == "مرحبا"
    assert [m.chat_id for m in fake.sent] == [7, 7, 8]


async def test_edits_and_telegram_validation(fake: FakeBotApi, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="a")]])
    msg = await bot.send_message(7, "one", reply_markup=markup)

    edited = await bot.edit_message_text("two", chat_id=7, message_id=msg.message_id)
    assert isinstance(edited, type(msg)) and edited.text == "two"
    assert edited.reply_markup is None  # editing text without markup drops the keyboard
    assert fake.last_to(7).method == "editMessageText"

    with pytest.raises(BadRequest, match="(?i)not modified"):
        await bot.edit_message_text("two", chat_id=7, message_id=msg.message_id)
    with pytest.raises(BadRequest, match="(?i)not found"):
        await bot.edit_message_text("x", chat_id=7, message_id=99)

    await bot.edit_message_reply_markup(7, msg.message_id, reply_markup=markup)
    assert fake.message_json(7, msg.message_id)["reply_markup"] == markup.to_dict()

    with pytest.raises(BadRequest, match="(?i)text is empty"):
        await bot.send_message(7, "")
    with pytest.raises(BadRequest, match="(?i)too long"):
        await bot.send_message(7, "x" * 4097)
    # Telegram counts UTF-16 code units: an emoji is two, so 2049 of them are too many.
    await bot.send_message(7, "😀" * 2048)
    with pytest.raises(BadRequest, match="(?i)too long"):
        await bot.send_message(7, "😀" * 2049)
    with pytest.raises(BadRequest, match="(?i)caption is too long"):
        await bot.send_photo(7, b"\x89PNG", caption="😀" * 513)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(7, "x", reply_markup=too_long)


async def test_polling_application_echoes(fake: FakeBotApi) -> None:
    app = _echo_app(fake)
    assert app.updater is not None
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        fake.user(7).text("hello")
        reply = await fake.wait_for(lambda m: m.chat_id == 7)
        assert reply.text == "echo: hello"
        fake.user(8).text("second")
        reply = await fake.wait_for(lambda m: m.chat_id == 8)
        assert reply.text == "echo: second"
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert fake.pending_updates == []  # the final getUpdates confirmed everything
    assert [m for m, _ in fake.calls].count("deleteWebhook") == 1
    assert _no_other_tasks()


async def test_duplicate_update_is_redelivered(fake: FakeBotApi) -> None:
    seen: list[int] = []

    async def record(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        seen.append(update.update_id)

    app = fake.application_builder().build()
    app.add_handler(MessageHandler(filters.TEXT, _echo))
    app.add_handler(MessageHandler(filters.ALL, record), group=1)
    async with running_polling(app):
        update = fake.user(7).text("once")
        await fake.wait_for(lambda m: m.chat_id == 7)
        fake.duplicate(update)  # same update_id again, after it was confirmed
        await fake.wait_for(lambda m: m.chat_id == 7, start=1)
        fake.user(7).text("next")
        await fake.wait_for(lambda m: m.text == "echo: next")
    assert [m.text for m in fake.messages_to(7)] == ["echo: once", "echo: once", "echo: next"]
    assert seen == [update["update_id"], update["update_id"], update["update_id"] + 1]
    assert _no_other_tasks()


async def test_commands_and_callback_press(fake: FakeBotApi) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
        await update.effective_message.reply_text(f"args={context.args}", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("ok")
        await query.edit_message_text(f"pressed {query.data}")

    app = _echo_app(fake)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    user = fake.user(7, first_name="Amina")
    async with running_polling(app):
        user.command("start", "a", "b")
        menu = await fake.wait_for(lambda m: m.text == "args=['a', 'b']")
        assert fake.buttons(menu) == [("Go", "go")]
        user.press("go")
        edit = await fake.wait_for(lambda m: m.method == "editMessageText")
    assert edit.message_id == menu.message_id and edit.text == "pressed go"
    assert fake.callback_answers[0]["text"] == "ok"
    assert fake.message_json(7, menu.message_id)["chat"]["first_name"] == "Amina"
    assert _no_other_tasks()


async def test_process_update_directly(fake: FakeBotApi) -> None:
    app = _echo_app(fake)
    async with app:
        update = Update.de_json(fake.user(7).text("direct"), app.bot)
        await app.process_update(update)
    assert fake.last_to(7).text == "echo: direct"


async def test_photo_location_and_download(fake: FakeBotApi, bot: Bot) -> None:
    user = fake.user(7)
    update = Update.de_json(user.photo("ph1", b"\xff\xd8jpeg", caption="site"), bot)
    assert update.message is not None and update.message.caption == "site"
    assert update.message.photo[-1].file_id == "ph1"

    data = await (await bot.get_file("ph1")).download_as_bytearray()
    assert bytes(data) == b"\xff\xd8jpeg"

    loc = Update.de_json(user.location(33.5, -7.6), bot)
    assert loc.message is not None and loc.message.location is not None
    assert loc.message.location.latitude == 33.5
    assert loc.update_id == update.update_id + 1
    assert loc.message.message_id == update.message.message_id + 1

    with pytest.raises(BadRequest, match="(?i)invalid file_id"):
        await bot.get_file("missing")


async def test_uploads_are_recorded(fake: FakeBotApi, bot: Bot) -> None:
    msg = await bot.send_document(7, InputFile(b"a,b\n1,2\n", filename="r.csv"), caption="cap")
    sent = fake.last_to(7)
    assert (sent.method, sent.file_name, sent.file_bytes, sent.text) == (
        "sendDocument",
        "r.csv",
        b"a,b\n1,2\n",
        "cap",
    )
    assert msg.document is not None and msg.document.file_name == "r.csv"
    assert bytes(await (await bot.get_file(msg.document.file_id)).download_as_bytearray()) == (
        b"a,b\n1,2\n"
    )

    photo = await bot.send_photo(7, b"png-bytes")
    assert fake.last_to(7).file_bytes == b"png-bytes" and photo.photo

    await bot.send_photo(7, "existing-id")
    assert fake.last_to(7).file_id == "existing-id" and fake.last_to(7).file_bytes is None

    await bot.send_chat_action(7, "typing")
    assert fake.chat_actions == [(7, "typing")]


async def test_fail_next_maps_to_ptb_errors(fake: FakeBotApi, bot: Bot) -> None:
    fake.fail_next(
        "sendMessage", status=429, description="Too Many Requests: retry after 7", retry_after=7
    )
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(7, "x")
    assert _retry_seconds(info.value) == 7

    fake.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(Forbidden):
        await bot.send_message(7, "x")

    fake.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(7, "x")

    fake.fail_next("sendMessage", status=403, description="Forbidden: blocked", chat_id=9)
    await bot.send_message(7, "fine")  # other chat: not affected
    with pytest.raises(Forbidden):
        await bot.send_message(9, "x")

    assert [m.text for m in fake.sent] == ["fine"]


async def test_on_request_hook_and_unknown_method(fake: FakeBotApi, bot: Bot) -> None:
    fake.on_request = lambda method, params: (
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: hooked"})
        if params.get("text") == "boom"
        else None
    )
    with pytest.raises(BadRequest, match="(?i)hooked"):
        await bot.send_message(7, "boom")
    await bot.send_message(7, "calm")

    with pytest.raises(EndPointNotFound, match="fooBar"):
        await bot.do_api_request("fooBar")


async def test_limits_produce_429(fake: FakeBotApi, bot: Bot) -> None:
    now = [100.0]
    fake.limits(per_second_overall=2, per_chat_per_second=1, clock=lambda: now[0])

    await bot.send_message(1, "a")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(1, "b")  # per-chat limit
    assert _retry_seconds(info.value) == 1
    await bot.send_message(2, "c")
    with pytest.raises(RetryAfter):
        await bot.send_message(3, "d")  # overall burst of 2 used up
    assert fake.rejected_429 == 2

    now[0] += 1.0
    await bot.send_message(1, "b")
    assert [m.text for m in fake.sent] == ["a", "c", "b"]

    fake.limits(per_second_overall=0.25, clock=lambda: now[0])
    await bot.send_message(1, "e")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(1, "f")
    assert _retry_seconds(info.value) == 4


async def test_a_press_carries_the_message_as_it_was_when_pressed(
    fake: FakeBotApi, bot: Bot
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="a")]])
    msg = await bot.send_message(7, "one", reply_markup=markup)
    fake.user(7).press("a")
    await bot.edit_message_text("two", chat_id=7, message_id=msg.message_id)
    [update] = await bot.get_updates(timeout=0)
    assert update.callback_query is not None
    pressed = update.callback_query.message
    assert pressed is not None and pressed.text == "one" and pressed.reply_markup == markup
    assert fake.message_json(7, msg.message_id)["text"] == "two"


async def test_get_updates_long_polling_and_offsets(fake: FakeBotApi, bot: Bot) -> None:
    user = fake.user(7)
    assert await bot.get_updates(timeout=0) == ()

    async def later() -> None:
        await asyncio.sleep(0.05)
        user.text("late")

    task = asyncio.create_task(later())
    updates = await bot.get_updates(timeout=2)
    await task
    assert [u.message.text for u in updates if u.message] == ["late"]

    for i in range(3):
        user.text(str(i))
    first = updates[0].update_id
    assert len(await bot.get_updates(offset=first, limit=2)) == 2
    rest = await bot.get_updates(offset=first + 1)
    assert [u.update_id for u in rest] == [first + 1, first + 2, first + 3]
    assert await bot.get_updates(offset=first + 4) == ()
    assert fake.pending_updates == []


async def test_wait_for_times_out(fake: FakeBotApi) -> None:
    with pytest.raises(TimeoutError):
        await fake.wait_for(lambda m: True, timeout=0.05)


def test_buttons_of_message_without_markup() -> None:
    msg = SentMessage("sendMessage", 1, 1, "t", None, None, {})
    assert FakeBotApi.buttons(msg) == []
