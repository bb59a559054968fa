"""One chat pressing old buttons by the thousand slows nobody else down: each chat's presses
in a fetched batch are bounded, and the extra ones get a short "wait" and change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import bot.channels.telegram_flood as telegram_flood
from bot.app import Sanad
from bot.channels.telegram import build_application, polling
from bot.channels.telegram_flood import PRESSES_PER_CHAT
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.harness import invite, plain

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

    app = build_application(sanad, request=api.request(), get_updates_request=api.request())
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

    app = build_application(sanad, request=api.request(), get_updates_request=api.request())
    async with polling(app, timeout=1):
        await api.wait_for(lambda m: len(api.messages_to(511)) > calm_before, 20)  # answered
        await until(lambda: not api.pending_updates and not telegram_flood.answering_drops())

    waits = [a for a in api.callback_answers if "Too many presses" in str(a.get("text", ""))]
    applied = len(api.callback_answers) - len(waits)
    batches = -(-(FLOOD + 1) // 100)  # getUpdates gives at most 100 updates at a time
    assert 1 <= len(waits) <= batches, "a short wait, once a batch, for the dropped presses"
    assert applied <= PRESSES_PER_CHAT * batches, "the chat's presses are bounded"
    assert len(api.messages_to(510)) - before <= applied, "a dropped press sends nothing"
