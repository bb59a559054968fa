"""Outbox messages on WhatsApp: free-form inside the 24-hour window, utility templates outside
it, status webhooks on each row, and the Cloud API's errors handled as the sender should."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.app import Sanad
from bot.channels.whatsapp.templates import submissions
from outbox.intents import Intent
from outbox.sender import Sender
from storage import outbox
from storage.db import transaction
from storage.deliveries import forget_reports, seen_inbound
from storage.models import DeliveryReport, Organization, OutboxMessage, Person
from tests.conftest import Clock
from tests.harness import plain
from tests.test_whatsapp_channel import WORKER, registered
from tests.whatsapp_harness import WhatsAppChat


class Sleeper:
    """An asyncio.sleep that moves the test clock instead of waiting."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


def sender(wa: WhatsAppChat, clock: Clock, **options: float) -> Sender:
    return Sender(
        wa.sanad.engine,
        wa.whatsapp.deliver,
        clock=clock,
        sleep=Sleeper(clock),
        per_second=options.pop("per_second", 80.0),
        **options,  # type: ignore[arg-type]
    )


def enqueue(sanad: Sanad, clock: Clock, wa_id: str, kind: str, text: str, **extra: object) -> int:
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.address == wa_id)).one()
        assert person.id is not None
        options = extra.pop("options", ())
        outbox.enqueue(
            session,
            person_id=person.id,
            kind=kind,
            dedupe_key=f"{kind}:{wa_id}:{text[:20]}",
            intent=Intent.plain(text, options),  # type: ignore[arg-type]
            now=clock(),
            **extra,  # type: ignore[arg-type]
        )
        return person.id


def rows(sanad: Sanad) -> list[OutboxMessage]:
    with transaction(sanad.engine) as session:
        found = list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())
        session.expunge_all()
        return found


REMINDER = "Reminder: your Recycling output report for week 49 is due on 7 December."


async def test_a_reminder_inside_the_window_is_an_ordinary_message(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa)
        clock.advance(hours=23)
        enqueue(
            sanad, clock, WORKER, "reminder", REMINDER, options=[("Fill it now", "go:recycling")]
        )
        wa.api.read_receipts = True
        assert await sender(wa, clock).run_once() == 1
        reminder = wa.api.to(WORKER)[-1]
        assert (reminder.type, reminder.text) == ("interactive", REMINDER)
        wa.api.reorder()  # its status reports, sent, delivered and read, in any order
        wa.api.repeat_next(2)
        await wa.api.push()
        wa.api.reorder(False)
        [row] = rows(sanad)
        assert (row.status, row.delivery, row.platform_message_id) == ("sent", "read", reminder.id)
        await worker.taps("Fill it now")
        assert "Which week" in worker.everything or worker.titles


