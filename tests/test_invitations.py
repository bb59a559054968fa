"""Invitation codes as an attacker and as a busy coordinator meet them: codes too long to
guess, attempts limited per chat and overall (in the database, so across processes), codes
that always expire and can be withdrawn, roles only where they belong, and many people at once
from the chat or from a table."""

from __future__ import annotations

import csv
import logging
import math
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import Sanad
from storage import invites
from storage.db import transaction
from storage.invites import (
    ATTEMPT_WINDOW,
    CODE_ALPHABET,
    CODE_LENGTH,
    MAX_FAILURES_OVERALL,
    MAX_FAILURES_PER_CHAT,
    InviteFailure,
    InviteRefused,
    RoleMismatch,
    new_invite,
    shown,
)
from storage.models import Invite, Organization, Person
from tests.conftest import Clock
from tests.harness import Telegram, invite
from tests.test_cli import EXAMPLE_NETWORK, Shell, invited, shell  # noqa: F401  (fixture)


def organization(sanad: Sanad, key: str) -> Organization:
    with transaction(sanad.engine) as session:
        return session.exec(select(Organization).where(Organization.key == key)).one()


def test_a_code_carries_at_least_60_bits_and_no_look_alike_characters() -> None:
    assert CODE_LENGTH * math.log2(len(CODE_ALPHABET)) >= 60
    assert not set("0O1IL") & set(CODE_ALPHABET)
    assert shown("ABCDEFGHJKMNPQR") == "ABCDE-FGHJK-MNPQR"


def test_codes_do_not_repeat(sanad: Sanad, clock: Clock) -> None:
    with transaction(sanad.engine) as session:
        sitra = session.exec(select(Organization).where(Organization.key == "bh_sitra_women")).one()
        codes = {new_invite(session, sitra, "worker", clock()).code for _ in range(500)}
    assert len(codes) == 500 and all(len(c) == CODE_LENGTH for c in codes)


@pytest.mark.parametrize("days", [0, 91, 365])
def test_an_invitation_expires_within_90_days(sanad: Sanad, clock: Clock, days: int) -> None:
    sitra = organization(sanad, "bh_sitra_women")
    with transaction(sanad.engine) as session, pytest.raises(InviteRefused, match="90 days"):
        new_invite(session, sitra, "worker", clock(), timedelta(days=days))


@pytest.mark.parametrize(
    "key,role,needed",
    [
        ("bh_rural_girls", "coordinator", "supportive organization"),
        ("bh_young_ladies", "worker", "partner association"),
        ("bh_sitra_women", "admin", "the network"),
        ("arab_network", "worker", "partner association"),
    ],
)
def test_a_role_is_invited_only_where_it_belongs(
    sanad: Sanad, clock: Clock, key: str, role: str, needed: str
) -> None:
    with transaction(sanad.engine) as session:
        chosen = session.exec(select(Organization).where(Organization.key == key)).one()
        with pytest.raises(RoleMismatch, match=needed):
            new_invite(session, chosen, role, clock())
    with transaction(sanad.engine) as session:
        assert session.exec(select(Invite)).all() == []


