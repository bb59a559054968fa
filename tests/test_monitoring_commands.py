"""Coordinators on their phones: /status, /digest and /remind; workers see their own status."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from bot.app import Sanad
from outbox.intents import reply_for
from storage.db import transaction
from storage.models import OutboxMessage
from tests.conftest import Clock
from tests.harness import Person, Telegram, invite, plain, report_recycling


async def join(telegram: Telegram, org: str, role: str, user_id: int) -> Person:
    person = telegram.person(user_id, f"{role}{user_id}", language="en")
    await person.says(f"/start {invite(telegram.sanad, org, role)}")
    await person.taps("English")
    return person


async def test_status_digest_and_remind(sanad: Sanad, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # Wednesday 2 December, Bahrain
    async with Telegram(sanad) as telegram:
        sitra = await join(telegram, "bh_sitra_women", "worker", 701)
        hamad = await join(telegram, "bh_hamad_women", "worker", 702)
        coordinator = await join(telegram, "bh_young_ladies", "coordinator", 703)
        await report_recycling(sitra, "week of 22 Nov")

        await coordinator.says("/status")
        status = plain(coordinator.last)
        assert "Recycling output, week of 22 Nov to 28 Nov 2026: 1 of 3 reported" in status
        assert "2 days late (was due on 30 November)" in status
        assert "Hamad Women's Association" in status

        await sitra.says("/status")
        assert "Recycling output, week of 22 Nov to 28 Nov 2026: sent" in sitra.last
        await hamad.says("/status")
        # Due on Monday 30 November, two days ago; this week's is due on Monday 7 December.
        mine = plain(hamad.last)
        assert (
            "week of 22 Nov to 28 Nov 2026: not sent yet, 2 days late (was due on 30 November)"
            in mine
        )
        assert "week of 29 Nov to 5 Dec 2026: not sent yet, due in 5 days, on 7 December" in mine

        await coordinator.says("/digest")
        photos = [m for m in coordinator.answers if m.method == "sendPhoto"]
        assert photos, "the digest comes with its chart"
        assert "Weekly digest" in coordinator.everything

        await hamad.says("/remind")
        assert "not for your role" in hamad.last

        await coordinator.says("/remind")
        prompt = plain(coordinator.last)
        assert "Send a reminder now to the workers of 3 associations?" in prompt
        # Each association with the reports it has not sent.
        assert (
            "• Hamad Women's Association: Recycling output (week of 22 Nov to 28 Nov 2026), "
            "Field check-in (week of 22 Nov to 28 Nov 2026), Beneficiary counts (November 2026)"
        ) in prompt
        assert (
            "• Sitra Women's Advancement Association: "
            "Field check-in (week of 22 Nov to 28 Nov 2026), Beneficiary counts (November 2026)"
        ) in prompt
        await coordinator.taps("Send the reminders")
        assert "on their way" in coordinator.everything
        await coordinator.says("/remind")
        await coordinator.taps("Send the reminders")
        assert "already reminded today" in coordinator.everything

    with transaction(sanad.engine) as session:
        nudges = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "reminder")).all()
    people = {m.person_id for m in nudges}
    assert len(people) >= 1 and all(
        reply_for(m, None).options[0].label == "Fill it now" for m in nudges
    )
    texts = [plain(reply_for(m, None).text) for m in nudges]
    assert (
        "Your Recycling output report for week of 22 Nov to 28 Nov 2026 is 2 days late: "
        "it was due on 30 November." in " ".join(texts)
    )
    # November's beneficiary counts are not due until 5 December: a nudge now says so.
    assert (
        "Reminder: your Beneficiary counts report for November 2026 is due in 3 days, "
        "on 5 December." in texts
    )
    assert not any("was due" in t and "late" not in t for t in texts)
