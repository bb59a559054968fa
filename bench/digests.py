"""Digests over a long history: a million reports, five groups, twenty-five associations.

    python -m bench.digests [--reports 1000000] [--years 10] [--repeats 11] [--database URL]

The network has 5 groups (the program's countries, each in its own time zone and week) of 5
partner associations, one worker each. The history covers `--years` years up to today:

* recycling, weekly: one report per association and week (about 4 % never sent), submitted
  0-4 days after the week ends;
* beneficiaries, monthly: one per association and month, submitted 0-8 days after it ends;
* check-ins (no period): the rest of the `--reports`, spread over the associations' days
  (fewer on the weekend), each submitted 0-6 days after its visit date. With the defaults
  that is about 11 check-ins a day per association, which is what takes the history to a
  million rows: periodic reports alone are only ~1,600 rows a year.

Rows are written in submission order, with their references, by executemany batches (SQLite)
or COPY (PostgreSQL, then ANALYZE, as autovacuum would soon do); SQLite gets no ANALYZE, as
the bot never runs one.

Then, for the latest ended week and month of each group:

* digests: `build_digest` for the weekly and the monthly kinds of the 5 groups (10 digests:
  completeness, 8 periods of history, outliers, unreachable people), median of `--repeats`
  passes after one untimed warm-up pass; the charts are timed apart (matplotlib, not SQL);
* bare SQL: hand-written statements (json_extract on SQLite, ->> and ::float on PostgreSQL)
  computing the same totals: count and the sum of each numeric field for each of the 8
  periods, per group and form, run on the DB-API connection; median of `--repeats` passes.
  Check-ins are bucketed by the week of their visit date in one statement that reads the
  JSON of the rows submitted since the first week began once (a MATERIALIZED CTE). The
  digests' totals are checked against them.

Targets: digests / bare SQL <= 2, and digests <= 1 s on SQLite (PASS/MISS). The database is a
fresh SQLite file unless `--database` is given; a PostgreSQL URL gets a private schema that is
dropped at the end. `--explain` prints the query plans of the bare statements, `--profile` a
cProfile of one pass of the digests. The default run takes about two minutes on SQLite.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, text
from sqlmodel import Session, col, select

from bench.common import database
from forms.loader import load_forms
from forms.periods import Period, period_containing
from forms.schema import FormSpec
from locales import translator
from monitoring.completeness import local_midnight
from monitoring.digest import HISTORY, Digest, build_digest, numeric_fields
from monitoring.monitor import KINDS, digest_chart
from storage.db import open_database, transaction
from storage.models import Group, Organization, Person, Report
from storage.network import GroupSpec, Names, NetworkSpec, OrganizationSpec, apply_network
from storage.schedule import schedule_from

TARGET_RATIO = 2.0
TARGET_SQLITE_S = 1.0
BATCH = 10_000
ASSOCIATIONS = 5
FIRST_USER_ID = 800_000
#: key, country, time zone, language, currency
GROUPS = [
    ("bahrain", "BH", "Asia/Bahrain", "ar", "BHD"),
    ("egypt", "EG", "Africa/Cairo", "ar", "EGP"),
    ("lebanon", "LB", "Asia/Beirut", "ar", "LBP"),
    ("sudan", "SD", "Africa/Khartoum", "ar", "SDG"),
    ("morocco", "MA", "Africa/Casablanca", "fr", "MAD"),
]
TARGETS = {
    "recycling": {"paper_kg": 2000, "aluminium_kg": 400, "plastic_kg": 800, "paid_to_women": 1500},
    "beneficiaries": {"women_heads": 300, "families_reached": 400},
}
ACTIVITIES = ["home_visit", "awareness", "training", "collection", "meeting", "other"]
COLUMNS = [
    "id",
    "ref",
    "form_id",
    "group_id",
    "organization_id",
    "person_id",
    "period",
    "answers",
    "submitted_at",
    "updated_at",
]


# --- the database ----------------------------------------------------------------------------


# --- the network and its history -------------------------------------------------------------


def _names(text_: str) -> Names:
    return Names(ar=text_, en=text_, fr=text_)


def network_spec() -> NetworkSpec:
    groups = []
    for key, country, zone, language, currency in GROUPS:
        partners = [
            OrganizationSpec(
                key=f"{key}_partner_{n}", names=_names(f"{key.title()} association {n}")
            )
            for n in range(1, ASSOCIATIONS + 1)
        ]
        groups.append(
            GroupSpec(
                key=key,
                names=_names(f"{key.title()} development group"),
                country=country,
                timezone=zone,
                language=language,
                currency=currency,
                targets=TARGETS,
                supportive=OrganizationSpec(
                    key=f"{key}_supportive", names=_names(f"{key.title()} supportive")
                ),
                partners=partners,
            )
        )
    return NetworkSpec(
        network=OrganizationSpec(key="bench_network", names=_names("Bench network")), groups=groups
    )


@dataclass(frozen=True)
class Association:
    organization_id: int
    group_id: int
    person_id: int
    zone: ZoneInfo
    week_start: int
    size: float  # how big its activity is, relative to the others


@dataclass(frozen=True)
class Event:
    submitted_at: datetime
    form_id: str
    association: Association
    period: str | None
    answers: dict[str, Any]


def prepare_network(engine: Engine) -> list[Association]:
    """The network, and one worker registered in each partner association."""
    rng = random.Random(7)
    with transaction(engine) as session:
        apply_network(session, network_spec())
        session.flush()
        rows = session.exec(
            select(Organization, Group)
            .join(Group)
            .where(Organization.kind == "partner")
            .order_by(Organization.key)
        ).all()
        associations = []
        for number, (organization, group) in enumerate(rows):
            assert organization.id is not None and group.id is not None
            worker = Person(
                channel="telegram",
                address=str(FIRST_USER_ID + number),
                display_name=f"Worker {number}",
                language=group.language,
                role="worker",
                organization_id=organization.id,
            )
            session.add(worker)
            session.flush()
            assert worker.id is not None
            associations.append(
                Association(
                    organization.id,
                    group.id,
                    worker.id,
                    ZoneInfo(group.timezone),
                    group.week_start,
                    rng.uniform(0.5, 2.0),
                )
            )
    return associations


class History:
    """Every report of `years` years up to `today`, generated in submission order."""

    def __init__(self, associations: list[Association], reports: int, years: int, today: date):
        self.associations = associations
        self.today = today
        self.first_day = today - timedelta(days=round(365.25 * years))
        self.rng = random.Random(2026)
        self.periodic: dict[date, list[Event]] = {}
        for association in associations:
            self._schedule(association, "week", "recycling", 4)
            self._schedule(association, "month", "beneficiaries", 8)
        self.periodic_count = sum(len(events) for events in self.periodic.values())
        self.checkins = reports - self.periodic_count
        if self.checkins < 0:
            raise SystemExit(
                f"{years} years of weekly and monthly reports are already {self.periodic_count} "
                f"rows, more than --reports {reports}: ask for fewer --years"
            )
        self.days = (today - self.first_day).days
        self.weight = sum(self._weight(a, day) for day in self._days() for a in associations)

    def _days(self) -> Iterator[date]:
        for n in range(self.days):
            yield self.first_day + timedelta(days=n)

    @staticmethod
    def _weight(association: Association, day: date) -> float:
        weekend = (day.weekday() - association.week_start) % 7 >= 5
        return association.size * (0.3 if weekend else 1.0)

    def _schedule(self, association: Association, kind: str, form_id: str, late: int) -> None:
        period = period_containing(kind, self.first_day, association.week_start).next()
        latest = period_containing(kind, self.today, association.week_start).previous()
        rng = self.rng
        while period.start <= latest.start:
            day = period.end + timedelta(days=min(int(rng.expovariate(0.8)), late))
            if rng.random() >= 0.04 and day < self.today:
                at = self._moment(association, day)
                answers = self._answers(form_id, association, period)
                self.periodic.setdefault(day, []).append(
                    Event(at, form_id, association, period.key, answers)
                )
            period = period.next()

    def _moment(self, association: Association, day: date) -> datetime:
        seconds = self.rng.randrange(8 * 3600, 21 * 3600)
        local = datetime(day.year, day.month, day.day, tzinfo=association.zone)
        return (local + timedelta(seconds=seconds)).astimezone(UTC)

    def _answers(self, form_id: str, association: Association, period: Period) -> dict[str, Any]:
        rng = self.rng
        size = association.size * (4.0 if rng.random() < 0.01 else 1.0)  # a few outliers

        def amount(base: float) -> float:
            return round(max(0.0, rng.gauss(base * size, base * size * 0.2)), 1)

        def count(base: float) -> int:
            return max(0, round(rng.gauss(base * size, base * size * 0.2)))

        if form_id == "recycling":
            paper, aluminium, plastic = amount(300), amount(60), amount(120)
            sold = round((paper + aluminium + plastic) * rng.uniform(0.6, 1.0), 1)
            revenue = round(sold * rng.uniform(0.8, 1.2), 1)
            return {
                "period": period.key,
                "paper_kg": paper,
                "aluminium_kg": aluminium,
                "plastic_kg": plastic,
                "sold_kg": sold,
                "revenue": revenue,
                "paid_to_women": round(revenue * 0.7, 1),
                "women_working": count(8),
                "notes": None,
            }
        new, continuing = count(10), count(40)
        return {
            "period": period.key,
            "women_heads": count(50),
            "working_children": count(25),
            "school_dropouts": count(15),
            "families_reached": count(60),
            "new_beneficiaries": new,
            "continuing_beneficiaries": continuing,
            "notes": None,
        }

    def _checkin(self, association: Association, day: date) -> Event:
        rng = self.rng
        late = min(int(rng.expovariate(1.2)), 6, (day - self.first_day).days)
        visit = day - timedelta(days=late)
        activity = rng.choice(ACTIVITIES)
        challenges = rng.random() < 0.15
        answers: dict[str, Any] = {
            "visit_date": visit.isoformat(),
            "activity": activity,
            "place": {"lat": round(rng.uniform(13, 35), 6), "lon": round(rng.uniform(-9, 50), 6)}
            if rng.random() < 0.6
            else {"text": f"Village {rng.randrange(1, 60)}"},
            "people_reached": max(1, round(rng.gauss(12 * association.size, 4))),
            "had_challenges": challenges,
            "photos": [],
        }
        if activity == "other":
            answers["activity_other"] = "Community meeting"
        if challenges:
            answers["challenges"] = "Transport was difficult."
        return Event(self._moment(association, day), "checkin", association, None, answers)

    def events(self) -> Iterator[Event]:
        """Every report, day by day in submission order; exactly `checkins` check-ins."""
        done, cumulated = 0, 0.0
        for day in self._days():
            events = list(self.periodic.get(day, []))
            for association in self.associations:
                cumulated += self._weight(association, day)
                due = round(cumulated * self.checkins / self.weight)
                events += [self._checkin(association, day) for _ in range(due - done)]
                done = due
            events.sort(key=lambda e: e.submitted_at)
            yield from events


def store_history(engine: Engine, history: History, forms: dict[str, FormSpec]) -> int:
    """Write every report of `history`; returns how many."""
    rows: list[dict[str, Any]] = []
    stored = 0
    postgres = engine.dialect.name == "postgresql"
    write = _copy_rows if postgres else _insert_rows
    for number, event in enumerate(history.events(), start=1):
        association = event.association
        rows.append(
            {
                "id": number,
                "ref": f"{forms[event.form_id].prefix}-{number}",
                "form_id": event.form_id,
                "group_id": association.group_id,
                "organization_id": association.organization_id,
                "person_id": association.person_id,
                "period": event.period,
                "answers": event.answers,
                "submitted_at": event.submitted_at,
                "updated_at": event.submitted_at,
            }
        )
        if len(rows) == BATCH:
            write(engine, rows)
            stored += len(rows)
            rows = []
    if rows:
        write(engine, rows)
        stored += len(rows)
    if postgres:
        with engine.begin() as connection:
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('report', 'id'), :last)"),
                {"last": stored},
            )
            connection.execute(text("ANALYZE"))
    return stored


def _insert_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(Report.__table__), rows)  # type: ignore[arg-type]


def _copy_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            statement = f"COPY report ({', '.join(COLUMNS)}) FROM STDIN"
            with cursor.copy(statement) as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(
                        [json.dumps(row[c]) if c == "answers" else row[c] for c in COLUMNS]
                    )
        raw.commit()
    finally:
        raw.close()


# --- what is timed ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One group and the latest ended period of each kind, as the monitor would digest them."""

    key: str
    periods: dict[str, Period]


