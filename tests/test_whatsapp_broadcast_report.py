"""A broadcast to people on Telegram and WhatsApp: its report says, per channel, how many
messages were sent, delivered, read and failed. WhatsApp's receipts come back as signed status
webhooks from the fake Cloud API over HTTP; Telegram sends none, so its line says sent and
failed only. In English, Arabic and French, with their plurals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.app import Sanad
from bot.channels.base import by_channel
from bot.channels.telegram_delivery import telegram_deliver
from outbox.sender import Sender
from storage import broadcasts
from storage.db import transaction
from storage.models import Person
from storage.people import member_by_id, set_language
from tests.conftest import Clock
from tests.harness import Telegram, plain
from tests.test_broadcast import join, report_text
from tests.test_whatsapp_outbox import Sleeper, people
from tests.whatsapp_harness import WhatsAppChat

EXPECTED = {
    "en": [
        "By channel:",
        "• Telegram: 1 message; sent: 1, failed: 0",
        "• WhatsApp: 4 messages; sent: 3, delivered: 3, read: 1, failed: 1",
    ],
    "ar": [
        "حسب القناة:",
        "• تيليجرام: رسالة واحدة؛ أُرسلت: ١، فشلت: ٠",
        "• واتساب: ٤ رسائل؛ أُرسلت: ٣، وصلت: ٣، قُرئت: ١، فشلت: ١",
    ],
    "fr": [
        "Par canal\u00a0:",
        "• Telegram\u00a0: 1 message\u00a0; envoyés\u00a0: 1, échecs\u00a0: 0",
        "• WhatsApp\u00a0: 4 messages\u00a0; envoyés\u00a0: 3, remis\u00a0: 3, lus\u00a0: 1, "
        "échecs\u00a0: 1",
    ],
}


@pytest.mark.parametrize("language", ["en", "ar", "fr"])
async def test_the_broadcast_report_counts_each_channel(
    sanad: Sanad, clock: Clock, language: str
) -> None:
    async with Telegram(sanad) as telegram, WhatsAppChat(sanad) as wa:
        chat = await join(telegram, "arab_network", "admin", 801)
        await join(telegram, "bh_sitra_women", "worker", 802)
        phones = people(sanad, clock, 4)
        for phone in phones:
            wa.api.last_inbound[phone] = (clock() - timedelta(hours=1)).timestamp()
        wa.api.not_on_whatsapp.add(phones[3])
        with transaction(sanad.engine) as session:
            admin = session.exec(select(Person).where(Person.address == "801")).one()
            assert admin.id is not None
            broadcast = broadcasts.create(
                session,
                created_by=admin.id,
                texts={broadcasts.COMMON: "Meeting on Thursday at 10"},
                photo=None,
                audience=broadcasts.Audience(roles=["worker"]),
                now=clock(),
            )
            assert broadcast.id is not None and broadcast.recipients == 5
        deliver = by_channel(
            {"telegram": telegram_deliver(telegram.app.bot), "whatsapp": wa.whatsapp.deliver}
        )
        sender = Sender(sanad.engine, deliver, clock=clock, sleep=Sleeper(clock), batch=1)
        assert await sender.run_once() == 1  # the Telegram worker (the first by person id)
        wa.api.read_receipts = True  # the first WhatsApp recipient reads it at once
        assert await sender.run_once() == 1
        wa.api.read_receipts = False
        while await sender.run_once():
            pass
        await wa.api.push()  # sent, delivered, read; not on WhatsApp: failed
        with transaction(sanad.engine) as session:  # the report is in the admin's language
            connection = session.connection()
            set_language(connection, member_by_id(connection, admin.id)[0], language)
        report = plain(report_text(sanad, clock, broadcast.id))
        assert report.splitlines()[-3:] == EXPECTED[language], report
        await chat.says("/broadcasts")  # the list shows the same lines
        assert "\n".join(EXPECTED[language]) in plain(chat.everything)
