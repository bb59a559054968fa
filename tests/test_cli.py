"""The command line as whoever runs Sanad uses it: `setup`, `invite` and `run`, each called
the way `python -m bot` calls it, in a fresh folder with its own SQLite file."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from bot.cli import main
from storage.db import make_engine, transaction
from storage.models import Invite, Organization, Person, Report
from storage.people import remember
from storage.types import utcnow

EXAMPLE_NETWORK = Path(__file__).resolve().parent.parent / "examples" / "network.yaml"
TELEGRAM_VARIABLES = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_BOT_USERNAME",
    "TELEGRAM_BASE_URL",
    "TELEGRAM_BASE_FILE_URL",
)


@dataclass
class Ran:
    """What a command printed and how it ended."""

    code: int
    out: str
    err: str


class Shell:
    """A terminal in an empty folder: `python -m bot ...` with these environment variables."""

    def __init__(
        self, folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.folder = folder
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.database = folder / "sanad.db"
        monkeypatch.chdir(folder)
        for name in TELEGRAM_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{self.database}")
        monkeypatch.setenv("DATA_DIR", str(folder / "data"))

    def export(self, name: str, value: str) -> None:
        self.monkeypatch.setenv(name, value)

    def sanad(self, *arguments: str) -> Ran:
        """Run `python -m bot ARGUMENTS`; a SystemExit ends it as the interpreter would."""
        self.capsys.readouterr()
        try:
            code = main(list(arguments))
            message = None
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
            message = None if isinstance(stop.code, int | None) else str(stop.code)
        captured = self.capsys.readouterr()
        err = captured.err + (message + "\n" if message else "")
        return Ran(code or 0, captured.out, err)

    @contextmanager
    def session(self) -> Iterator[Session]:
        engine = make_engine(f"sqlite:///{self.database}")
        try:
            with transaction(engine) as session:
                yield session
        finally:
            engine.dispose()

    def organization(self, key: str) -> Organization:
        with self.session() as session:
            return session.exec(select(Organization).where(Organization.key == key)).one()


@pytest.fixture
def shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Shell]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield Shell(tmp_path, monkeypatch, capsys)
    root.handlers[:] = handlers  # `main` points logging at the (captured) stderr
    root.setLevel(level)


def network_copy(shell: Shell, edit: object = None) -> Path:
    """A copy of the example network file, edited by `edit(data)` if given."""
    data = yaml.safe_load(EXAMPLE_NETWORK.read_text(encoding="utf-8"))
    if callable(edit):
        edit(data)
    path = shell.folder / "network.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def bahrain(data: dict) -> dict:  # type: ignore[type-arg]
    return next(group for group in data["groups"] if group["key"] == "bahrain")


# --- setup --------------------------------------------------------------------------------


def test_setup_twice_changes_nothing_the_second_time(shell: Shell) -> None:
    first = shell.sanad("setup", str(EXAMPLE_NETWORK))
    assert first.code == 0, first.err
    added = re.fullmatch(r"network applied: (\d+) added, 0 changed, 0 retired\n", first.out)
    assert added and int(added[1]) > 20

    second = shell.sanad("setup", str(EXAMPLE_NETWORK))
    assert second.code == 0, second.err
    assert second.out == "network applied: 0 added, 0 changed, 0 retired\n"


def test_setup_after_an_edit_renames_adds_and_retires(shell: Shell) -> None:
    assert shell.sanad("setup", str(EXAMPLE_NETWORK)).code == 0
    rural = shell.organization("bh_rural_girls")
    with shell.session() as session:
        worker = Person(channel="console", address="amina", role="worker", organization_id=rural.id)
        session.add(worker)
        session.flush()
        session.add(
            Report(
                ref="REC-1",
                form_id="recycling",
                group_id=rural.group_id,
                organization_id=rural.id,
                person_id=worker.id,
                period="2026-W48",
                answers={"paper_kg": "40"},
            )
        )

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        partners = bahrain(data)["partners"]
        hamad = next(p for p in partners if p["key"] == "bh_hamad_women")
        hamad["names"]["en"] = "Hamad Town Women's Association"
        partners[:] = [p for p in partners if p["key"] != "bh_rural_girls"]
        partners.append(
            {
                "key": "bh_muharraq_women",
                "names": {
                    "ar": "جمعية المحرق النسائية",
                    "en": "Muharraq Women's Society",
                    "fr": "Association des femmes de Muharraq",
                },
            }
        )

    edited = shell.sanad("setup", str(network_copy(shell, edit)))
    assert edited.code == 0, edited.err
    assert edited.out == "network applied: 1 added, 1 changed, 1 retired\n"

    assert shell.organization("bh_hamad_women").names["en"] == "Hamad Town Women's Association"
    assert shell.organization("bh_muharraq_women").active
    assert not shell.organization("bh_rural_girls").active
    with shell.session() as session:
        [kept] = session.exec(select(Report)).all()
        assert (kept.ref, kept.organization_id, kept.answers) == (
            "REC-1",
            rural.id,
            {"paper_kg": "40"},
        )

    restored = shell.sanad("setup", str(EXAMPLE_NETWORK))
    assert restored.out == "network applied: 0 added, 2 changed, 1 retired\n"
    assert shell.organization("bh_rural_girls").active
    assert not shell.organization("bh_muharraq_women").active


def test_setup_with_an_unknown_time_zone_names_the_problem(shell: Shell) -> None:
    broken = network_copy(shell, lambda data: bahrain(data).update(timezone="Asia/Manamah"))

    ran = shell.sanad("setup", str(broken))

    assert ran.code != 0 and ran.out == ""
    assert "network.yaml" in ran.err
    assert "timezone" in ran.err and "unknown time zone 'Asia/Manamah'" in ran.err
    assert not shell.database.exists()


def test_setup_with_a_group_key_used_twice_is_refused(shell: Shell) -> None:
    def copy_bahrain(data: dict) -> None:  # type: ignore[type-arg]
        twin = yaml.safe_load(yaml.safe_dump(bahrain(data)))
        twin["supportive"]["key"] = "bh2_supportive"
        for number, partner in enumerate(twin["partners"]):
            partner["key"] = f"bh2_partner_{number}"
        data["groups"].append(twin)

    ran = shell.sanad("setup", str(network_copy(shell, copy_bahrain)))

    assert ran.code != 0
    assert "network.yaml" in ran.err and "bahrain" in ran.err


def test_setup_with_a_missing_file_says_so(shell: Shell) -> None:
    ran = shell.sanad("setup", "nowhere.yaml")
    assert ran.code != 0 and "nowhere.yaml" in ran.err and "Traceback" not in ran.err


def test_setup_with_a_network_file_not_in_utf8_says_so(shell: Shell) -> None:
    broken = shell.folder / "network.yaml"
    broken.write_bytes(EXAMPLE_NETWORK.read_text(encoding="utf-8").encode("cp1256", "replace"))

    ran = shell.sanad("setup", str(broken))

    assert ran.code != 0 and "network.yaml" in ran.err and "UTF-8" in ran.err


# --- invite -------------------------------------------------------------------------------


def invited(ran: Ran) -> str:
    match = re.search(r"^code: ([A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})$", ran.out, re.MULTILINE)
    assert match, ran.out + ran.err
    return match[1].replace("-", "")  # as stored and as the link carries it


def test_invite_prints_a_code_and_the_telegram_link(shell: Shell) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    shell.export("TELEGRAM_BOT_USERNAME", "sanad_bot")

    ran = shell.sanad("invite", "--org", "bh_sitra_women", "--role", "worker", "--expires", "7d")

    assert ran.code == 0, ran.err
    code = invited(ran)
    assert f"link: https://t.me/sanad_bot?start={code}\n" in ran.out
    with shell.session() as session:
        invite = session.get(Invite, code)
        assert invite is not None and invite.role == "worker" and invite.used_at is None
        assert invite.organization_id == shell.organization("bh_sitra_women").id
        assert invite.expires_at is not None
        assert abs(invite.expires_at - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)
    assert f"expires: {invite.expires_at:%Y-%m-%d %H:%M} UTC" in ran.out


def test_invite_reads_the_username_from_a_dot_env_file(shell: Shell) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    (shell.folder / ".env").write_text("TELEGRAM_BOT_USERNAME=@sitra_reports_bot\n")

    ran = shell.sanad("invite", "--org", "bh_young_ladies", "--role", "coordinator")

    assert f"link: https://t.me/sitra_reports_bot?start={invited(ran)}" in ran.out


def test_invite_without_a_username_explains_how_to_use_the_code(shell: Shell) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))

    ran = shell.sanad("invite", "--org", "bh_sitra_women", "--role", "worker")

    assert ran.code == 0, ran.err
    code = invited(ran)
    assert "t.me/" not in ran.out
    assert "TELEGRAM_BOT_USERNAME" in ran.out and f"send /start {code} to the bot" in ran.out


def test_invite_uses_the_username_the_bot_remembered(shell: Shell) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    with shell.session() as session:
        remember(session, "telegram_username", "x_bot")

    ran = shell.sanad("invite", "--org", "bh_young_ladies", "--role", "coordinator")

    assert f"link: https://t.me/x_bot?start={invited(ran)}\n" in ran.out


@pytest.mark.parametrize(
    "expires", ["soon", "7 days", "-1d", "0d", "0m", "never", "91d", "9999999d"]
)
def test_invite_with_a_bad_expiry_is_refused(shell: Shell, expires: str) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))

    ran = shell.sanad(
        "invite", "--org", "bh_sitra_women", "--role", "worker", f"--expires={expires}"
    )

    assert ran.code != 0 and "code:" not in ran.out
    assert "--expires" in ran.err and "7d" in ran.err
    with shell.session() as session:
        assert session.exec(select(Invite)).all() == []


def test_invite_for_an_unknown_association_is_refused(shell: Shell) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))

    ran = shell.sanad("invite", "--org", "bh_sitra", "--role", "worker")

    assert ran.code != 0 and "code:" not in ran.out
    assert "no organization 'bh_sitra'" in ran.err


def test_invite_before_setup_says_to_run_setup(shell: Shell) -> None:
    ran = shell.sanad("invite", "--org", "bh_sitra_women", "--role", "worker")
    assert ran.code != 0 and "python -m bot setup" in ran.err


def test_invite_for_a_retired_association_is_refused(shell: Shell) -> None:
    shell.sanad("setup", str(EXAMPLE_NETWORK))
    without_rural = network_copy(
        shell,
        lambda data: bahrain(data).update(
            partners=[p for p in bahrain(data)["partners"] if p["key"] != "bh_rural_girls"]
        ),
    )
    shell.sanad("setup", str(without_rural))

    ran = shell.sanad("invite", "--org", "bh_rural_girls", "--role", "worker")

    assert ran.code != 0 and "code:" not in ran.out
    assert "bh_rural_girls" in ran.err and "no longer in the network file" in ran.err


def test_invite_with_an_unknown_role_is_refused(shell: Shell) -> None:
    ran = shell.sanad("invite", "--org", "bh_sitra_women", "--role", "boss")
    assert ran.code == 2 and "invalid choice: 'boss'" in ran.err


# --- run ----------------------------------------------------------------------------------


def test_run_without_a_token_explains_botfather_and_the_console(shell: Shell) -> None:
    ran = shell.sanad("run")

    assert ran.code != 0 and ran.out == ""
    assert "TELEGRAM_BOT_TOKEN is not set" in ran.err
    assert "@BotFather" in ran.err and "/newbot" in ran.err
    assert "python -m bot demo" in ran.err