def plan(engine: Engine, today: date) -> list[Target]:
    """The groups, and the latest period of each kind that ended before `today`."""
    with Session(engine) as session:
        groups = session.exec(select(Group).where(col(Group.key).in_([g[0] for g in GROUPS]))).all()
        return [
            Target(g.key, {k: period_containing(k, today, g.week_start).previous() for k in KINDS})
            for g in sorted(groups, key=lambda g: g.key)
        ]


def digest_pass(
    engine: Engine, forms: dict[str, FormSpec], targets: list[Target], today: date
) -> tuple[float, list[Digest]]:
    """Seconds to build every digest of `targets` (weekly and monthly), and the digests."""
    with Session(engine) as session:
        groups = {g.key: g for g in session.exec(select(Group)).all()}
        start = time.perf_counter()
        digests = []
        for target in targets:
            group = groups[target.key]
            schedule = schedule_from(group.schedule)
            for kind in KINDS:
                digests.append(
                    build_digest(session, group, schedule, forms, kind, target.periods[kind], today)
                )
        return time.perf_counter() - start, digests


def chart_pass(digests: list[Digest], charts_dir: Path) -> float:
    start = time.perf_counter()
    for digest in digests:
        digest_chart(digest, translator(digest.group.language, digest.group.digits), charts_dir)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Bare:
    """A hand-written statement: the totals of one form of one group over its 8 periods."""

    group: str
    form: FormSpec
    sql: str
    params: dict[str, Any]
    periods: list[Period]