async def test_a_chat_that_guesses_is_stopped_and_may_try_again_after_the_cool_down(
    sanad: Sanad, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    code = invite(sanad, "bh_sitra_women")
    async with Telegram(sanad) as telegram:
        guesser = telegram.person(501, "Guesser", language="en")
        await guesser.says("/start")
        guesses = [f"AAAAA-BBBBB-CCCC{n}" for n in range(2, 2 + MAX_FAILURES_PER_CHAT)]
        with caplog.at_level(logging.WARNING):
            for guess in guesses:
                await guesser.says(guess)
                assert "not valid" in guesser.last
        await guesser.says(code)  # the right code, but this chat has guessed too often
        assert "Too many codes that do not work" in guesser.last
        assert "15 minutes" in guesser.last
        other = telegram.person(502, "Other", language="en")
        await other.says("/start AAAAA-BBBBB-CCCCC")
        assert "not valid" in other.last, "another chat is not held back by this one"

        clock.advance(minutes=15)
        await guesser.says(code)
        assert "Welcome to Sanad" in guesser.everything
    logged = caplog.text
    assert "invitation refused (unknown)" in logged
    assert code not in logged and not any(g.replace("-", "") in logged for g in guesses)
    assert not any(g in logged for g in guesses)


async def test_when_everyone_guesses_registration_pauses(sanad: Sanad, clock: Clock) -> None:
    code = invite(sanad, "bh_sitra_women")
    with transaction(sanad.engine) as session:  # failures from many chats, other processes
        for n in range(MAX_FAILURES_OVERALL):
            session.add(InviteFailure(chat_key=f"telegram:{n}", failed_at=clock(), reason="x"))
    async with Telegram(sanad) as telegram:
        newcomer = telegram.person(503, "Newcomer", language="en")
        await newcomer.says(f"/start {code}")
        assert "Registration is paused for 15 minutes" in newcomer.last
        clock.advance(minutes=ATTEMPT_WINDOW.total_seconds() / 60)
        await newcomer.says(f"/start {code}")
        assert "Welcome to Sanad" in newcomer.everything


async def test_a_withdrawn_code_registers_nobody(sanad: Sanad, clock: Clock) -> None:
    code = invite(sanad, "bh_sitra_women")
    with transaction(sanad.engine) as session:
        assert invites.revoke_invite(session, code.lower(), clock()) is not None
        assert invites.revoke_invite(session, code, clock()) is None, "withdrawn once"
    async with Telegram(sanad) as telegram:
        person = telegram.person(504, "Late", language="en")
        await person.says(f"/start {code}")
        assert "withdrawn" in person.last
    with transaction(sanad.engine) as session:
        assert session.exec(select(Person).where(Person.address == "504")).first() is None


async def test_a_coordinator_invites_several_people_in_one_message(
    sanad: Sanad, clock: Clock
) -> None:
    async with Telegram(sanad) as telegram:
        huda = telegram.person(510, "Huda", language="en")
        await huda.says(f"/start {invite(sanad, 'bh_young_ladies', 'coordinator')}")
        await huda.taps("English")
        await huda.says("/invite")
        await huda.taps("Rural Girls Renaissance Association")
        assert "Send their names, one per line" in huda.last
        await huda.says("Mariam Ali\nZainab Hasan\n\nFatima Yusuf")
        answer = huda.everything
        assert answer.count("Invitation for") == 3 and answer.count("To forward to") == 3
        assert "Invitation for Mariam Ali, field worker of Rural Girls" in answer
        assert "3 invitations made." in answer
        with transaction(sanad.engine) as session:
            named = session.exec(select(Invite).where(col(Invite.name).is_not(None))).all()
        assert sorted(i.name or "" for i in named) == ["Fatima Yusuf", "Mariam Ali", "Zainab Hasan"]
        zainab_code = next(i.code for i in named if i.name == "Zainab Hasan")

        # Too many names at once: nothing is made, and the question is asked again.
        await huda.says("/invite")
        await huda.taps("Rural Girls Renaissance Association")
        await huda.says("\n".join(f"Person {n}" for n in range(21)))
        assert "between 1 and 20 names" in huda.last
        with transaction(sanad.engine) as session:
            assert len(session.exec(select(Invite)).all()) == 4  # Huda's own + 3

        zainab = telegram.person(511, "zz_telegram_name", language="en")
        await zainab.says(f"/start {zainab_code}")
        with transaction(sanad.engine) as session:
            person = session.exec(select(Person).where(Person.address == "511")).one()
        assert person.display_name == "Zainab Hasan", "the coordinator's name for her"


async def test_an_admin_lists_and_withdraws_open_codes_in_the_chat(
    sanad: Sanad, clock: Clock
) -> None:
    open_code = invite(sanad, "bh_sitra_women")
    async with Telegram(sanad) as telegram:
        nadia = telegram.person(520, "Nadia", language="en")
        await nadia.says(f"/start {invite(sanad, 'arab_network', 'admin')}")
        await nadia.taps("English")
        await nadia.says("/invite")
        await nadia.taps("Open invitations")
        assert "1 open invitation:" in nadia.last and shown(open_code) in nadia.last
        await nadia.taps("Withdraw 1")
        assert f"The code {shown(open_code)} was withdrawn" in nadia.everything
        assert "There is no open invitation." in nadia.everything
    with transaction(sanad.engine) as session:
        assert session.get(Invite, open_code).revoked_at is not None  # type: ignore[union-attr]


# The command line ------------------------------------------------------------------------


def test_the_cli_names_where_a_role_belongs(shell: Shell) -> None:  # noqa: F811
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    ran = shell.sanad("invite", "--org", "bh_rural_girls", "--role", "coordinator")
    assert ran.code == 2 and "code:" not in ran.out
    assert "a coordinator belongs to the supportive organization" in ran.err
    assert "invite a coordinator at bh_young_ladies" in ran.err
    ran = shell.sanad("invite", "--org", "bh_young_ladies", "--role", "worker")
    assert "bh_rural_girls, bh_sitra_women, bh_hamad_women" in ran.err
    ran = shell.sanad("invite", "--org", "bh_sitra_women", "--role", "admin")
    assert "invite a admin at arab_network" in ran.err or "at arab_network" in ran.err
    assert invited(shell.sanad("invite", "--org", "bh_young_ladies"))  # its role by default


def test_the_cli_lists_and_revokes_open_codes(shell: Shell) -> None:  # noqa: F811
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    first = invited(shell.sanad("invite", "--org", "bh_sitra_women", "--name", "Amal"))
    second = invited(shell.sanad("invite", "--org", "bh_young_ladies"))
    listed = shell.sanad("invite", "--list")
    assert shown(first) in listed.out and shown(second) in listed.out and "Amal" in listed.out
    assert "2 open invitation(s)" in listed.out

    revoked = shell.sanad("invite", "--revoke", shown(first).lower())
    assert revoked.code == 0 and f"withdrawn: {shown(first)}" in revoked.out
    assert shown(first) not in shell.sanad("invite", "--list").out
    again = shell.sanad("invite", "--revoke", first)
    assert again.code == 2 and "no open invitation" in again.err


def write_people(path: Path, rows: list[list[str]]) -> None:
    header = ["name", "organization", "role", "language", "channel", "phone"]
    if path.suffix == ".xlsx":
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        assert sheet is not None
        for row in [header, *rows]:
            sheet.append(row)
        for cells in sheet.iter_rows():
            for cell in cells:
                cell.data_type = "s"  # typed text, as a person enters a name
        workbook.save(path)
    else:
        with path.open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows([header, *rows])


def read_back(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path).worksheets[0]
        rows = [["" if v is None else str(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    else:
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = list(csv.reader(file))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


PEOPLE = [
    ["مريم علي", "bh_rural_girls", "worker", "ar", "telegram", "+973 3300 0001"],
    ["Huda Salman", "bh_young_ladies", "", "en", "whatsapp", "+973 3300 0002"],
    ['=HYPERLINK("x")', "bh_sitra_women", "", "", "", ""],
]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_table_of_people_comes_back_with_codes_and_links(
    shell: Shell,  # noqa: F811
    suffix: str,
) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    shell.export("TELEGRAM_BOT_USERNAME", "sanad_bot")
    shell.export("WHATSAPP_NUMBER", "+973 1700 0000")
    table = shell.folder / f"people{suffix}"
    write_people(table, PEOPLE)

    ran = shell.sanad("invite", "--from-file", str(table))

    assert ran.code == 0, ran.err
    written = shell.folder / f"people-invitations{suffix}"
    assert "3 invitations written to" in ran.out
    assert stat.S_IMODE(written.stat().st_mode) == 0o600, "the file holds working codes"
    rows = read_back(written)
    assert [r["phone"] for r in rows][:2] == ["+973 3300 0001", "+973 3300 0002"]
    first, second, third = rows
    codes = [row["code"].replace("-", "") for row in rows]  # shown in groups of five
    assert [shown(code) for code in codes] == [row["code"] for row in rows]
    assert first["link"] == f"https://t.me/sanad_bot?start={codes[0]}"
    assert second["link"] == f"https://wa.me/97317000000?text=start%20{codes[1]}"
    assert third["name"] == '=HYPERLINK("x")', "text as given, never run as a formula"
    with shell.session() as session:
        stored = {i.code: i for i in session.exec(select(Invite)).all()}
    assert stored[codes[0]].name == "مريم علي" and stored[codes[0]].language == "ar"
    assert stored[codes[1]].role == "coordinator", "the supportive organization's role"
    assert stored[codes[2]].role == "worker"


def test_a_csv_written_with_semicolons_comes_back_with_semicolons(shell: Shell) -> None:  # noqa: F811
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    table = shell.folder / "people.csv"
    table.write_text("name;organization\nAmal;bh_sitra_women\n", encoding="utf-8")
    assert shell.sanad("invite", "--from-file", str(table), "-o", "out.csv").code == 0
    header, row = (shell.folder / "out.csv").read_text(encoding="utf-8-sig").splitlines()
    assert header == "name;organization;code;link;expires"
    assert row.startswith("Amal;bh_sitra_women;")


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_table_with_bad_rows_makes_no_invitation_and_names_each_line(
    shell: Shell,  # noqa: F811
    suffix: str,
) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    table = shell.folder / f"people{suffix}"
    write_people(
        table,
        [
            PEOPLE[0],
            ["", "bh_rural_girls", "", "", "", ""],
            ["Karim", "bh_rural", "", "", "", ""],
            ["Sara", "bh_rural_girls", "coordinator", "", "", ""],
            ["Omar", "bh_hamad_women", "", "de", "", ""],
            ["Lina", "bh_hamad_women", "", "", "sms", ""],
        ],
    )

    ran = shell.sanad("invite", "--from-file", str(table))

    assert ran.code == 2 and "nothing was done" in ran.err
    assert "line 3: the name is empty" in ran.err
    assert "line 4: no organization 'bh_rural'" in ran.err
    assert "line 5: a coordinator belongs to the supportive organization" in ran.err
    assert "line 6: unknown language 'de'" in ran.err
    assert "line 7: unknown channel 'sms'" in ran.err
    assert "line 2" not in ran.err
    assert not (shell.folder / f"people-invitations{suffix}").exists()
    with shell.session() as session:
        assert session.exec(select(Invite)).all() == []


def test_a_table_that_cannot_be_written_back_leaves_no_invitation(shell: Shell) -> None:  # noqa: F811
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    table = shell.folder / "people.csv"
    write_people(table, PEOPLE)
    ran = shell.sanad("invite", "--from-file", str(table), "-o", "/proc/no-such/out.csv")
    assert ran.code == 2 and "cannot be written" in ran.err and "nothing was done" in ran.err
    with shell.session() as session:
        assert session.exec(select(Invite)).all() == []


def test_migration_0008_gives_codes_that_never_expired_an_expiry(database_url: str) -> None:
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from storage.db import alembic_config, make_engine, open_database

    engine = make_engine(database_url)
    config = alembic_config()
    made = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
        connection.execute(
            text(
                "INSERT INTO dev_group (key, names, country, timezone, language, currency, "
                "week_start, targets, schedule, active) VALUES ('g', '{}', 'BH', 'Asia/Bahrain', "
                "'ar', 'BHD', 6, '{}', '{}', true)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO organization (key, group_id, kind, names, placeholder, active) "
                "SELECT 'o', id, 'partner', '{}', false, true FROM dev_group"
            )
        )
        connection.execute(
            text(
                "INSERT INTO invite (code, organization_id, role, created_at) "
                "SELECT 'OLDCODE8', id, 'worker', :made FROM organization"
            ),
            {"made": made if database_url.startswith("postgres") else "2026-01-10 09:00:00"},
        )
    engine.dispose()
    engine = open_database(database_url)
    with transaction(engine) as session:
        old = session.get(Invite, "OLDCODE8")
        assert old is not None and old.expires_at == made + timedelta(days=90)
        assert old.revoked_at is None and old.name is None
        assert session.exec(select(InviteFailure)).all() == []
    engine.dispose()
