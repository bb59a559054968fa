"""The console, as someone trying Sanad types into it: `python -m bot demo` and
`python -m bot console`, run as real processes with what they type piped to them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, select

from bot.app import Sanad
from bot.channels.console import ConsoleChat
from storage.db import make_engine, transaction
from storage.models import Report
from tests.harness import invite

ROOT = Path(__file__).resolve().parent.parent


def sanad(tmp_path: Path, *arguments: str, typing: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGUMENTS` in `tmp_path` with `typing` as its input, one per line."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TELEGRAM_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}",
        DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    typed = "".join(line + "\n" for line in typing)
    result = subprocess.run(
        [sys.executable, "-m", "bot", *arguments],
        input=typed,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def demo(tmp_path: Path, typing: list[str]) -> str:
    """What `python -m bot demo` shows for `typing`, on a demo database in `tmp_path`."""
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    return sanad(tmp_path, "demo", "--database", database, typing=typing).stdout


def reports(database: Path) -> list[Report]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            return list(session.exec(select(Report).order_by(Report.id)).all())
    finally:
        engine.dispose()


def test_demo_recycling_report_with_numbers_typed_as_on_a_phone(tmp_path: Path) -> None:
    shown = demo(
        tmp_path,
        [
            "2",  # English
            "3",  # Recycling output
            "1",  # this week
            "١٢٫٥",  # paper, in Arabic digits with the Arabic decimal separator
            "12,5 kg",  # aluminium, with a decimal comma and the unit
            "3",  # plastic
            "10",  # sold
            "5.5",  # revenue
            "4",  # paid to the women
            "7",  # women working
            "1",  # notes: Skip
            "1",  # Confirm and send
        ],
    )

    assert "demo" in shown and "2) English" in shown
    assert "From now on I will write to you in English." in shown
    assert "3) Recycling output" in shown
    assert "(2 of 9) Paper collected (kg)" in shown
    assert "Paper: 12.5 kg" in shown
    assert "Aluminium: 12.5 kg" in shown
    assert "Saved. Your reference number is REC-" in shown

    [report] = reports(tmp_path / "demo.db")
    assert report.ref is not None and report.ref.startswith("REC-")
    assert report.ref in shown
    assert float(report.answers["paper_kg"]) == 12.5
    assert float(report.answers["aluminium_kg"]) == 12.5
    assert report.answers["women_working"] == 7
    assert report.answers.get("notes") is None

    again = demo(tmp_path, [])
    assert again.startswith("Welcome back, demo.")
    assert "1) Beneficiary counts" in again
    assert "invitation" not in again and "Choose your language" not in again


def test_demo_check_in_with_a_photo_file_and_a_typed_location(tmp_path: Path) -> None:
    photo = tmp_path / "Visit.JPG"
    photo.write_bytes(b"\xff\xd8\xff\xe0 a small jpeg")

    shown = demo(
        tmp_path,
        [
            "2",  # English
            "2",  # Field check-in
            "1",  # Today
            "1",  # Home visit
            "26.2,50.6",  # where: latitude,longitude
            "12",  # families visited
            "2",  # challenges? No
            str(photo),  # the photo, as a file path
            "1",  # Done
            "1",  # Confirm and send
        ],
    )

    assert "1 photo received." in shown
    assert "Saved. Your reference number is CHK-" in shown

    [kept] = list((tmp_path / "data" / "media").iterdir())
    assert kept.read_bytes() == photo.read_bytes()
    assert kept.suffix == ".jpg" and kept.name != photo.name
    [report] = reports(tmp_path / "demo.db")
    assert report.form_id == "checkin"
    assert report.answers["place"] == {"lat": 26.2, "lon": 50.6}
    assert report.answers["people_reached"] == 12
    [stored] = report.answers["photos"]
    assert Path(stored["path"]).resolve() == kept.resolve()


def test_a_photo_path_in_quotes_as_a_terminal_pastes_it(tmp_path: Path) -> None:
    photo = tmp_path / "field visit.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 another jpeg")

    shown = demo(tmp_path, ["2", "2", "1", "1", "Sitra market", "5", "2", f"'{photo}' ", "1", "1"])

    assert "Saved. Your reference number is CHK-" in shown
    [report] = reports(tmp_path / "demo.db")
    assert report.answers["place"] == {"text": "Sitra market"}
    [kept] = list((tmp_path / "data" / "media").iterdir())
    assert report.answers["photos"] == [{"path": str(kept)}]


def test_someone_not_registered_is_asked_for_an_invitation(tmp_path: Path) -> None:
    result = sanad(
        tmp_path, "console", "--as", "someone", "--language", "en", typing=["hello", "/checkin"]
    )

    assert "Please send the invitation code your coordinator gave you." in result.stdout
    assert "This invitation code is not valid." in result.stdout
    assert "REC-" not in result.stdout and "CHK-" not in result.stdout


def test_the_console_ends_quietly_at_end_of_input_or_quit(tmp_path: Path) -> None:
    nothing = sanad(tmp_path, "console", "--as", "someone", "--language", "en", typing=[])
    assert "invitation code" in nothing.stdout

    quit_first = sanad(
        tmp_path, "console", "--as", "someone", "--language", "en", typing=["/quit", "hello"]
    )
    assert "is not valid" not in quit_first.stdout


class Console:
    """The console chat in this process, on the test database: what each typed line shows."""

    def __init__(self, sanad: Sanad, person: str, language: str = "ar") -> None:
        self.out = io.StringIO()
        self.chat = ConsoleChat(
            sanad.dispatcher, person, sanad.settings.media_dir, self.out, language
        )

    def types(self, line: str) -> str:
        before = len(self.out.getvalue())
        self.chat.send(line)
        return self.out.getvalue()[before:]


def test_options_are_chosen_with_arabic_digits_too(sanad: Sanad) -> None:
    fatima = Console(sanad, "fatima")
    assert "2) English" in fatima.types(f"/start {invite(sanad, 'bh_sitra_women')}")

    assert "From now on I will write to you in English." in fatima.types("٢")
    assert "Please choose one of the options." in fatima.types("²")
    assert "(1 of 9) For which week?" in fatima.types("٣")


def test_a_dropped_photo_path_with_escaped_spaces(sanad: Sanad, tmp_path: Path) -> None:
    photo = tmp_path / "my visit.png"
    photo.write_bytes(b"\x89PNG a small png")
    fatima = Console(sanad, "fatima")
    fatima.types(f"/start {invite(sanad, 'bh_sitra_women')}")
    for line in ["2", "2", "1", "1", "Sitra", "5", "2"]:
        fatima.types(line)

    assert "1 photo received." in fatima.types(str(photo).replace(" ", "\\ ") + " ")
    fatima.types("1")
    assert "Saved. Your reference number is CHK-" in fatima.types("1")

    [kept] = list(sanad.settings.media_dir.iterdir())
    assert kept.suffix == ".png" and kept.read_bytes() == photo.read_bytes()
    with transaction(sanad.engine) as session:
        [report] = session.exec(select(Report)).all()
    assert report.answers["photos"] == [{"path": str(kept)}]


def test_killed_in_the_middle_of_a_form_the_worker_resumes_where_they_stopped(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("TELEGRAM_")}
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--database", database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        cwd=tmp_path,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None

    def answer(line: str, then: str) -> None:
        process.stdin.write(line + "\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        for shown in process.stdout:  # type: ignore[union-attr]
            if then in shown:
                return
        raise AssertionError(f"never saw {then!r}")

    try:
        answer("2", "What would you like to do?")  # English
        answer("3", "For which week?")  # Recycling output
        answer("1", "Paper collected")
        answer("40", "Aluminium collected")  # stored before it asks the next
        process.kill()  # kill -9, in the middle of the form
    finally:
        process.wait(timeout=30)
    shown = demo(tmp_path, ["/recycling", "1", "", ""])
    assert "unfinished report, Recycling output, with 2 answers" in shown
    assert "(3 of 9) Aluminium collected (kg)" in shown


def test_after_help_the_numbers_still_choose_the_options_shown_before(sanad: Sanad) -> None:
    fatima = Console(sanad, "fatima")
    fatima.types(f"/start {invite(sanad, 'bh_sitra_women')}")
    menu = fatima.types("2")  # English
    assert "3) Recycling output" in menu

    assert "/recycling" in fatima.types("/help")  # a list of commands, no options
    assert "(1 of 9) For which week?" in fatima.types("3")


def test_on_a_number_question_a_typed_number_is_the_answer_and_hash_chooses(
    sanad: Sanad,
) -> None:
    fatima = Console(sanad, "fatima")
    fatima.types(f"/start {invite(sanad, 'bh_sitra_women')}")
    fatima.types("2")  # English
    fatima.types("3")  # Recycling output
    fatima.types("1")  # this week

    which = fatima.types("1,500")
    assert "Did you mean 1.5 or 1,500?" in which
    assert "#1) 1.5" in which and "#2) 1,500" in which
    assert "(3 of 9) Aluminium collected (kg)" in fatima.types("1")  # the answer 1 kg

    assert "Did you mean" in fatima.types("2,500")
    assert "(4 of 9)" in fatima.types("#2")  # 2,500 kg, chosen by its mark

    for typed in ("3", "10", "5.5", "4", "7"):  # plastic, sold, revenue, paid, women
        fatima.types(typed)
    summary = fatima.types("1")  # notes: a text question with Skip as option 1
    assert "Paper: 1 kg" in summary
    assert "Aluminium: 2,500 kg" in summary
    assert "Saved. Your reference number is REC-" in fatima.types("1"), "numbers choose again"
