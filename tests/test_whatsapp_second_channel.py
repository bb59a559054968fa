"""One person on two channels: `python -m bot invite --person P --channel whatsapp|telegram`
makes a code that, sent from the other channel, adds that address to the same person. Their
reports, role and language stay; the link printed is the channel's.

The person registers and reports on Telegram (the real Telegram channel against the fake Bot
API), the code comes from the command line, and they send it on WhatsApp (the fake Cloud API
posting signed webhooks to Sanad's webhook over HTTP)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from sqlmodel import select

from bot.app import Sanad
from storage.db import transaction
from storage.models import Person
from storage.people import addresses_of
from tests.harness import Telegram, plain, registered, report_recycling
from tests.test_cli import Ran, Shell, shell  # noqa: F401  (the fixture)
from tests.whatsapp_harness import WhatsAppChat

PHONE = "212600000042"


def the_person(sanad: Sanad) -> Person:
    with transaction(sanad.engine) as session:
        [person] = session.exec(select(Person)).all()
        session.expunge(person)
        return person


def link_in(ran: Ran) -> str:
    assert ran.code == 0, ran.err
    [line] = [line for line in ran.out.splitlines() if line.startswith("link: ")]
    return line.removeprefix("link: ")


async def test_a_telegram_worker_adds_whatsapp_and_keeps_reports_role_and_language(
    sanad: Sanad,
    database_url: str,
    shell: Shell,  # noqa: F811
) -> None:
    shell.export("DATABASE_URL", database_url)
    shell.export("WHATSAPP_NUMBER", "+212 5000 0000")
    shell.export("TELEGRAM_BOT_USERNAME", "SanadBot")
    async with Telegram(sanad) as telegram:
        fatima = await registered(telegram, "bh_sitra_women", 801, "Fatima", language="en")
        await report_recycling(fatima)
    before = the_person(sanad)

    link = link_in(shell.sanad("invite", "--person", str(before.id), "--channel", "whatsapp"))
    assert link.startswith("https://wa.me/21250000000?text=start%20")
    [typed] = parse_qs(urlparse(link).query)["text"]  # what WhatsApp puts in the chat

    async with WhatsAppChat(sanad) as wa:
        phone = wa.person(PHONE, "Fatima M.")
        await phone.says(typed)
        assert "Welcome back, Fatima. You can use Sanad here too" in phone.everything
        assert "Choose your language." not in phone.everything  # English, as before
        assert any(title.startswith("Recycling") for title in phone.titles)  # the menu
        await phone.says("/myreports")
        assert "REC-1" in plain(phone.everything)
        assert wa.api.refused == []

    after = the_person(sanad)
    assert (after.id, after.role, after.language, after.organization_id) == (
        before.id,
        before.role,
        before.language,
        before.organization_id,
    )
    assert (after.channel, after.address) == ("whatsapp", PHONE)  # reached where they wrote
    with transaction(sanad.engine) as session:
        places = [(a.channel, a.address) for a in addresses_of(session, before.id or 0)]
    assert places == [("telegram", "801"), ("whatsapp", PHONE)]

    again = shell.sanad("invite", "--person", PHONE, "--channel", "whatsapp")
    assert again.code == 2 and "already reached on whatsapp" in again.err


async def test_a_whatsapp_worker_is_given_a_telegram_link(
    sanad: Sanad,
    database_url: str,
    shell: Shell,  # noqa: F811
) -> None:
    shell.export("DATABASE_URL", database_url)
    shell.export("TELEGRAM_BOT_USERNAME", "SanadBot")
    shell.export("WHATSAPP_NUMBER", "21250000000")
    async with WhatsAppChat(sanad) as wa:
        amina = wa.person(PHONE, "Amina")
        code = link_in(shell.sanad("invite", "--org", "bh_rural_girls", "--channel", "whatsapp"))
        await amina.says(code.split("text=")[1].replace("%20", " "))
        await amina.taps("Français")
    link = link_in(shell.sanad("invite", "--person", PHONE, "--channel", "telegram"))
    assert link.startswith("https://t.me/SanadBot?start=")
    async with Telegram(sanad) as telegram:
        laptop = telegram.person(902, "Amina", language="en")
        await laptop.says("/start " + link.split("start=")[1])
        assert "Bon retour, Amina." in plain(laptop.everything)
    person = the_person(sanad)
    assert (person.language, person.channel, person.address) == ("fr", "telegram", "902")

    unknown = shell.sanad("invite", "--person", "nobody", "--channel", "telegram")
    assert unknown.code == 2 and "no person 'nobody'" in unknown.err
