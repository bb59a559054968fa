"""Exports: the reports of a form as CSV or an XLSX workbook a coordinator can hand to donors."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlmodel import Session, select

from exports import Table, export, report_table, write_csv, write_xlsx
from exports.writers import sheet_title
from forms.display import header_label
from forms.loader import load_forms
from forms.schema import FormSpec
from locales import translator
from storage.db import open_database, transaction
from storage.models import Organization, Person
from storage.network import apply_network, read_network
from storage.reports import add_report

NETWORK = Path(__file__).resolve().parent.parent / "examples" / "network.yaml"
FORMS = load_forms()

# The first recycling report is sent at 22:30 UTC on Saturday 29 November: in Bahrain (UTC+3)
# it is already 01:30 on Monday the 30th.
LATE_EVENING_UTC = datetime(2026, 11, 29, 22, 30, tzinfo=UTC)


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    engine = open_database(f"sqlite:///{tmp_path / 'sanad.db'}")
    with transaction(engine) as session:
        apply_network(session, read_network(NETWORK))
    return engine


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    with transaction(engine) as session:
        fatima = person(session, "bh_rural_girls", "فاطمة", "1001")
        zainab = person(session, "bh_sitra_women", "زينب", "1002")
        amina = person(session, "ma_partner_1", "Amina", "1003")
        report(
            session,
            "recycling",
            fatima,
            LATE_EVENING_UTC,
            {
                "period": "2026-11-29",
                "paper_kg": 12.5,
                "aluminium_kg": 3.0,
                "plastic_kg": 7.25,
                "sold_kg": 20.0,
                "revenue": 15.5,
                "paid_to_women": 10.0,
                "women_working": 6,
                "notes": "تم البيع للمصنع",
            },
        )
        report(
            session,
            "recycling",
            zainab,
            datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
            {
                "period": "2026-11-22",
                "paper_kg": 40.0,
                "aluminium_kg": 0.0,
                "plastic_kg": 11.0,
                "sold_kg": 30.0,
                "revenue": 22.0,
                "paid_to_women": 18.5,
                "women_working": 9,
                "notes": None,
            },
        )
        report(
            session,
            "recycling",
            amina,
            datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
            {
                "period": "2026-11-23",
                "paper_kg": 5.0,
                "aluminium_kg": 1.5,
                "plastic_kg": 2.0,
                "sold_kg": 8.0,
                "revenue": 30.0,
                "paid_to_women": 20.0,
                "women_working": 4,
            },
        )
        report(
            session,
            "checkin",
            fatima,
            datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
            {
                "visit_date": "2026-11-28",
                "activity": "other",
                "activity_other": "=توزيع حقائب",
                "place": {"lat": 26.0667, "lon": 50.5577},
                "people_reached": 14,
                "had_challenges": True,
                "challenges": "المطر أخّر الجمع",
                "photos": [{"file_id": "AgADBAADq"}, {"file_id": "AgADBAADr"}],
            },
        )
        report(
            session,
            "checkin",
            zainab,
            datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
            {
                "visit_date": "2026-11-30",
                "activity": "home_visit",
                "place": {"text": "سترة"},
                "people_reached": 3,
                "had_challenges": False,
                "photos": None,
            },
        )
        yield session


def person(session: Session, organization_key: str, name: str, address: str) -> Person:
    organization = session.exec(
        select(Organization).where(Organization.key == organization_key)
    ).one()
    assert organization.id is not None
    someone = Person(
        channel="telegram",
        address=address,
        display_name=name,
        role="worker",
        organization_id=organization.id,
    )
    session.add(someone)
    session.flush()
    return someone


def report(
    session: Session, form_id: str, by: Person, when: datetime, answers: dict[str, Any]
) -> None:
    organization = session.get(Organization, by.organization_id)
    assert organization is not None and organization.id is not None and by.id is not None
    form = FORMS[form_id]
    add_report(
        session,
        form_id=form.id,
        prefix=form.prefix,
        group_id=organization.group_id,
        organization_id=organization.id,
        person_id=by.id,
        period=answers.get("period"),
        answers=answers,
        now=when,
    )


def table(session: Session, form_id: str, language: str = "ar", **filters: Any) -> Table:
    return report_table(session, FORMS[form_id], translator(language), **filters)


def by_header(table: Table, row: list[object]) -> dict[str, object]:
    return {column.header: value for column, value in zip(table.columns, row, strict=True)}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def field(form: FormSpec, name: str, language: str = "ar") -> str:
    return header_label(form.field(name), language)


# --- the table --------------------------------------------------------------------------


def test_one_row_per_report_oldest_first_with_fixed_columns_then_every_field(
    session: Session,
) -> None:
    recycling = table(session, "recycling", "en")

    headers = [column.header for column in recycling.columns]
    assert headers[:10] == [
        "Reference",
        "Group",
        "Currency",  # the form has money fields
        "Association",
        "Person",
        "Channel",
        "Period",
        "Period start",
        "Submitted at",
        "Updated at",
    ]
    assert headers[10:] == [header_label(spec, "en") for spec in FORMS["recycling"].fields]
    assert [row[0] for row in recycling.rows] == ["REC-3", "REC-2", "REC-1"]
    assert recycling.title == "Recycling output"


def test_values_keep_their_types_and_labels_are_in_the_language(session: Session) -> None:
    recycling = table(session, "recycling")
    fatima = by_header(recycling, recycling.rows[-1])

    assert fatima["المرجع"] == "REC-1"
    assert fatima["المجموعة"] == "المجموعة التنموية في البحرين"
    assert fatima["الجمعية"] == "جمعية نهضة فتاة الريف"
    assert fatima["الشخص"] == "فاطمة (#1)"
    assert fatima["الفترة"] == "2026-11-29"
    assert fatima["بداية الفترة"] == date(2026, 11, 29)
    assert fatima[field(FORMS["recycling"], "paper_kg")] == 12.5
    assert fatima[field(FORMS["recycling"], "women_working")] == 6
    assert type(fatima[field(FORMS["recycling"], "women_working")]) is int
    assert fatima[field(FORMS["recycling"], "notes")] == "تم البيع للمصنع"
    zainab = by_header(recycling, recycling.rows[0])
    assert zainab[field(FORMS["recycling"], "notes")] is None


def test_no_phone_number_or_chat_address_is_exported(session: Session) -> None:
    for form_id in ("recycling", "checkin"):
        cells = [str(value) for row in table(session, form_id).rows for value in row]
        assert not any(address in cell for cell in cells for address in ("1001", "1002"))


def test_checkin_answers_as_a_person_would_read_them(session: Session) -> None:
    checkin = table(session, "checkin", "en")
    first, second = (by_header(checkin, row) for row in checkin.rows)
    form = FORMS["checkin"]

    assert "Period" not in first  # a form without periods has no period columns
    assert first[field(form, "visit_date", "en")] == date(2026, 11, 28)
    assert first[field(form, "activity", "en")] == "Other"
    assert first[field(form, "place", "en")] == "26.0667,50.5577"
    assert first[field(form, "had_challenges", "en")] == "Yes"
    assert first[field(form, "photos", "en")] == "2: AgADBAADq AgADBAADr"
    assert second[field(form, "activity", "en")] == "Home visit"
    assert second[field(form, "activity_other", "en")] is None  # not asked
    assert second[field(form, "place", "en")] == "سترة"
    assert second[field(form, "had_challenges", "en")] == "No"
    assert second[field(form, "photos", "en")] is None
    arabic = by_header(table(session, "checkin"), table(session, "checkin").rows[0])
    assert arabic[field(form, "had_challenges")] == "نعم"
    assert arabic[field(form, "activity")] == "نشاط آخر"


def test_times_are_shown_in_the_zone_of_the_reports_group(session: Session) -> None:
    recycling = table(session, "recycling", "en")
    fatima = by_header(recycling, recycling.rows[-1])
    amina = by_header(recycling, recycling.rows[0])

    submitted = fatima["Submitted at"]
    assert isinstance(submitted, datetime)
    assert submitted.isoformat() == "2026-11-30T01:30:00+03:00"  # Asia/Bahrain
    assert fatima["Updated at"] == submitted
    morocco = ZoneInfo("Africa/Casablanca")  # its offset depends on the zone data in use
    assert amina["Submitted at"] == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert amina["Submitted at"].tzinfo == morocco  # type: ignore[union-attr]


def test_group_filter(session: Session) -> None:
    assert [row[0] for row in table(session, "recycling", group_key="morocco").rows] == ["REC-3"]
    assert len(table(session, "recycling", group_key="bahrain").rows) == 2
    assert table(session, "recycling", group_key="egypt").rows == []


def test_date_filter_is_inclusive_and_uses_the_local_date(session: Session) -> None:
    def refs(**dates: date) -> list[object]:
        return [row[0] for row in table(session, "recycling", **dates).rows]

    # REC-1 was sent on the 29th in UTC but on the 30th in Bahrain.
    assert refs(date_from=date(2026, 11, 30)) == ["REC-1"]
    assert refs(date_to=date(2026, 11, 29)) == ["REC-3", "REC-2"]
    assert refs(date_from=date(2026, 11, 25), date_to=date(2026, 11, 25)) == ["REC-2"]
    assert refs(date_from=date(2026, 11, 24), date_to=date(2026, 11, 30)) == [
        "REC-3",
        "REC-2",
        "REC-1",
    ]
    assert refs(date_from=date(2026, 12, 1)) == []


# --- CSV --------------------------------------------------------------------------------


def test_csv_round_trip_in_arabic(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "recycling.csv"

    written = export(session, FORMS, "recycling", "ar", "csv", path, group_key="bahrain")

    assert written == 2
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Arabic
    rows = read_csv(path)
    form = FORMS["recycling"]
    assert list(rows[0])[:10] == [
        "المرجع",
        "المجموعة",
        "العملة",
        "الجمعية",
        "الشخص",
        "القناة",
        "الفترة",
        "بداية الفترة",
        "وقت الإرسال",
        "وقت التحديث",
    ]
    fatima = rows[1]
    assert fatima["المرجع"] == "REC-1"
    assert fatima["القناة"] == "تيليجرام"  # stored without its channel: where she is reached
    assert fatima["بداية الفترة"] == "2026-11-29"
    assert fatima["وقت الإرسال"] == "2026-11-30T01:30:00+03:00"
    assert fatima[field(form, "paper_kg")] == "12.5"
    assert fatima[field(form, "plastic_kg")] == "7.25"
    assert fatima[field(form, "aluminium_kg")] == "3"  # a whole number, not 3.0
    assert fatima["العملة"] == "BHD"
    assert fatima[field(form, "revenue")] == "15.5"  # in the currency of its own row
    assert fatima[field(form, "women_working")] == "6"
    assert fatima[field(form, "notes")] == "تم البيع للمصنع"
    assert rows[0][field(form, "notes")] == ""


def test_csv_text_that_looks_like_a_formula_is_not_run(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "checkin.csv"
    export(session, FORMS, "checkin", "en", "csv", path)

    first = read_csv(path)[0]
    assert first[field(FORMS["checkin"], "activity_other", "en")] == "'=توزيع حقائب"


def test_csv_holds_one_form(session: Session, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="one form"):
        export(session, FORMS, None, "ar", "csv", out / "all.csv")
    with pytest.raises(ValueError, match="unknown form"):
        export(session, FORMS, "nothing", "ar", "csv", out / "x.csv")
    with pytest.raises(ValueError, match="unknown format"):
        export(session, FORMS, "checkin", "ar", "ods", out / "x.ods")
    assert not list(out.iterdir())


# --- XLSX -------------------------------------------------------------------------------


def test_xlsx_one_sheet_per_form_typed_cells_right_to_left(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "reports.xlsx"

    written = export(session, FORMS, None, "ar", "xlsx", path)

    assert written == 5
    workbook = load_workbook(path)
    assert workbook.sheetnames == [form.title.ar for form in FORMS.values()]
    sheet = workbook[FORMS["recycling"].title.ar]
    assert sheet.sheet_view.rightToLeft
    assert sheet.freeze_panes == "A2"
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "المرجع"
    assert all(cell.font.bold for cell in sheet[1])
    rows = {
        row[0]: dict(zip(header, row, strict=True))
        for row in sheet.iter_rows(min_row=2, values_only=True)
    }
    assert set(rows) == {"REC-1", "REC-2", "REC-3"}
    fatima = rows["REC-1"]
    assert fatima[field(FORMS["recycling"], "paper_kg")] == 12.5
    assert fatima[field(FORMS["recycling"], "women_working")] == 6
    assert fatima["وقت الإرسال"] == datetime(2026, 11, 30, 1, 30)  # Bahrain wall clock
    assert fatima["بداية الفترة"] == datetime(2026, 11, 29)  # openpyxl reads dates back so
    start = sheet.cell(row=2, column=header.index("بداية الفترة") + 1)
    assert start.is_date and start.number_format == "yyyy-mm-dd"
    submitted = sheet.cell(row=2, column=header.index("وقت الإرسال") + 1)
    assert submitted.is_date and "hh:mm" in submitted.number_format
    paper = sheet.cell(row=2, column=header.index(field(FORMS["recycling"], "paper_kg")) + 1)
    assert paper.data_type == "n"
    assert sheet.column_dimensions["A"].width >= len("REC-1")

    checkin = workbook[FORMS["checkin"].title.ar]
    other = checkin.cell(
        row=2,
        column=[c.value for c in checkin[1]].index(field(FORMS["checkin"], "activity_other")) + 1,
    )
    assert other.value == "=توزيع حقائب" and other.data_type == "s"  # text, not a formula


def test_xlsx_in_french_reads_left_to_right(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "recyclage.xlsx"

    assert export(session, FORMS, "recycling", "fr", "xlsx", path, group_key="morocco") == 1

    workbook = load_workbook(path)
    assert workbook.sheetnames == ["Production de recyclage"]
    sheet = workbook.active
    assert sheet is not None and not sheet.sheet_view.rightToLeft
    assert [cell.value for cell in sheet[2]][:5] == [
        "REC-3",
        "Groupe de développement du Maroc",
        "MAD",
        "Association Atlas (Marrakech)",
        "Amina (#3)",
    ]


def test_xlsx_with_no_reports_still_has_its_header(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    with transaction(engine) as session:
        write_xlsx([table(session, "beneficiaries")], path, right_to_left=True)
    sheet = load_workbook(path).active
    assert sheet is not None and sheet.max_row == 1


def test_csv_writer_on_its_own(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "checkin.csv"
    write_csv(table(session, "checkin", "fr"), path)
    assert read_csv(path)[1][field(FORMS["checkin"], "had_challenges", "fr")] == "Non"


def test_sheet_titles_are_valid_and_distinct() -> None:
    used: set[str] = set()
    assert sheet_title("Dons [2026]: kg/femme?", used) == "Dons 2026 kg femme"
    long = "أعداد المستفيدين من برنامج المجموعات التنموية"
    first, second = sheet_title(long, used), sheet_title(long, used)
    assert len(first) <= 31 and len(second) <= 31 and first != second
    assert second.endswith("(2)")


def test_an_export_of_two_groups_keeps_each_amount_beside_its_currency(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "recycling.csv"
    export(session, FORMS, "recycling", "en", "csv", path)  # Bahrain and Morocco together

    rows = read_csv(path)
    revenue = field(FORMS["recycling"], "revenue", "en")
    by_group = {(row["Group"], row["Currency"], row[revenue]) for row in rows}
    assert ("Morocco development group", "MAD", "30") in by_group
    assert ("Bahrain development group", "BHD", "15.5") in by_group
    assert {row["Currency"] for row in rows} == {"BHD", "MAD"}
