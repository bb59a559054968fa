"""The fake Bot API over real HTTP (a real PTB Bot through httpx), and the webhook pusher
delivering updates the way Telegram promises: again until a 2xx, in order per chat."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, InvalidToken, RetryAfter

from tests.fakes.telegram_bot_api import BOT_USERNAME, FakeBotApi
from tests.fakes.telegram_bot_server import (
    SECRET_HEADER,
    pushing_webhooks,
    serving,
    serving_asgi,
)

TOKEN = "123456:TEST-over-http"
SECRET = "push-SECRET"
BINARY = bytes(range(256)) + b"\r\n\r\n--not-a-boundary\r\n" + bytes(range(255, -1, -1))

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")


def file_url(base_url: str) -> str:
    head, _, tail = base_url.rpartition("/bot")
    return f"{head}/file/bot{tail}"


@pytest.fixture
def api() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with (
        serving(api, token=TOKEN) as base_url,
        Bot(TOKEN, base_url=base_url, base_file_url=file_url(base_url)) as ready,
    ):
        yield ready


async def test_serving_yields_a_bot_api_url_on_a_real_port(api: FakeBotApi) -> None:
    async with serving(api) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/bot")
        assert int(base_url.rsplit(":", 1)[1].removesuffix("/bot")) > 0


async def test_a_real_bot_talks_to_the_fake_over_http(api: FakeBotApi, bot: Bot) -> None:
    assert bot.username == BOT_USERNAME  # getMe, when the Bot was initialized
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Yes", callback_data="n1:yes"),
                InlineKeyboardButton("No", callback_data="n1:no"),
            ]
        ]
    )
    sent = await bot.send_message(7, "35", reply_markup=markup)

    assert sent.message_id == 1 and sent.reply_markup == markup
    recorded = api.last_to(7)
    assert recorded.text == "35"  # a text stays a string even when it looks like a number
    assert recorded.params["chat_id"] == 7
    assert api.buttons(recorded) == [("Yes", "n1:yes"), ("No", "n1:no")]
    user = api.user(7)
    user.press("n1:yes")
    update = (await bot.get_updates(timeout=1))[0]
    assert update.callback_query is not None and update.callback_query.data == "n1:yes"
    assert await update.callback_query.answer()


async def test_uploads_and_downloads_keep_every_byte(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_photo(7, BINARY, caption="chart", filename="chart.png")

    recorded = api.last_to(7)
    assert recorded.method == "sendPhoto" and recorded.text == "chart"
    assert recorded.file_bytes == BINARY and recorded.file_name == "chart.png"
    photo = await bot.get_file(sent.photo[-1].file_id)
    assert await photo.download_as_bytearray() == BINARY

    api.user(8).photo("field_photo", b"\xff\xd8 jpeg \x00\r\n")
    incoming = (await bot.get_updates(timeout=1))[0]
    assert incoming.message is not None
    received = await bot.get_file(incoming.message.photo[-1].file_id)
    assert await received.download_as_bytearray() == b"\xff\xd8 jpeg \x00\r\n"


async def test_failures_limits_and_tokens_behave_as_in_process(api: FakeBotApi, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, description="Too Many Requests", retry_after=3)
    with pytest.raises(RetryAfter):
        await bot.send_message(7, "one")
    api.blocked.add(9)
    with pytest.raises(Forbidden):
        await bot.send_message(9, "two")
    base_url = str(bot.base_url).removesuffix(TOKEN)
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=base_url):
            pass


async def test_get_updates_long_polls_and_forgets_what_the_offset_confirms(
    api: FakeBotApi, bot: Bot
) -> None:
    user = api.user(7)
    user.text("first")
    first = await bot.get_updates(timeout=1)
    assert [u.message.text for u in first if u.message] == ["first"]
    waiting = asyncio.create_task(bot.get_updates(offset=first[-1].update_id + 1, timeout=3))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing new yet: the request is held open
    user.text("second")
    second = await asyncio.wait_for(waiting, 2)
    assert [u.message.text for u in second if u.message] == ["second"]
    assert [u["message"]["text"] for u in api.pending_updates] == ["second"]


async def test_closing_the_server_ends_a_long_poll_at_once(api: FakeBotApi) -> None:
    async with serving(api) as base_url:
        bot = Bot(TOKEN, base_url=base_url)
        await bot.initialize()
        poll = asyncio.create_task(bot.get_updates(timeout=10))
        await asyncio.sleep(0.2)
        closing = time.monotonic()
    try:
        assert await asyncio.wait_for(poll, 2) == ()
        assert time.monotonic() - closing < 1.0
    finally:
        await bot.shutdown()


# --- webhooks ----------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A web process stand-in: records what is posted, can fail, takes its time."""

    fail_first: int = 0
    delay: float = 0.0
    posts: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str | None] = field(default_factory=list)
    active: set[int] = field(default_factory=set)
    overlaps: int = 0

    def app(self) -> Starlette:
        async def telegram(request: Request) -> Response:
            update = json.loads(await request.body())
            self.posts.append(update)
            self.secrets.append(request.headers.get(SECRET_HEADER))
            if self.fail_first > 0:
                self.fail_first -= 1
                return Response(status_code=500)
            chat = update["message"]["chat"]["id"]
            self.overlaps += chat in self.active
            self.active.add(chat)
            await asyncio.sleep(self.delay)
            self.active.discard(chat)
            return Response(status_code=200)

        return Starlette(routes=[Route("/telegram", telegram, methods=["POST"])])


