"""One chat pressing old buttons by the thousand slows nobody else down: each chat's presses
in a fetched batch are bounded, and the extra ones get a short "wait" and change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func
from sqlmodel import select
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, RequestData

import bot.channels.telegram_flood as telegram_flood
from bot.app import Sanad
from bot.channels.telegram import build_telegram, polling
from bot.channels.telegram_flood import PRESSES_PER_CHAT
from bot.channels.webhook import SECRET_HEADER, create_app
from storage.db import transaction
from storage.models import Person, ProcessedUpdate, Report
from tests.fakes.telegram_bot_api import FakeBotApi, FakeRequest
from tests.harness import Telegram, invite, plain, registered, report_recycling

FLOOD = 250


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until `condition` holds (looked at every 50 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def test_a_chat_flooding_old_buttons_is_bounded_and_others_are_answered(
    sanad: Sanad,
) -> None:
    api = FakeBotApi()
    noisy = api.user(510, first_name="Noisy", language_code="en")
    calm = api.user(511, first_name="Calm", language_code="fr")

    async def said_to(chat: int, words: str) -> None:
        await api.wait_for(lambda m: m.chat_id == chat and words in plain(m.text or ""), 10)

    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    async with polling(app, timeout=1):
        for person in (noisy, calm):
            person.command("start", invite(sanad, "bh_rural_girls"))
        await said_to(510, "Choose your language")
        await said_to(511, "Choisissez votre langue")
    language_question = next(m for m in api.messages_to(510) if m.reply_markup)
    [english] = [data for text, data in api.buttons(language_question) if "English" in text]
    before = len(api.messages_to(510))
    calm_before = len(api.messages_to(511))

    for _ in range(FLOOD // 2):  # the noisy chat presses an old button, again and again ...
        noisy.press(english, language_question)
    calm.command("help")  # ... while someone else asks for help
    for _ in range(FLOOD // 2):
        noisy.press(english, language_question)

    app = build_telegram(sanad, request=api.request(), get_updates_request=api.request())
    async with polling(app, timeout=1):
        await api.wait_for(lambda m: len(api.messages_to(511)) > calm_before, 20)  # answered
        await until(lambda: not api.pending_updates and not telegram_flood.answering_drops())

    waits = [a for a in api.callback_answers if "Too many presses" in str(a.get("text", ""))]
    applied = len(api.callback_answers) - len(waits)
    batches = -(-(FLOOD + 1) // 100)  # getUpdates gives at most 100 updates at a time
    assert 1 <= len(waits) <= batches, "a short wait, once a batch, for the dropped presses"
    assert applied <= PRESSES_PER_CHAT * batches, "the chat's presses are bounded"
    assert len(api.messages_to(510)) - before <= applied, "a dropped press sends nothing"


# --- webhook mode -------------------------------------------------------------------------

SECRET = "flood-webhook-SECRET"
NOISY, CALM = 520, 521
WEBHOOK_FLOOD = 300


class SlowForOneChat(FakeRequest):
    """The fake Bot API, except that what `held` picks waits until `released` is set: Telegram
    taking its time with one chat's answers, so that its updates stay pending in the bot."""

    def __init__(self, api: FakeBotApi, held: Callable[[str, dict[str, Any]], bool]) -> None:
        super().__init__(api)
        self.held = held
        self.released = asyncio.Event()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        params = request_data.parameters if request_data is not None else {}
        if self.held(url.rsplit("/", 1)[-1], params):
            await self.released.wait()
        return await super().do_request(url, method, request_data)


class ThroughWebhook(Telegram):
    """People's updates posted to the webhook, as Telegram posts them."""

    def __init__(self, sanad: Sanad, api: FakeBotApi, client: httpx.AsyncClient) -> None:
        super().__init__(sanad, api)
        self.client = client
        self.answered: list[int] = []  # the webhook's status codes

    async def deliver(self, update: dict[str, Any]) -> None:
        response = await self.client.post("/telegram", json=update, headers={SECRET_HEADER: SECRET})
        self.answered.append(response.status_code)
        assert response.status_code == 200


def reports_of(sanad: Sanad, chat: int) -> int:
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.address == str(chat))).one()
        reports = select(func.count()).select_from(Report).where(Report.person_id == person.id)
        return int(session.exec(reports).one())


def applied_updates(sanad: Sanad) -> int:
    with transaction(sanad.engine) as session:
        return int(session.exec(select(func.count()).select_from(ProcessedUpdate)).one())


async def test_over_the_webhook_a_chat_flooding_old_buttons_holds_up_nobody(sanad: Sanad) -> None:
    sanad = Sanad(
        sanad.settings.model_copy(update={"telegram_webhook_secret": SecretStr(SECRET)}),
        sanad.engine,
        sanad.dispatcher,
    )
    api = FakeBotApi()
    flood_presses: set[str] = set()

    def noisy_answers(method: str, params: dict[str, Any]) -> bool:
        """What the bot sends about the noisy chat's own updates (not the short "wait")."""
        if method == "answerCallbackQuery":
            return params.get("callback_query_id") in flood_presses and not params.get("text")
        return bool(flood_presses) and params.get("chat_id") == NOISY

    request = SlowForOneChat(api, noisy_answers)
    application = build_telegram(sanad, request=request, get_updates_request=request)
    app = create_app(sanad, application)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sanad") as client:
            telegram = ThroughWebhook(sanad, api, client)
            noisy = await registered(telegram, "bh_rural_girls", NOISY, "Noisy")
            calm = await registered(telegram, "bh_rural_girls", CALM, "Calm")
            before, posted_before = applied_updates(sanad), len(telegram.answered)
            language_question = next(m for m in api.messages_to(NOISY) if m.reply_markup)
            [english] = [d for text, d in api.buttons(language_question) if "English" in text]

            # The noisy chat presses an old button hundreds of times at once; Telegram is slow
            # to take the bot's answers to it, so its first presses stay pending ...
            presses = [noisy.user.press(english, language_question) for _ in range(WEBHOOK_FLOOD)]
            flood_presses.update(str(p["callback_query"]["id"]) for p in presses)
            flood = [asyncio.create_task(telegram.deliver(press)) for press in presses]
            await until(lambda: sum(not task.done() for task in flood) <= PRESSES_PER_CHAT)
            # ... and then writes: a message is never dropped, it waits its turn ...
            asking = asyncio.create_task(noisy.says("/help"))
            # ... while someone else fills a whole report, answered as if nothing happened.
            await report_recycling(calm)
            assert "REC-1" in calm.everything

            request.released.set()
            await asyncio.gather(*flood, asking)
            await until(lambda: not telegram_flood.answering_drops())

    assert set(telegram.answered) == {200}
    waits = [a for a in api.callback_answers if "Too many presses" in str(a.get("text", ""))]
    assert len(waits) == 1, "one short answer for the whole burst"
    kept = [
        a
        for a in api.callback_answers
        if a["callback_query_id"] in flood_presses and a not in waits
    ]
    assert len(kept) <= PRESSES_PER_CHAT, "presses beyond the bound were dropped"
    assert any("choose a report to fill in" in text for text in noisy.texts), "/help answered"
    assert reports_of(sanad, CALM) == 1, "stored once"
    posted = len(telegram.answered) - posted_before
    dropped = WEBHOOK_FLOOD - len(kept)
    assert applied_updates(sanad) - before == posted - dropped, "each update applied once"
