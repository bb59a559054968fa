"""Photos across channels, over HTTP: a picture an admin sent on Telegram (Telegram keeps it, a
file id) reaches WhatsApp people as an image, fetched from the Bot API once and uploaded to the
Cloud API once for everyone; a picture sent on WhatsApp (a file Sanad keeps) reaches Telegram
people by upload."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.app import Sanad
from bot.channels.base import by_channel
from bot.channels.telegram_delivery import telegram_deliver
from outbox.intents import Intent
from outbox.sender import Sender
from storage import outbox
from storage.db import transaction
from storage.deliveries import seen_inbound
from storage.models import Organization, OutboxMessage, Person
from tests.conftest import Clock
from tests.fakes.telegram_bot_api import FakeBotApi
from tests.fakes.telegram_bot_server import serving
from tests.harness import Telegram, invite
from tests.test_broadcast import FIRST_CHAT, add_people, join
from tests.test_outbox import Sleeper
from tests.test_whatsapp_channel import JPEG
from tests.whatsapp_harness import WhatsAppChat

WHATSAPP_PEOPLE = 60


def whatsapp_workers(sanad: Sanad, wa: WhatsAppChat, clock: Clock, count: int) -> list[str]:
    """`count` workers of bh_rural_girls on WhatsApp, who wrote an hour ago."""
    addresses = [f"9733500{n:04d}" for n in range(count)]
    an_hour_ago = clock() - timedelta(hours=1)
    with transaction(sanad.engine) as session:
        organization = session.exec(
            select(Organization).where(Organization.key == "bh_rural_girls")
        ).one()
        for address in addresses:
            session.add(
                Person(
                    channel="whatsapp",
                    address=address,
                    role="worker",
                    language="en",
                    organization_id=organization.id or 0,
                )
            )
            session.flush()
            seen_inbound(session, "whatsapp", address, an_hour_ago)
            wa.api.last_inbound[address] = an_hour_ago.timestamp()
    return addresses


def with_telegram_at(sanad: Sanad, bot_api_url: str) -> Sanad:
    settings = sanad.settings.model_copy(update={"telegram_base_url": bot_api_url})
    return Sanad(settings, sanad.engine, sanad.dispatcher)


async def send_everything(sender: Sender, sanad: Sanad) -> None:
    for _ in range(100):
        await sender.run_once()
        with transaction(sanad.engine) as session:
            waiting = session.exec(
                select(OutboxMessage).where(OutboxMessage.status.in_(["pending", "sending"]))  # type: ignore[attr-defined]
            ).all()
        if not waiting:
            return
    raise AssertionError("the outbox did not empty")


async def test_a_photo_broadcast_from_telegram_reaches_whatsapp_as_one_uploaded_image(
    sanad: Sanad, clock: Clock
) -> None:
    bot_api = FakeBotApi()
    async with serving(bot_api) as bot_api_url, Telegram(sanad, bot_api) as telegram:
        coordinator = await join(telegram, "bh_young_ladies", "coordinator", 841)
        add_people(sanad, "bh_rural_girls", 1)  # one worker on Telegram
        async with WhatsAppChat(with_telegram_at(sanad, bot_api_url)) as wa:
            phones = whatsapp_workers(sanad, wa, clock, WHATSAPP_PEOPLE)
            await coordinator.says("/broadcast")
            await coordinator._do(
                coordinator.user.photo("AgACposter", JPEG, caption="Training on Thursday")
            )
            await coordinator.taps("Same text for every language")
            await coordinator.taps("A role")
            await coordinator.taps("workers")
            await coordinator.taps("Preview")
            assert f"This message will go to {WHATSAPP_PEOPLE + 1} people" in coordinator.last
            await coordinator.taps("Confirm and send")
            deliver = by_channel(
                {"telegram": telegram_deliver(telegram.app.bot), "whatsapp": wa.whatsapp.deliver}
            )
            sender = Sender(sanad.engine, deliver, clock=clock, sleep=Sleeper(clock))
            await send_everything(sender, sanad)
            images = [m for m in wa.api.sent if m.type == "image"]
            assert sorted(m.to for m in images) == phones
            assert {m.payload["image"].get("caption") for m in images} == {"Training on Thursday"}
            [media_id] = {m.payload["image"]["id"] for m in images}
            assert wa.api.media[media_id] == (JPEG, "image/jpeg")
            assert wa.api.uploads == [("image/jpeg", len(JPEG))]  # once for everyone
            assert wa.api.refused == []
    fetched = [params for method, params in bot_api.calls if method == "getFile"]
    assert [params["file_id"] for params in fetched] == ["AgACposter"]  # fetched once
    on_telegram = bot_api.last_to(FIRST_CHAT)
    assert (on_telegram.method, on_telegram.file_id) == ("sendPhoto", "AgACposter")
    kept = list((sanad.settings.media_dir / "telegram").iterdir())
    assert [path.read_bytes() for path in kept] == [JPEG]


async def an_old_photo_goes_as_its_text(sanad: Sanad, clock: Clock, wa: WhatsAppChat) -> None:
    [phone] = whatsapp_workers(sanad, wa, clock, 1)
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.address == phone)).one()
        outbox.enqueue(
            session,
            person_id=person.id or 0,
            kind="broadcast",
            dedupe_key="broadcast:old",
            intent=Intent.plain("Training on Thursday", photo="file-id:AgACold"),
            now=clock(),
        )
    sender = Sender(sanad.engine, wa.whatsapp.deliver, clock=clock, sleep=Sleeper(clock))
    await send_everything(sender, sanad)
    [sent] = wa.api.to(phone)
    assert (sent.type, sent.text) == ("text", "Training on Thursday")
    assert wa.api.uploads == []


async def test_a_photo_kept_by_telegram_without_telegram_here_goes_as_its_text(
    sanad: Sanad, clock: Clock
) -> None:
    """A WhatsApp-only installation cannot fetch a Telegram file id: the text goes alone."""
    no_telegram = sanad.settings.model_copy(update={"telegram_bot_token": None})
    async with WhatsAppChat(Sanad(no_telegram, sanad.engine, sanad.dispatcher)) as wa:
        await an_old_photo_goes_as_its_text(sanad, clock, wa)


async def test_a_photo_telegram_no_longer_knows_goes_as_its_text(
    sanad: Sanad, clock: Clock
) -> None:
    # The Bot API answers getFile with "invalid file_id".
    async with (
        serving(FakeBotApi()) as bot_api_url,
        WhatsAppChat(with_telegram_at(sanad, bot_api_url)) as wa,
    ):
        await an_old_photo_goes_as_its_text(sanad, clock, wa)


async def test_a_photo_broadcast_from_whatsapp_reaches_telegram_by_upload(
    sanad: Sanad, clock: Clock
) -> None:
    bot_api = FakeBotApi()
    async with (
        serving(bot_api) as bot_api_url,
        Telegram(sanad, bot_api) as telegram,
        WhatsAppChat(with_telegram_at(sanad, bot_api_url)) as wa,
    ):
        coordinator = wa.person("97333000031", "Huda")
        await coordinator.says(f"start {invite(sanad, 'bh_young_ladies')}")
        await coordinator.taps("English")
        add_people(sanad, "bh_rural_girls", 2)
        await coordinator.says("/broadcast")
        await coordinator._do(coordinator.user.image, JPEG, "Clean-up day on Saturday")
        await coordinator.taps("Same text for every language")
        await coordinator.taps("A role")
        await coordinator.taps("workers")
        await coordinator.taps("Preview")
        assert "This message will go to 2 people" in coordinator.last
        await coordinator.taps("Confirm and send")
        deliver = by_channel(
            {"telegram": telegram_deliver(telegram.app.bot), "whatsapp": wa.whatsapp.deliver}
        )
        sender = Sender(sanad.engine, deliver, clock=clock, sleep=Sleeper(clock))
        await send_everything(sender, sanad)
    first, second = bot_api.last_to(FIRST_CHAT), bot_api.last_to(FIRST_CHAT + 1)
    for sent in (first, second):
        assert sent.method == "sendPhoto"
        assert sent.params.get("caption") == "Clean-up day on Saturday"
    assert first.file_bytes == JPEG  # uploaded: Telegram has no id for a WhatsApp photo
    assert second.file_bytes is None  # then sent by the file id Telegram gave it
    assert second.file_id and bot_api.file_bytes(second.file_id) == JPEG