async def test_outside_the_window_a_reminder_is_its_template_and_opens_the_form(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        for template in submissions():
            wa.api.approve(template)
        worker = await registered(wa)
        clock.advance(hours=25)
        enqueue(
            sanad, clock, WORKER, "reminder", REMINDER, options=[("Fill it now", "go:recycling")]
        )
        await sender(wa, clock).run_once()
        template = wa.api.to(WORKER)[-1]
        assert template.type == "template"
        assert template.payload["template"]["name"] == "sanad_reminder"
        assert template.payload["template"]["language"]["code"] == "en"
        assert REMINDER in template.text
        answer = await worker._do(worker.user.press, template, "Report now")
        assert answer and worker.titles  # the form asks for its week
        assert "Recycling output" in worker.everything


async def test_outside_the_window_a_digest_waits_behind_show(sanad: Sanad, clock: Clock) -> None:
    digest = "Weekly digest of the Bahrain group\n\nPaper: 120 kg\nPlastic: 45 kg"
    async with WhatsAppChat(sanad) as wa:
        for template in submissions():
            wa.api.approve(template)
        worker = await registered(wa, language="ar")
        clock.advance(days=3)
        enqueue(sanad, clock, WORKER, "digest", digest)
        send = sender(wa, clock)
        await send.run_once()
        template = wa.api.to(WORKER)[-1]
        assert template.payload["template"]["name"] == "sanad_message"
        assert template.payload["template"]["language"]["code"] == "ar"
        assert "Weekly digest of the Bahrain group" in template.text  # its first line
        assert "Paper" not in template.text
        await worker._do(worker.user.press, template, "عرض")
        await send.run_once()
        assert wa.api.to(WORKER)[-1].text == digest  # now inside the window, as it is


async def test_a_message_whatsapp_refuses_for_the_window_goes_again_as_its_template(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        for template in submissions():
            wa.api.approve(template)
        await registered(wa)
        wa.api.last_inbound[WORKER] -= 30 * 3600  # WhatsApp's view differs from ours
        enqueue(sanad, clock, WORKER, "escalation", "Late: Sitra Women's Advancement")
        send = sender(wa, clock)
        await send.run_once()
        assert wa.api.to(WORKER)[-1].type == "text"
        await wa.api.push()  # failed, 131047
        [row] = rows(sanad)
        assert row.status == "pending" and row.error and row.error.startswith("window closed")
        await send.run_once()
        assert wa.api.to(WORKER)[-1].payload["template"]["name"] == "sanad_message"
        await wa.api.push()
        [row] = rows(sanad)
        assert (row.status, row.delivery) == ("sent", "delivered")


def kept_reports(sanad: Sanad) -> list[DeliveryReport]:
    with transaction(sanad.engine) as session:
        found = list(session.exec(select(DeliveryReport)).all())
        session.expunge_all()
        return found


async def test_statuses_that_come_before_the_send_answer_are_kept_then_applied(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        await registered(wa)
        wa.api.read_receipts = True
        wa.api.statuses_before_answer = True  # Meta's webhook outruns its HTTP answer
        enqueue(sanad, clock, WORKER, "reminder", REMINDER)
        send = sender(wa, clock)
        assert await send.run_once() == 1
        reminder = wa.api.to(WORKER)[-1]
        assert reminder.payload["biz_opaque_callback_data"].startswith("outbox:")
        values = [b["entry"][0]["changes"][0]["value"] for b in wa.api.delivered]
        taken = [v for v in values if v.get("statuses", [{}])[0].get("id") == reminder.id]
        assert len(taken) == 3  # sent, delivered, read: all taken (2xx) before the answer
        [row] = rows(sanad)
        assert (row.status, row.delivery, row.platform_message_id) == ("sent", "read", reminder.id)
        assert kept_reports(sanad) == []  # applied, not left waiting


async def test_a_window_failure_that_comes_before_the_send_answer_still_sends_the_template(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        for template in submissions():
            wa.api.approve(template)
        await registered(wa)
        wa.api.last_inbound[WORKER] -= 30 * 3600  # WhatsApp's view differs from ours
        wa.api.statuses_before_answer = True
        enqueue(sanad, clock, WORKER, "escalation", "Late: Sitra Women's Advancement")
        send = sender(wa, clock)
        await send.run_once()
        assert wa.api.to(WORKER)[-1].type == "text"  # failed, 131047, before its answer came
        [row] = rows(sanad)
        assert row.status == "pending" and row.error and row.error.startswith("window closed")
        assert row.platform_message_id is None  # the failed message's reports are done
        await send.run_once()
        assert wa.api.to(WORKER)[-1].payload["template"]["name"] == "sanad_message"
        [row] = rows(sanad)
        assert (row.status, row.delivery) == ("sent", "delivered")
        assert kept_reports(sanad) == []


async def test_a_report_for_no_known_message_is_forgotten_after_a_day(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        await registered(wa)
        late = {"id": "wamid.GONE", "status": "delivered", "recipient_id": WORKER}
        wa.api.queue_event({"statuses": [{**late, "biz_opaque_callback_data": "outbox:999"}]})
        wa.api.queue_event({"statuses": [{**late, "id": "wamid.REPLY"}]})  # a direct reply's
        await wa.api.push()
        assert [r.platform_message_id for r in kept_reports(sanad)] == ["wamid.GONE"]
        assert forget_reports(sanad.engine, clock()) == 0
        clock.advance(days=1, seconds=1)
        assert forget_reports(sanad.engine, clock()) == 1
        assert kept_reports(sanad) == []


def people(sanad: Sanad, clock: Clock, count: int) -> list[str]:
    """`count` workers on WhatsApp who wrote an hour ago."""
    addresses = [f"9733400{n:04d}" for n in range(count)]
    with transaction(sanad.engine) as session:
        organization = session.exec(
            select(Organization).where(Organization.key == "bh_rural_girls")
        ).one()
        assert organization.id is not None
        for address in addresses:
            session.add(
                Person(
                    channel="whatsapp",
                    address=address,
                    role="worker",
                    language="en",
                    organization_id=organization.id,
                )
            )
            seen_inbound(session, "whatsapp", address, clock() - timedelta(hours=1))
    return addresses


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_300_person_broadcast_through_injected_errors(sanad: Sanad, clock: Clock) -> None:
    async with WhatsAppChat(sanad) as wa:
        addresses = people(sanad, clock, 300)
        for address in addresses:
            wa.api.last_inbound[address] = (clock() - timedelta(hours=1)).timestamp()
        wa.api.not_on_whatsapp.add(addresses[7])
        wa.api.messages_per_second = 4  # a lower tier than the sender believes
        for address in addresses:
            enqueue(sanad, clock, address, "broadcast", f"Meeting on Thursday ({address})")
        wa.api.fail_next(3, status=500, code=131000)
        wa.api.fail_next(1, status=400, code=131056)
        send = sender(wa, clock, per_second=80.0, concurrency=8, max_backoff=4.0)
        for _ in range(1000):
            await send.run_once()
            await wa.api.push()
            if all(r.status != "pending" for r in rows(sanad)):
                break
            clock.advance(seconds=1)  # retries wait their backoff
        found = rows(sanad)
    by_address = dict(zip(addresses, found, strict=True))
    assert by_address[addresses[7]].status == "blocked"  # reported undeliverable: 131026
    others = {a: (r.status, r.error) for a, r in by_address.items() if a != addresses[7]}
    assert {status for status, _ in others.values()} == {"sent"}, others
    assert wa.api.errors.get(130429, 0) > 0  # throughput: paused and went on
    assert send.stats["flood_waits"] == wa.api.errors[130429]
    assert len({m.to for m in wa.api.sent}) == 300
    assert len(wa.api.sent) == 300  # nothing sent twice
    with transaction(sanad.engine) as session:
        person = session.exec(select(Person).where(Person.address == addresses[7])).one()
    assert not person.reachable


async def test_a_reply_whatsapp_refuses_after_the_commit_waits_in_the_outbox(
    sanad: Sanad, clock: Clock
) -> None:
    async with WhatsAppChat(sanad) as wa:
        worker = await registered(wa)
        wa.api.fail_next(1, status=500, code=131000)
        await worker.says("/help")
        assert worker.answers == []  # refused; the webhook still answered 200 after the commit
        [kept] = rows(sanad)
        assert kept.kind == "reply"
        assert await sender(wa, clock).run_once() == 1
        assert "/report" in plain(wa.api.to(WORKER)[-1].text)  # the help, from the outbox