async def test_an_update_is_posted_again_until_the_receiver_answers_2xx(api: FakeBotApi) -> None:
    receiver = Receiver(fail_first=1)
    update = api.user(7).text("hello")
    async with (
        serving_asgi(receiver.app()) as root,
        pushing_webhooks(api, [f"{root}/telegram"], SECRET, retry_delay=0.01) as pusher,
    ):
        await pusher.drain(timeout=3)
        await asyncio.sleep(0.1)  # nothing more arrives once the 200 was given

    assert receiver.posts == [update, update]
    assert receiver.secrets == [SECRET, SECRET]
    assert (pusher.delivered, pusher.retried, dict(pusher.failures)) == (1, 1, {"500": 1})
    assert api.pending_updates == []


async def test_a_dead_url_is_skipped_and_getupdates_is_refused_meanwhile(api: FakeBotApi) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/telegram"
    receiver = Receiver()
    async with (
        serving_asgi(receiver.app()) as root,
        serving(api) as base_url,
        Bot(TOKEN, base_url=base_url) as bot,
    ):
        async with pushing_webhooks(
            api, [dead, f"{root}/telegram"], SECRET, retry_delay=0.01
        ) as pusher:
            update = api.user(7).text("hello")
            await pusher.drain(timeout=3)
            with pytest.raises(Exception, match="webhook is active"):
                await bot.get_updates()
        assert api.webhook_url == ""

    assert receiver.posts == [update]
    assert pusher.delivered == 1 and pusher.retried == 1
    assert dict(pusher.failures) == {"ConnectError": 1}


async def test_updates_are_spread_over_urls_but_never_overlap_within_a_chat(
    api: FakeBotApi,
) -> None:
    first = Receiver(delay=0.02)
    second = Receiver(delay=0.02, posts=first.posts, active=first.active)  # one timeline
    users = [api.user(chat) for chat in (1, 2, 3)]
    queued = [user.text(str(n)) for n in range(4) for user in users]
    async with (
        serving_asgi(first.app()) as one,
        serving_asgi(second.app()) as two,
        pushing_webhooks(api, [f"{one}/telegram", f"{two}/telegram"], SECRET) as pusher,
    ):
        await pusher.drain(timeout=3)

    assert first.overlaps + second.overlaps == 0
    for chat in (1, 2, 3):
        arrived = [p["update_id"] for p in first.posts if p["message"]["chat"]["id"] == chat]
        assert arrived == [u["update_id"] for u in queued if u["message"]["chat"]["id"] == chat]
    assert len(first.posts) == pusher.delivered == 12 and pusher.retried == 0
    assert len(set(pusher.posted.values())) == 1  # six posts to each URL
