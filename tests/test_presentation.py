"""What coordinators and workers read: digits chosen per group, dates in the reader's
locale, money with its currency (never added across currencies), an empty digest that says
so, due dates worded for the day, and daily reports reminded once per local day."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po
from sqlmodel import Session, select

from bot.app import Sanad
from forms.periods import period_containing, period_from_key
from forms.schema import FormSpec
from locales import po_path, translator
from monitoring.digest import build_digest, digest_text
from monitoring.due import due_phrase
from monitoring.monitor import Monitor, digest_chart
from outbox.intents import reply_for, text_of
from storage.db import transaction
from storage.models import Group, Organization, OutboxMessage, Person
from storage.network import read_network
from storage.reports import add_report
from storage.schedule import schedule_from
from tests.conftest import EXAMPLE_NETWORK, Clock
from tests.harness import Telegram, plain, registered, report_recycling

RECYCLING = {
    "paper_kg": 100.0,
    "aluminium_kg": 20.0,
    "plastic_kg": 30.0,
    "sold_kg": 120.0,
    "revenue": 60.5,
    "paid_to_women": 45.0,
    "women_working": 6,
    "notes": None,
}


def group(session: Session, key: str) -> Group:
    return session.exec(select(Group).where(Group.key == key)).one()


def worker_of(session: Session, org_key: str) -> tuple[Organization, Person]:
    organization = session.exec(select(Organization).where(Organization.key == org_key)).one()
    assert organization.id is not None
    someone = Person(
        channel="telegram",
        address=f"9{organization.id:03d}",
        display_name=org_key,
        role="worker",
        organization_id=organization.id,
    )
    session.add(someone)
    session.flush()
    return organization, someone


def recycling_report(
    session: Session, sanad: Sanad, org_key: str, week: date, at: datetime, **values: Any
) -> None:
    organization, someone = worker_of(session, org_key)
    assert organization.id is not None and someone.id is not None
    add_report(
        session,
        form_id="recycling",
        prefix=sanad.dispatcher.services.forms["recycling"].prefix,
        group_id=organization.group_id,
        organization_id=organization.id,
        person_id=someone.id,
        period=week.isoformat(),
        answers={**RECYCLING, **values, "period": week.isoformat()},
        now=at,
    )


# --- digits and locale ----------------------------------------------------------------------


def test_each_country_gets_sensible_digits_and_a_group_may_choose(
    sanad: Sanad, tmp_path: Path
) -> None:
    with transaction(sanad.engine) as session:
        digits = {g.key: g.digits for g in session.exec(select(Group)).all()}
    assert digits["bahrain"] == digits["egypt"] == digits["sudan"] == "arab"
    assert digits["lebanon"] == digits["morocco"] == "latn"
    chosen = EXAMPLE_NETWORK.read_text().replace("currency: BHD", "currency: BHD\n    digits: latn")
    path = tmp_path / "network.yaml"
    path.write_text(chosen, encoding="utf-8")
    assert read_network(path).groups[0].digits == "latn"


def test_numbers_dates_and_money_in_the_readers_digits() -> None:
    arab, latn = translator("ar", "arab"), translator("ar", "latn")
    assert arab.number(1234.5) == "١٬٢٣٤٫٥"
    assert latn.number(1234.5) == "1,234.5"
    assert arab.date(date(2026, 11, 29), "d MMMM") == "٢٩ نوفمبر"
    assert latn.date(date(2026, 11, 29), "d MMMM") == "29 نوفمبر"
    assert arab.percent(0.5) == "٥٠٪"
    assert "١٢٫٥٠٠" in arab.money(12.5, "BHD") and "د.ب." in arab.money(12.5, "BHD")
    # Arabic-Indic digits are for Arabic text: English and French keep Latin ones.
    assert translator("en", "arab").number(1234.5) == "1,234.5"


def test_english_dates_are_day_first_and_french_money_has_its_spaces() -> None:
    en, fr = translator("en"), translator("fr")
    assert en.date(date(2026, 11, 29)) == "29 Nov 2026"
    at = datetime(2026, 11, 29, 7, 5, tzinfo=UTC)
    assert en.datetime(at, "Asia/Bahrain") == "29/11/2026, 10:05"
    assert fr.money(1234.5, "MAD") == "1\u202f234,50\u00a0MAD"


def test_french_catalog_keeps_french_typography() -> None:
    """A no-break space (U+00A0 or the narrow U+202F) before : ; ! ? » and after «."""
    with po_path("fr").open("rb") as file:
        catalog = read_po(file, locale="fr")
    wrong = re.compile(r"[^\u00a0\u202f](?=[;!?»])|«(?=[^\u00a0\u202f])|\w(?=:(?:\s|$))")
    problems = [
        text
        for message in catalog
        if message.id
        for text in (message.string if isinstance(message.string, tuple) else [message.string])
        if text and wrong.search(text)
    ]
    assert problems == []


# --- due dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "english", "arabic"),
    [
        (-2, "2 days late (was due on 30 November)", "متأخر يومين"),
        (-11, "11 days late (was due on 30 November)", "متأخر ١١ يومًا"),
        (-101, "101 days late (was due on 30 November)", "متأخر ١٠١ يوم "),
        (-1, "1 day late (was due on 30 November)", "متأخر يومًا واحدًا"),
        (0, "due today, 30 November", "موعده اليوم"),
        (3, "due in 3 days, on 30 November", "موعده بعد ٣ أيام"),
        (1, "due in 1 day, on 30 November", "موعده غدًا"),
    ],
)
def test_a_due_date_reads_from_the_day_it_is_read(days: int, english: str, arabic: str) -> None:
    due = date(2026, 11, 30)
    today = due - timedelta(days=days)
    phrase = due_phrase(due, today)  # translated when it is sent
    assert plain(text_of(phrase, translator("en"))) == english
    assert arabic in plain(text_of(phrase, translator("ar", "arab")))


async def test_an_arabic_worker_in_bahrain_reads_arabic_indic_digits(
    sanad: Sanad, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    async with Telegram(sanad) as telegram:
        hamad = await registered(telegram, "bh_hamad_women", 801, "Maryam", language="ar")
        await hamad.says("/status")
        status = plain(hamad.last)
    assert "متأخر يومين (كان موعده ٣٠ نوفمبر)" in status
    assert "موعده بعد ٥ أيام، في ٧ ديسمبر" in status
    assert not re.search("[0-9]", status), status


# --- money and empty digests ------------------------------------------------------------------


def test_a_digest_shows_money_with_the_groups_currency(sanad: Sanad) -> None:
    week = date(2026, 11, 22)
    with transaction(sanad.engine) as session:
        recycling_report(
            session, sanad, "bh_rural_girls", week, datetime(2026, 11, 28, 9, tzinfo=UTC)
        )
        bahrain = group(session, "bahrain")
        period = period_containing("week", week, bahrain.week_start)
        built = build_digest(
            session,
            bahrain,
            schedule_from(bahrain.schedule),
            sanad.dispatcher.services.forms,
            "week",
            period,
            date(2026, 12, 2),
        )
    english = plain(digest_text(built, translator("en")))
    assert "Revenue: BHD60.500" in english
    assert "Paper (kg): 100" in english
    arabic = plain(digest_text(built, translator("ar", "arab")))
    assert "٦٠٫٥٠٠\u00a0د.ب." in arabic


def test_the_network_digest_totals_money_per_currency(sanad: Sanad) -> None:
    with transaction(sanad.engine) as session:
        bahrain_week, morocco_week = date(2026, 11, 22), date(2026, 11, 23)
        recycling_report(
            session, sanad, "bh_rural_girls", bahrain_week, datetime(2026, 11, 28, tzinfo=UTC)
        )
        recycling_report(
            session,
            sanad,
            "ma_partner_1",
            morocco_week,
            datetime(2026, 11, 29, tzinfo=UTC),
            revenue=1000.0,
        )
        monitor = Monitor(sanad.engine, sanad.dispatcher.services.forms, sanad.settings.charts_dir)
        text = plain(
            monitor.network_text(
                session, "week", datetime(2026, 12, 2, 8, tzinfo=UTC), translator("en")
            )
        )
    assert "Money reported, per currency:" in text
    assert "Revenue: BHD60.500 · MAD1,000.00" in text
    assert "1,060" not in text, "amounts in two currencies are never added"


def test_an_empty_period_says_so_and_draws_no_chart(sanad: Sanad, tmp_path: Path) -> None:
    with transaction(sanad.engine) as session:
        sudan = group(session, "sudan")
        period = period_containing("week", date(2026, 11, 22), sudan.week_start)
        built = build_digest(
            session,
            sudan,
            schedule_from(sudan.schedule),
            sanad.dispatcher.services.forms,
            "week",
            period,
            date(2026, 12, 2),
        )
    text = plain(digest_text(built, translator("en")))
    assert "No reports yet this period." in text
    assert "Totals" not in text
    assert digest_chart(built, translator("en"), tmp_path) is None


async def test_a_digest_with_reports_comes_with_a_chart_in_the_units(
    sanad: Sanad, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    async with Telegram(sanad) as telegram:
        worker = await registered(telegram, "bh_sitra_women", 802, "Zainab")
        await report_recycling(worker, "week of 22 Nov")
    with transaction(sanad.engine) as session:
        bahrain = group(session, "bahrain")
        period = period_from_key("week", "2026-11-22", bahrain.week_start)
        built = build_digest(
            session,
            bahrain,
            schedule_from(bahrain.schedule),
            sanad.dispatcher.services.forms,
            "week",
            period,
            date(2026, 12, 2),
        )
    chart = digest_chart(built, translator("en"), sanad.settings.charts_dir)
    assert chart is not None and chart.read_bytes()[:4] == b"\x89PNG"


# --- daily reports --------------------------------------------------------------------------


def daily_form(sanad: Sanad) -> FormSpec:
    """The recycling form asked every day."""
    data = sanad.dispatcher.services.forms["recycling"].model_dump(exclude_none=True)
    return FormSpec.model_validate({**data, "period": "day"})


@pytest.mark.parametrize(
    ("reminder_time", "first", "last"),
    [
        # Egypt's summer time starts at midnight on Friday 24 April 2026: 00:30 never happens.
        ("00:30", date(2026, 4, 21), date(2026, 4, 27)),
        # It ends at midnight on Thursday 29 October: 23:30 happens twice that night.
        ("23:30", date(2026, 10, 26), date(2026, 11, 1)),
    ],
)
def test_a_daily_form_is_reminded_once_per_local_day_across_daylight_saving(
    sanad: Sanad, clock: Clock, reminder_time: str, first: date, last: date
) -> None:
    zone = ZoneInfo("Africa/Cairo")
    with transaction(sanad.engine) as session:
        _, someone = worker_of(session, "eg_partner_1")
        egypt = group(session, "egypt")
        egypt.schedule = {
            "reminder_time": reminder_time,
            "quiet_start": "00:00",
            "quiet_end": "00:00",  # no quiet hours
            "forms": {
                "recycling": {"every": "day", "due_days": 0, "remind_before_days": 0},
                "checkin": {"every": "week", "due_days": 1},
            },
        }
        session.add(egypt)
        for other in session.exec(select(Group).where(Group.key != "egypt")).all():
            other.active = False
            session.add(other)
    monitor = Monitor(
        sanad.engine, {"recycling": daily_form(sanad)}, sanad.settings.charts_dir, clock
    )
    clock.now = datetime.combine(first, datetime.min.time(), zone).astimezone(UTC)
    end = datetime.combine(last, datetime.min.time(), zone).astimezone(UTC)
    while clock.now < end:
        monitor.tick()
        clock.advance(minutes=15)
    with transaction(sanad.engine) as session:
        befores = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.person_id == someone.id,
                OutboxMessage.dedupe_key.startswith("reminder:before:recycling:"),  # type: ignore[union-attr]
            )
        ).all()
    days = sorted(date.fromisoformat(m.dedupe_key.split(":")[4]) for m in befores)
    # From the day before the clock starts (its reminder is still within its day) on:
    expected = [first + timedelta(days=n) for n in range(-1, (last - first).days)]
    assert days == expected, "one reminder for each local day, none skipped or doubled"
    for message in befores:
        day = date.fromisoformat(message.dedupe_key.split(":")[4])
        text = plain(reply_for(message, None).text)
        if message.created_at.astimezone(zone).date() == day:
            assert "مطلوب اليوم" in text  # "due today", in Arabic
        else:  # the day before the clock started, caught up after midnight
            assert "متأخر يومًا واحدًا" in text  # "1 day late"
        assert not re.search("[0-9]", text), "Egypt reads Arabic-Indic digits"


def test_a_day_is_a_period_keyed_by_its_local_date() -> None:
    day = period_containing("day", date(2026, 4, 24))
    assert (day.key, day.start, day.end) == ("2026-04-24", date(2026, 4, 24), date(2026, 4, 24))
    assert day.previous().key == "2026-04-23" and day.next().key == "2026-04-25"
    assert period_from_key("day", "2026-04-24") == day


async def test_myreports_in_english_writes_dates_day_first(sanad: Sanad, clock: Clock) -> None:
    clock.now = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 10:00 in Bahrain
    async with Telegram(sanad) as telegram:
        worker = await registered(telegram, "bh_sitra_women", 803, "Zainab")
        await report_recycling(worker, "week of 22 Nov")
        await worker.says("/myreports")
        listing = plain(worker.last)
    assert "REC-1 · Recycling output · week of 22 Nov to 28 Nov 2026 · 02/12/2026, 10:00" in listing
