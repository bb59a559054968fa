"""Who may do what: every command for the unregistered, a worker, a coordinator, an admin,
and a deactivated worker; old buttons replayed do nothing but say so."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.app import Sanad
from handlers.permissions import PERMISSIONS, UNREGISTERED
from storage.db import transaction
from storage.models import Person, Report
from tests.harness import Telegram, invite

COMMANDS = sorted(PERMISSIONS) + ["checkin", "beneficiaries", "recycling"]
NOT_REGISTERED = "not registered"


@pytest.mark.parametrize("command", COMMANDS)
async def test_the_unregistered_can_only_register_and_read_help(sanad: Sanad, command: str) -> None:
    async with Telegram(sanad) as telegram:
        stranger = telegram.person(501, "Stranger", language="en")
        await stranger.says(f"/{command}")
        allowed = UNREGISTERED in PERMISSIONS.get(command, frozenset())
        assert (NOT_REGISTERED in stranger.everything) is not allowed, stranger.everything


@pytest.mark.parametrize(
    ("org", "role", "fills_forms"),
    [
        ("bh_sitra_women", "worker", True),
        ("bh_young_ladies", "coordinator", False),
        ("arab_network", "admin", False),
    ],
)
async def test_field_forms_are_for_workers_of_partner_associations(
    sanad: Sanad, org: str, role: str, fills_forms: bool
) -> None:
    async with Telegram(sanad) as telegram:
        person = telegram.person(502, "Someone", language="en")
        await person.says(f"/start {invite(sanad, org, role)}")
        await person.taps("English")
        assert ("Recycling output" in person.buttons) is fills_forms
        await person.says("/recycling")
        assert ("not for your role" in person.everything) is not fills_forms
        for command in ("myreports", "help", "language"):
            await person.says(f"/{command}")
            assert NOT_REGISTERED not in person.everything


async def test_a_deactivated_worker_can_no_longer_report_and_their_reports_stay(
    sanad: Sanad,
) -> None:
    async with Telegram(sanad) as telegram:
        worker = telegram.person(503, "Huda", language="en")
        await worker.says(f"/start {invite(sanad, 'bh_sitra_women')}")
        await worker.taps("English")
        await worker.says("/checkin")
        for step in ("Today", "Meeting"):
            await worker.taps(step)
        for typed in ("Hall", "12"):
            await worker.says(typed)
        await worker.taps("No")
        await worker.taps("Skip")
        await worker.taps("Confirm and send")
        with transaction(sanad.engine) as session:
            person = session.exec(select(Person).where(Person.address == "503")).one()
            person.active = False
            session.add(person)
        await worker.says("/checkin")
        assert NOT_REGISTERED in worker.last
    with transaction(sanad.engine) as session:
        assert len(session.exec(select(Report)).all()) == 1


async def test_a_button_from_an_earlier_message_does_nothing_but_say_so(sanad: Sanad) -> None:
    async with Telegram(sanad) as telegram:
        worker = telegram.person(504, "Reem", language="en")
        await worker.says(f"/start {invite(sanad, 'bh_sitra_women')}")
        await worker.taps("English")
        menu = worker.keyboard_message
        await worker.taps("Recycling output")
        await worker.taps("week of 29 Nov")
        old = dict(telegram.api.buttons(menu))["Field check-in"]
        await worker._do(worker.user.press(old, menu))
        assert "no longer works" in worker.everything
        assert "answer the last question above" in worker.last, "pointed to the open question"
        await worker.says("12.5")
        assert "Aluminium collected" in worker.last, "the old button changed nothing"