def bare_statements(
    engine: Engine, forms: dict[str, FormSpec], targets: list[Target]
) -> list[Bare]:
    sqlite = engine.dialect.name == "sqlite"

    def param(name: str) -> str:
        return f":{name}" if sqlite else f"%({name})s"

    def value(name: str) -> str:
        if sqlite:
            return f"CAST(json_extract(answers, '$.{name}') AS REAL)"
        return f"(answers ->> '{name}')::float"

    def moment(at: datetime) -> Any:
        # SQLite keeps UTC as text, the way SQLAlchemy writes it; PostgreSQL a timestamptz.
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else at

    with Session(engine) as session:
        groups = {g.key: g for g in session.exec(select(Group)).all()}
    statements = []
    for target in targets:
        group = groups[target.key]
        for form_id, form_schedule in schedule_from(group.schedule).forms.items():
            form = forms[form_id]
            periods = [target.periods[form_schedule.every]]
            for _ in range(HISTORY - 1):
                periods.insert(0, periods[0].previous())
            sums = ", ".join(f"COALESCE(SUM({value(f.name)}), 0)" for f in numeric_fields(form))
            params: dict[str, Any] = {"group_id": group.id, "form_id": form.id}
            where = f"group_id = {param('group_id')} AND form_id = {param('form_id')}"
            if form.period != "none":
                params.update({f"p{i}": p.key for i, p in enumerate(periods)})
                keys = ", ".join(param(f"p{i}") for i in range(len(periods)))
                sql = (
                    f"SELECT period, COUNT(*), {sums} FROM report "
                    f"WHERE {where} AND period IN ({keys}) GROUP BY period"
                )
            else:
                # Each JSON value read once (MATERIALIZED), then bucketed by visit week.
                dated = next(f.name for f in form.fields if f.type == "date")
                visit = (
                    f"json_extract(answers, '$.{dated}')" if sqlite else f"(answers ->> '{dated}')"
                )
                fields = numeric_fields(form)
                read = ", ".join(f"{value(f.name)} AS v{i}" for i, f in enumerate(fields))
                carried = ", ".join(f"v{i}" for i in range(len(fields)))
                summed = ", ".join(f"COALESCE(SUM(v{i}), 0)" for i in range(len(fields)))
                cases = []
                for i, p in enumerate(periods):
                    params[f"s{i}"] = p.start.isoformat()
                    params[f"e{i}"] = p.end.isoformat()
                    params[f"m{i}"] = moment(local_midnight(p.start, group.timezone))
                    cases.append(
                        f"WHEN day BETWEEN {param(f's{i}')} AND {param(f'e{i}')} "
                        f"AND submitted_at >= {param(f'm{i}')} THEN {i}"
                    )
                sql = (
                    f"WITH found AS MATERIALIZED (SELECT submitted_at, {visit} AS day, {read} "
                    f"FROM report WHERE {where} AND submitted_at >= {param('m0')}) "
                    f"SELECT bucket, COUNT(*), {summed} FROM ("
                    f"SELECT CASE {' '.join(cases)} END AS bucket, {carried} FROM found"
                    ") AS bucketed WHERE bucket IS NOT NULL GROUP BY bucket"
                )
            statements.append(Bare(group.key, form, sql, params, periods))
    return statements


