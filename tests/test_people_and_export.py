"""Running the network from the chat: /invite, /people (deactivate, reactivate) and /export."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from openpyxl import load_workbook
from sqlmodel import select

from bot.app import Sanad
from storage.db import transaction
from storage.models import Invite, Organization, Person, Report
from storage.reports import add_report
from tests.conftest import Clock
from tests.harness import Person as Chat
from tests.harness import Telegram, invite, plain, report_recycling

ARABIC = re.compile("[\u0600-\u06ff]")


async def join(
    telegram: Telegram, user_id: int, name: str, code: str, registered_as: str = ""
) -> Chat:
    """Someone opens the invitation link (/start CODE) and chooses English."""
    person = telegram.person(user_id, name, language="en")
    await person.says(f"/start {code}")
    assert "Welcome to Sanad" in person.everything
    assert f"You are registered as {registered_as}" in person.everything
    await person.taps("English")
    return person


def code_in(text: str) -> str:
    found = re.search(r"Code: ([A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})", text)
    assert found, text
    return found.group(1).replace("-", "")  # as the link carries it


async def test_invite_people_deactivate_and_export(sanad: Sanad, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday 2 December, Bahrain
    async with Telegram(sanad) as telegram:
        admin = await join(telegram, 801, "Nadia", invite(sanad, "arab_network", "admin"))

        # The admin invites the coordinator of the Bahrain group.
        await admin.says("/invite")
        assert "Egypt development group" in admin.buttons
        await admin.taps("Bahrain development group")
        await admin.taps("Bahrain Young Ladies Association")
        # The supportive organization takes coordinators: the role follows from it.
        assert "Who do you invite as coordinator of Bahrain Young Ladies" in admin.last
        await admin.taps("One invitation")
        details = admin.texts[0]
        assert "Invitation for a coordinator of Bahrain Young Ladies Association." in details
        code = code_in(details)
        assert f"https://t.me/sanad_test_bot?start={code}" in details
        assert "Valid for 7 days" in details
        assert "Valid for 7 days, until 9 Dec 2026 11:00" in details  # Bahrain time
        to_forward = details.split("To forward to the person you invite:")[1]
        assert f"https://t.me/sanad_test_bot?start={code}" in to_forward

        coordinator = await join(
            telegram, 802, "Huda", code, "coordinator of Bahrain Young Ladies Association"
        )

        # The coordinator invites field workers, only to the partners of their own group.
        await coordinator.says("/invite")
        assert coordinator.buttons == [
            "Rural Girls Renaissance Association",
            "Sitra Women's Advancement Association",
            "Hamad Women's Association",
            "Open invitations",
            "Cancel",
        ]
        await coordinator.taps("Sitra Women's Advancement Association")
        await coordinator.taps("One invitation")
        assert "Invitation for a field worker of Sitra" in coordinator.texts[0]
        worker = await join(
            telegram,
            803,
            "Amal",
            code_in(coordinator.texts[0]),
            "field worker of Sitra Women's Advancement Association",
        )

        # The admin's button (another group, any role) replayed in the coordinator's chat,
        # and the coordinator's own /invite button after she moved on: both do nothing.
        await admin.says("/invite")
        egypt = next(
            data
            for text, data in telegram.api.buttons(admin.keyboard_message)
            if text == "Egypt development group"
        )
        await coordinator.says("/invite")
        old_invite = coordinator.keyboard_message
        await coordinator._do(coordinator.user.press(egypt, old_invite))
        assert "no longer works" in coordinator.texts[0]
        rural = next(
            data
            for text, data in telegram.api.buttons(old_invite)
            if text.startswith("Rural Girls")
        )
        await coordinator._do(coordinator.user.press(rural, old_invite))
        assert "no longer works" in coordinator.texts[0]
        assert "Invitation" not in coordinator.everything
        with transaction(sanad.engine) as session:
            roles = session.exec(
                select(Invite.role, Organization.key).join(
                    Organization, Organization.id == Invite.organization_id
                )
            ).all()
        assert ("coordinator", "bh_sitra_women") not in roles
        assert not [key for _, key in roles if key.startswith("eg_")]

        # A worker may not run any of it.
        for command in ("/invite", "/people", "/export"):
            await worker.says(command)
            assert "is not for your role" in worker.last

        await report_recycling(worker, "week of 22 Nov")
        # A report of another group, which the Bahrain coordinator never sees.
        outsider = await join(telegram, 804, "Samir", invite(sanad, "eg_partner_1"))
        with transaction(sanad.engine) as session:
            samir = session.exec(select(Person).where(Person.address == "804")).one()
            egypt_org = session.get(Organization, samir.organization_id)
            assert egypt_org is not None and samir.id is not None
            add_report(
                session,
                form_id="recycling",
                prefix="RC",
                group_id=egypt_org.group_id,
                organization_id=egypt_org.id,
                person_id=samir.id,
                period=None,
                answers={"paper_kg": 999},
                now=clock.now,
            )
        assert outsider.texts

        # /people: the group's people with their role, language and last report.
        await coordinator.says("/people")
        listing = coordinator.texts[0]
        assert "Bahrain development group: 2 people" in listing
        assert (
            "Amal · field worker · Sitra Women's Advancement Association · English · "
            "last report 2 Dec 2026" in listing
        )
        assert "Huda · coordinator" in listing and "Samir" not in listing
        assert "Nadia" not in listing
        assert coordinator.buttons == ["2. Amal", "Close"]  # only workers, not herself

        # Deactivate the worker: she can no longer report, her report stays.
        await coordinator.taps("2. Amal")
        await coordinator.taps("Deactivate")
        assert "no longer be able to report" in coordinator.last
        await coordinator.taps("Deactivate")
        assert "Amal is deactivated" in coordinator.everything
        assert "Amal · field worker" in coordinator.everything
        assert "inactive" in coordinator.everything

        await worker.says("/recycling")
        assert "You are not registered" in worker.last
        await worker.says(f"/start {invite(sanad, 'bh_sitra_women')}")
        assert "has been deactivated" in worker.last
        with transaction(sanad.engine) as session:
            amal = session.exec(select(Person).where(Person.address == "803")).one()
            assert not amal.active
            assert len(session.exec(select(Report).where(Report.person_id == amal.id)).all()) == 1

        # /export: an XLSX file of the group's reports this month, in English.
        await coordinator.says("/export")
        await coordinator.taps("All forms")
        await coordinator.taps("This month")
        assert coordinator.buttons == ["XLSX (Excel)", "Cancel"]  # CSV holds one form
        await coordinator.taps("XLSX")
        document = next(m for m in coordinator.answers if m.method == "sendDocument")
        assert document.file_bytes is not None
        assert "1 report in this file." in plain(document.text or "")
        workbook = load_workbook(io.BytesIO(document.file_bytes))
        sheet = workbook["Recycling output"]
        assert not sheet.sheet_view.rightToLeft
        rows = list(sheet.iter_rows(values_only=True))
        headers = [str(h) for h in rows[0]]
        assert headers[:5] == ["Reference", "Group", "Currency", "Association", "Person"]
        assert not any(ARABIC.search(h) for h in headers)
        assert len(rows) == 2
        row = dict(zip(headers, rows[1], strict=True))
        assert row["Group"] == "Bahrain development group"
        assert row["Currency"] == "BHD"
        assert row["Association"] == "Sitra Women's Advancement Association"
        numbers = [value for value in rows[1] if isinstance(value, int | float)]
        assert 100 in numbers and 999 not in numbers

        # ... and a CSV of one form.
        await coordinator.says("/export")
        await coordinator.taps("Recycling output")
        await coordinator.taps("Everything")
        await coordinator.taps("CSV")
        document = next(m for m in coordinator.answers if m.method == "sendDocument")
        assert document.file_bytes is not None
        table = list(csv.reader(io.StringIO(document.file_bytes.decode("utf-8-sig"))))
        assert table[0][:2] == ["Reference", "Group"] and len(table) == 2
        assert table[1][1] == "Bahrain development group"
        exports = sanad.settings.data_dir / "exports"
        assert list(exports.iterdir()) == [], "a sent export is not kept on the server"

        # Reactivated, she reports again.
        await coordinator.says("/people")
        await coordinator.taps("2. Amal")
        await coordinator.taps("Reactivate")
        await coordinator.taps("Reactivate")
        assert "Amal is active again" in coordinator.everything
        await worker.says("/recycling")
        assert "not registered" not in worker.everything


async def test_admin_exports_everything_and_manages_coordinators(
    sanad: Sanad, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    async with Telegram(sanad) as telegram:
        admin = await join(telegram, 901, "Nadia", invite(sanad, "arab_network", "admin"))
        coordinator = await join(
            telegram, 902, "Huda", invite(sanad, "bh_young_ladies", "coordinator")
        )
        # The coordinator may not deactivate anyone outside her group, nor other coordinators.
        other = await join(telegram, 903, "Karim", invite(sanad, "eg_supportive", "coordinator"))
        await other.says("/people")
        assert "Huda" not in other.everything and other.buttons == ["Close"]

        await admin.says("/people")
        await admin.taps("Bahrain development group")
        assert "Huda · coordinator" in admin.texts[0]
        await admin.taps("1. Huda")
        await admin.taps("Deactivate")
        await admin.taps("Deactivate")
        assert "Huda is deactivated" in admin.everything
        await coordinator.says("/people")
        assert "You are not registered" in coordinator.last

        await admin.says("/export")
        await admin.taps("All groups")
        await admin.taps("All forms")
        await admin.taps("Everything")
        await admin.taps("XLSX")
        document = next(m for m in admin.answers if m.method == "sendDocument")
        assert document.file_bytes is not None and "0 reports in this file." in plain(
            document.text or ""
        )
        assert load_workbook(io.BytesIO(document.file_bytes)).sheetnames


async def test_a_long_list_comes_in_pages(sanad: Sanad, clock: Clock) -> None:
    async with Telegram(sanad) as telegram:
        coordinator = await join(
            telegram, 950, "Huda", invite(sanad, "bh_young_ladies", "coordinator")
        )
        with transaction(sanad.engine) as session:
            sitra = session.exec(
                select(Organization).where(Organization.key == "bh_sitra_women")
            ).one()
            assert sitra.id is not None
            for number in range(1, 13):
                session.add(
                    Person(
                        channel="telegram",
                        address=f"9{number:02}",
                        display_name=f"Worker {number:02}",
                        role="worker",
                        organization_id=sitra.id,
                        reachable=number != 5,
                    )
                )
        await coordinator.says("/people")
        assert "Bahrain development group: 13 people (page 1 of 2)" in coordinator.last
        assert (
            "Worker 05 · field worker · Sitra Women's Advancement Association · "
            "language not chosen · no report yet · unreachable" in coordinator.last
        )
        assert "Worker 10" not in coordinator.last
        await coordinator.taps("Next")
        assert "(page 2 of 2)" in coordinator.last and "Worker 12" in coordinator.last
        assert "Previous" in coordinator.buttons and "Next" not in coordinator.buttons
