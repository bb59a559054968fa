"""A simulated October for the groups: some associations report on time, some late, some
never; the clock crosses the end of daylight-saving time in Beirut (25 Oct) and Cairo
(29 Oct), and Casablanca runs on its 2026 rules. Exactly which reminders, escalations and
digests go out, to whom, at what local time, with which numbers."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.app import Sanad
from exports.writers import export
from forms.periods import period_containing
from locales import translator
from monitoring.digest import build_digest, digest_text
from monitoring.monitor import Monitor
from outbox.intents import reply_for
from storage.db import transaction
from storage.models import Group, Organization, OutboxMessage, Person
from storage.reports import add_report
from storage.schedule import schedule_from
from tests.conftest import Clock

RECYCLING = {
    "paper_kg": 100.0,
    "aluminium_kg": 20.0,
    "plastic_kg": 30.0,
    "sold_kg": 120.0,
    "revenue": 60.0,
    "paid_to_women": 45.0,
    "women_working": 6,
    "notes": None,
}


def person(session: Session, org_key: str, role: str, language: str = "ar") -> Person:
    organization = session.exec(select(Organization).where(Organization.key == org_key)).one()
    assert organization.id is not None
    count = len(session.exec(select(Person)).all())
    someone = Person(
        channel="telegram",
        address=str(7000 + count),
        display_name=f"{role}{count}",
        language=language,
        role=role,
        organization_id=organization.id,
    )
    session.add(someone)
    session.flush()
    return someone


def report(
    session: Session, sanad: Sanad, org_key: str, week_start: date, at: datetime, **values: float
) -> None:
    form = sanad.dispatcher.services.forms["recycling"]
    organization = session.exec(select(Organization).where(Organization.key == org_key)).one()
    worker = session.exec(select(Person).where(Person.organization_id == organization.id)).first()
    assert worker is not None and worker.id is not None and organization.id is not None
    answers = {**RECYCLING, **values, "period": week_start.isoformat()}
    add_report(
        session,
        form_id="recycling",
        prefix=form.prefix,
        group_id=organization.group_id,
        organization_id=organization.id,
        person_id=worker.id,
        period=week_start.isoformat(),
        answers=answers,
        now=at,
    )


def local(day: str, hour: int, zone: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00").replace(tzinfo=ZoneInfo(zone))


def run(
    monitor: Monitor,
    clock: Clock,
    until: datetime,
    step: timedelta = timedelta(hours=1),
) -> None:
    while clock.now < until:
        clock.advance(seconds=step.total_seconds())
        monitor.tick()


def sent(sanad: Sanad, kind: str | None = None) -> list[OutboxMessage]:
    with transaction(sanad.engine) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        return [m for m in session.exec(query).all() if "#" not in m.dedupe_key]


@pytest.fixture
def lebanon(sanad: Sanad) -> Iterator[dict[str, int]]:
    """One worker per Lebanese association and a coordinator; only recycling is watched."""
    people = {}
    with transaction(sanad.engine) as session:
        for key in ("lb_partner_1", "lb_partner_2", "lb_partner_3", "lb_partner_4"):
            people[key] = person(session, key, "worker").id
        people["coordinator"] = person(session, "lb_supportive", "coordinator", "fr").id
        group = session.exec(select(Group).where(Group.key == "lebanon")).one()
        group.schedule = {"forms": {"recycling": {"every": "week", "due_days": 2}}}
        for other in session.exec(select(Group).where(Group.key != "lebanon")).all():
            other.active = other.key == "network"
            session.add(other)
        session.add(group)
    yield people  # type: ignore[misc]


def only_recycling(sanad: Sanad) -> dict[str, object]:
    forms = sanad.dispatcher.services.forms
    return {"recycling": forms["recycling"]}


async def test_a_month_in_beirut_across_the_end_of_summer_time(
    sanad: Sanad, clock: Clock, lebanon: dict[str, int], tmp_path: Path
) -> None:
    zone = "Asia/Beirut"
    week = date(2026, 10, 19)  # Monday 19 – Sunday 25 October; summer time ends on the 25th
    with transaction(sanad.engine) as session:
        report(session, sanad, "lb_partner_1", week, local("2026-10-25", 18, zone))  # on time
    clock.now = local("2026-10-18", 0, zone).astimezone(UTC)
    monitor = Monitor(sanad.engine, only_recycling(sanad), tmp_path / "charts", clock)  # type: ignore[arg-type]
    run(monitor, clock, local("2026-10-27", 15, zone))
    with transaction(sanad.engine) as session:  # partner 4 reports on the due day
        report(session, sanad, "lb_partner_4", week, clock.now)
    run(monitor, clock, local("2026-10-29", 12, zone))
    with transaction(sanad.engine) as session:  # partner 2 reports late, after the reminder
        report(session, sanad, "lb_partner_2", week, local("2026-10-29", 12, zone))
    run(monitor, clock, local("2026-11-02", 0, zone))

    def of(stage: str) -> list[tuple[int, datetime]]:
        return [
            (m.person_id, m.created_at.astimezone(ZoneInfo(zone)))
            for m in sent(sanad)
            if f":{stage}:recycling:lebanon:2026-10-19:" in m.dedupe_key
            or (
                stage == "escalation"
                and m.dedupe_key.startswith("escalation:recycling:lebanon:2026-10-19")
            )
        ]

    before, after = of("before"), of("after")
    assert sorted(p for p, _ in before) == sorted(
        lebanon[k] for k in ("lb_partner_2", "lb_partner_3", "lb_partner_4")
    )
    assert {t.replace(tzinfo=None) for _, t in before} == {datetime(2026, 10, 26, 10)}
    assert {t.utcoffset() for _, t in before} == {timedelta(hours=2)}, "winter time by then"
    assert sorted(p for p, _ in after) == sorted(
        lebanon[k] for k in ("lb_partner_2", "lb_partner_3")
    )
    assert {t.replace(tzinfo=None) for _, t in after} == {datetime(2026, 10, 28, 10)}
    [(coordinator, at)] = of("escalation")
    assert coordinator == lebanon["coordinator"]
    assert at.replace(tzinfo=None) == datetime(2026, 10, 30, 10)
    [escalation] = [m for m in sent(sanad, "escalation") if "2026-10-19" in m.dedupe_key]
    assert "Association de la Békaa" in reply_for(escalation, None).text  # partner 3, in French
    assert "Association du Nord" not in reply_for(escalation, None).text  # partner 2 has reported

    # The week before, in summer time: the reminder also goes out at 10:00 local.
    earlier = [
        m.created_at.astimezone(ZoneInfo(zone))
        for m in sent(sanad)
        if ":before:recycling:lebanon:2026-10-12:" in m.dedupe_key
    ]
    assert earlier and {t.replace(tzinfo=None) for t in earlier} == {datetime(2026, 10, 19, 10)}
    assert {t.utcoffset() for t in earlier} == {timedelta(hours=3)}

    # The weekly digest of 19–25 October, three days after, Wednesday 28th at 09:00.
    [digest] = [m for m in sent(sanad, "digest") if "week:lebanon:2026-10-19" in m.dedupe_key]
    assert digest.created_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == datetime(
        2026, 10, 28, 9
    )
    chart = reply_for(digest, None).photo
    assert isinstance(chart, Path) and chart.read_bytes()[:4] == b"\x89PNG"
    text = reply_for(digest, None).text
    assert "2 sur 4" in text.replace("\u2068", "").replace("\u2069", "").replace("\u202f", " ")

    # Restarting and ticking the same hours again sends nothing new.
    count = len(sent(sanad))
    clock.now = local("2026-10-25", 0, zone).astimezone(UTC)
    run(
        Monitor(sanad.engine, only_recycling(sanad), tmp_path / "charts", clock),  # type: ignore[arg-type]
        clock,
        local("2026-11-02", 0, zone),
        step=timedelta(minutes=20),
    )
    assert len(sent(sanad)) == count


async def test_cairo_reminders_stay_at_ten_across_the_end_of_summer_time(
    sanad: Sanad, clock: Clock, tmp_path: Path
) -> None:
    zone = "Africa/Cairo"
    with transaction(sanad.engine) as session:
        worker = person(session, "eg_partner_1", "worker").id
        for other in session.exec(select(Group).where(Group.key != "egypt")).all():
            other.active = False
            session.add(other)
    clock.now = local("2026-10-20", 0, zone).astimezone(UTC)
    monitor = Monitor(sanad.engine, only_recycling(sanad), tmp_path, clock)  # type: ignore[arg-type]
    run(monitor, clock, local("2026-11-06", 0, zone))
    befores = sorted(
        m.created_at.astimezone(ZoneInfo(zone))
        for m in sent(sanad)
        if m.dedupe_key.startswith("reminder:before:recycling:egypt") and m.person_id == worker
    )
    # Weeks start on Sunday in Egypt; recycling is due two days after the week ends.
    assert [(t.date(), t.hour, t.utcoffset()) for t in befores] == [
        (date(2026, 10, 25), 10, timedelta(hours=3)),  # summer time
        (date(2026, 11, 1), 10, timedelta(hours=2)),  # winter time since 29 October
    ]


async def test_casablanca_keeps_its_2026_rules_from_tzdata(
    sanad: Sanad, clock: Clock, tmp_path: Path
) -> None:
    assert datetime(2026, 11, 9, 10, tzinfo=ZoneInfo("Africa/Casablanca")).utcoffset() == timedelta(
        0
    ), "zone data must come from the tzdata package"
    with transaction(sanad.engine) as session:
        person(session, "ma_partner_1", "worker", "fr")
        for other in session.exec(select(Group).where(Group.key != "morocco")).all():
            other.active = False
            session.add(other)
    clock.now = datetime(2026, 11, 1, tzinfo=UTC)
    run(
        Monitor(sanad.engine, only_recycling(sanad), tmp_path, clock),  # type: ignore[arg-type]
        clock,
        datetime(2026, 11, 12, tzinfo=UTC),
    )
    times = {m.created_at for m in sent(sanad) if m.dedupe_key.startswith("reminder:")}
    assert times and {t.hour for t in times} == {10}, "10:00 local is 10:00 UTC in Morocco"


async def test_reminders_wait_for_the_end_of_quiet_hours(
    sanad: Sanad, clock: Clock, tmp_path: Path
) -> None:
    with transaction(sanad.engine) as session:
        person(session, "bh_sitra_women", "worker")
        bahrain = session.exec(select(Group).where(Group.key == "bahrain")).one()
        bahrain.schedule = {
            "reminder_time": "22:30",
            "forms": {"recycling": {"every": "week", "due_days": 2}},
        }
        session.add(bahrain)
        for other in session.exec(select(Group).where(Group.key != "bahrain")).all():
            other.active = False
            session.add(other)
    clock.now = datetime(2026, 11, 1, tzinfo=UTC)
    run(
        Monitor(sanad.engine, only_recycling(sanad), tmp_path, clock),  # type: ignore[arg-type]
        clock,
        datetime(2026, 11, 12, tzinfo=UTC),
        step=timedelta(minutes=30),
    )
    times = [m.created_at.astimezone(ZoneInfo("Asia/Bahrain")) for m in sent(sanad, "reminder")]
    assert times and {(t.hour, t.minute) for t in times} == {(8, 0)}


async def test_digest_figures_match_the_export(sanad: Sanad, clock: Clock, tmp_path: Path) -> None:
    zone = "Asia/Bahrain"
    weeks = [date(2026, 10, 4) + timedelta(weeks=n) for n in range(6)]  # Sundays
    with transaction(sanad.engine) as session:
        for key in ("bh_rural_girls", "bh_sitra_women", "bh_hamad_women"):
            person(session, key, "worker")
        for n, week in enumerate(weeks):
            at = local((week + timedelta(days=6)).isoformat(), 17, zone)
            report(session, sanad, "bh_rural_girls", week, at, paper_kg=100.0 + n)
            report(
                session,
                sanad,
                "bh_sitra_women",
                week,
                at,
                paper_kg=900.0 if week == weeks[-1] else 120.0,
            )
        report(session, sanad, "bh_hamad_women", weeks[-1], at + timedelta(days=5))
    forms = sanad.dispatcher.services.forms
    with transaction(sanad.engine) as session:
        group = session.exec(select(Group).where(Group.key == "bahrain")).one()
        period = period_containing("week", weeks[-1], group.week_start)
        built = build_digest(
            session,
            group,
            schedule_from(group.schedule),
            forms,
            "week",
            period,
            weeks[-1] + timedelta(days=14),
        )
        export(
            session,
            forms,
            "recycling",
            "en",
            "csv",
            tmp_path / "r.csv",
            group_key="bahrain",
            date_from=weeks[-1],
            date_to=weeks[-1] + timedelta(days=14),
        )
    with (tmp_path / "r.csv").open(encoding="utf-8-sig") as file:
        rows = list(csv.DictReader(file))
    [recycling] = [p for p in built.forms if p.form.id == "recycling"]
    assert recycling.totals["paper_kg"] == sum(float(r["Paper (kg)"]) for r in rows)
    assert recycling.totals["reports"] == len(rows) == 3
    assert (recycling.state.actual, len(recycling.state.on_time)) == (3, 2)
    assert recycling.previous is not None and recycling.previous["paper_kg"] == 224.0
    [outlier] = recycling.outliers
    assert (outlier.organization.key, outlier.field.name, outlier.value) == (
        "bh_sitra_women",
        "paper_kg",
        900.0,
    )
    text = digest_text(built, translator("en")).replace("\u2068", "").replace("\u2069", "")
    assert "3 of 3 associations reported (100%), 2 on time (67%)" in text
    assert "Paper (kg): 1,105 (+393%)" in text
    assert "Paper (kg): 1,105 of 400 (276%)" in text
    assert "To check: Sitra Women's Advancement Association, Paper (kg): 900" in text


async def test_the_next_digest_names_people_the_bot_cannot_reach(
    sanad: Sanad, tmp_path: Path
) -> None:
    with transaction(sanad.engine) as session:
        blocked = person(session, "bh_sitra_women", "worker", "en")
        blocked.reachable = False  # what the sender records when Telegram answers 403
        session.add(blocked)
        group = session.exec(select(Group).where(Group.key == "bahrain")).one()
        period = period_containing("week", date(2026, 11, 22), group.week_start)
        built = build_digest(
            session,
            group,
            schedule_from(group.schedule),
            sanad.dispatcher.services.forms,
            "week",
            period,
            date(2026, 12, 2),
        )
    text = digest_text(built, translator("en")).replace("\u2068", "").replace("\u2069", "")
    assert (
        f"Unreachable (they blocked the bot or left Telegram): {blocked.display_name} "
        "(Sitra Women's Advancement Association)" in text
    )