Totals = dict[tuple[str, str], dict[str, dict[str, float]]]  # (group, form) -> period -> totals


def bare_pass(engine: Engine, statements: list[Bare]) -> tuple[float, Totals]:
    """Seconds to run every bare statement on the DB-API connection, and what they found."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        start = time.perf_counter()
        results = []
        for bare in statements:
            cursor.execute(bare.sql, bare.params)
            results.append(cursor.fetchall())
        elapsed = time.perf_counter() - start
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    totals: Totals = {}
    for bare, rows in zip(statements, results, strict=True):
        names = ["reports"] + [f.name for f in numeric_fields(bare.form)]
        by_period = totals.setdefault((bare.group, bare.form.id), {})
        for row in rows:
            key = bare.periods[row[0]].key if bare.form.period == "none" else row[0]
            by_period[key] = {n: float(v) for n, v in zip(names, row[1:], strict=True)}
    return elapsed, totals


def disagreements(digests: list[Digest], totals: Totals) -> list[str]:
    """Where a digest's history differs from the bare statements' totals."""
    found = []
    for digest in digests:
        for part in digest.forms:
            bare = totals[(digest.group.key, part.form.id)]
            for period, values in part.history:
                expected = bare.get(period.key) or dict.fromkeys(values, 0.0)
                for name, got in values.items():
                    if abs(got - expected[name]) > 1e-6 * max(1.0, abs(got)):
                        found.append(
                            f"{digest.group.key} {part.form.id} {period.key} {name}: "
                            f"digest {got}, bare SQL {expected[name]}"
                        )
    return found


# --- diagnostics -----------------------------------------------------------------------------


def explain(engine: Engine, statements: list[Bare]) -> str:
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    out = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for bare in statements:
            if bare.group != statements[0].group:
                break
            cursor.execute(prefix + bare.sql, bare.params)
            lines = [str(row[-1] if sqlite else row[0]) for row in cursor.fetchall()]
            out.append(f"-- {bare.group} {bare.form.id}\n  " + "\n  ".join(lines))
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return "\n".join(out)


def profile(engine: Engine, forms: dict[str, FormSpec], targets: list[Target], today: date) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    digest_pass(engine, forms, targets, today)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


# --- the run ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def run(args: argparse.Namespace, url: str, shown: str, tmp: Path) -> int:
    print(f"database: {shown}")
    forms = load_forms()
    today = datetime.now(UTC).date()
    engine = open_database(url)
    try:
        associations = prepare_network(engine)
        start = time.perf_counter()
        history = History(associations, args.reports, args.years, today)
        stored = store_history(engine, history, forms)
        generated = time.perf_counter() - start
        checkins_a_day = history.checkins / len(associations) / history.days
        print(
            f"history: {args.years} years to {today - timedelta(days=1)}, {len(GROUPS)} groups, "
            f"{len(associations)} associations: {stored:,} reports ({history.periodic_count:,} "
            f"weekly recycling and monthly beneficiaries, {history.checkins:,} check-ins, "
            f"{checkins_a_day:.1f} a day per association)"
        )
        print(f"generated and stored in {generated:.1f} s ({stored / generated:,.0f} rows/s)")

        targets = plan(engine, today)
        statements = bare_statements(engine, forms, targets)
        print(
            f"\ndigests of the latest ended week and month of each group "
            f"({len(targets) * len(KINDS)} digests, {HISTORY} periods of history each); "
            f"bare SQL: {len(statements)} statements; median of {args.repeats} passes "
            f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
        )
        digest_pass(engine, forms, targets, today)  # warm-up: statements built, pages read
        bare_pass(engine, statements)
        digest_times, bare_times, chart_times = [], [], []
        digests: list[Digest] = []
        totals: Totals = {}
        for _ in range(args.repeats):  # interleaved, so that both see the same machine
            seconds, digests = digest_pass(engine, forms, targets, today)
            digest_times.append(seconds)
            seconds, totals = bare_pass(engine, statements)
            bare_times.append(seconds)
        for _ in range(min(args.repeats, 3)):
            chart_times.append(chart_pass(digests, tmp / "charts"))
        digest_s = statistics.median(digest_times)
        bare_s = statistics.median(bare_times)
        chart_s = statistics.median(chart_times)
        ratio = digest_s / bare_s
        passes = ", ".join(f"{t * 1000:.0f}" for t in digest_times)
        print(f"  digests (build_digest)   {ms(digest_s):>10}   (passes, ms: {passes})")
        passes = ", ".join(f"{t * 1000:.0f}" for t in bare_times)
        print(f"  bare SQL aggregates      {ms(bare_s):>10}   (passes, ms: {passes})")
        print(
            f"  ratio digests/bare       {ratio:>10.2f}   target <= {TARGET_RATIO:g}  "
            f"{verdict(ratio <= TARGET_RATIO)}"
        )
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            print(
                f"  digests on SQLite        {ms(digest_s):>10}   target <= "
                f"{TARGET_SQLITE_S * 1000:.0f} ms  {verdict(digest_s <= TARGET_SQLITE_S)}"
            )
        print(
            f"  charts (apart, not SQL)  {ms(chart_s):>10}   "
            f"({len(digests)} charts, {ms(chart_s / len(digests))} each)"
        )
        wrong = disagreements(digests, totals)
        print(f"  digest totals = bare SQL totals: {'yes' if not wrong else 'NO'}")
        for line in wrong[:10]:
            print(f"    {line}")
        if args.explain:
            print("\nquery plans of the bare statements (first group)")
            print(explain(engine, statements))
        if args.profile:
            print("\ncProfile of one pass of the digests")
            print(profile(engine, forms, targets, today))
    finally:
        engine.dispose()
    return 1 if wrong or stored != args.reports else 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.digests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reports", type=int, default=1_000_000, help="reports (1000000)")
    parser.add_argument("--years", type=int, default=10, help="years of history (10)")
    parser.add_argument("--repeats", type=int, default=11, help="timed passes (11)")
    parser.add_argument(
        "--database",
        help="a database URL; PostgreSQL gets a fresh schema (default: a temporary SQLite file)",
    )
    parser.add_argument("--explain", action="store_true", help="print the bare query plans")
    parser.add_argument("--profile", action="store_true", help="cProfile a pass of the digests")
    args = parser.parse_args(argv)
    if args.reports < 1 or args.years < 1 or args.repeats < 1:
        parser.error("--reports, --years and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with (
        tempfile.TemporaryDirectory(prefix="sanad-bench-") as tmp,
        database(args.database, Path(tmp)) as (url, shown),
    ):
        return run(args, url, shown, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
