"""Writing report tables to CSV (one form) or XLSX (one sheet per form) for coordinators.

Files are written next to their destination and moved into place, so an interrupted export
never leaves half a file under the requested name.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlmodel import Session

from exports.rows import Table, report_table
from forms.schema import FormSpec
from locales import translator

FORMATS = ("csv", "xlsx")
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
SHEET_TITLE_LIMIT = 31
#: Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def plain(value: object) -> str:
    """A value as plain text: dates in ISO form, numbers without exponent or grouping, whole
    numbers without a decimal part (40, not 40.0)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(
            value.to_integral_value() if value == value.to_integral_value() else value, "f"
        )
    return str(value)


def write_csv(table: Table, path: Path) -> None:
    """One header row, then the rows; UTF-8 with a BOM so that Excel reads Arabic right.

    Text that a spreadsheet would run as a formula gets a leading apostrophe.
    """
    with (
        _replacing(path) as temporary,
        temporary.open("w", encoding="utf-8-sig", newline="") as file,
    ):
        writer = csv.writer(file)
        writer.writerow([column.header for column in table.columns])
        for row in table.rows:
            writer.writerow(
                [
                    _csv_cell(value, column.kind)
                    for value, column in zip(row, table.columns, strict=True)
                ]
            )


def _csv_cell(value: object, kind: str) -> str:
    text = plain(value)
    if kind == "text" and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def write_xlsx(tables: list[Table], path: Path, *, right_to_left: bool) -> None:
    """One sheet per table: bold frozen header, typed cells, fitted widths, a filter."""
    from openpyxl import Workbook  # loaded only when a workbook is written
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    if not tables:
        raise ValueError("nothing to export: no tables")
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    used: set[str] = set()
    for table in tables:
        sheet = workbook.create_sheet(sheet_title(table.title or table.form_id, used))
        sheet.sheet_view.rightToLeft = right_to_left
        sheet.append([_xlsx_text(column.header) for column in table.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([_xlsx_value(value) for value in row])
        for index, column in enumerate(table.columns, start=1):
            letter = get_column_letter(index)
            number_format = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT}.get(column.kind)
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                if number_format and cell.value is not None:
                    cell.number_format = number_format
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # user text, not a formula
            values = [row[index - 1] for row in table.rows]
            sheet.column_dimensions[letter].width = _width(column.header, values, column.kind)
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
    with _replacing(path) as temporary:
        workbook.save(temporary)


#: The control characters an XLSX cell cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE,
#: repeated here so that openpyxl is imported only when a workbook is written).
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


def _xlsx_text(text: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _xlsx_value(value: object) -> object:
    if isinstance(value, datetime):
        # Excel has no time zones: the wall-clock time of the group's zone.
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, str):
        return _xlsx_text(value)
    return value


def _width(header: str, values: list[object], kind: str) -> float:
    if kind == "date":
        longest = 10
    elif kind == "datetime":
        longest = 16
    else:
        longest = max(
            (len(line) for value in values for line in plain(value).splitlines()), default=0
        )
    longest = max(longest, len(header))
    return float(min(max(longest + 2, 8), 60))


_NOT_IN_TITLES = re.compile(r"[\[\]:*?/\\]")


def sheet_title(title: str, used: set[str]) -> str:
    """A valid sheet name for `title` (at most 31 characters, none of []:*?/\\), not in `used`.

    Excel compares sheet names without case; the chosen name is added to `used`.
    """
    base = " ".join(_NOT_IN_TITLES.sub(" ", title).split()).strip("'").strip() or "Sheet"
    candidate = base[:SHEET_TITLE_LIMIT].strip()
    number = 1
    while candidate.casefold() in used:
        number += 1
        suffix = f" ({number})"
        candidate = base[: SHEET_TITLE_LIMIT - len(suffix)].strip() + suffix
    used.add(candidate.casefold())
    return candidate


def export(
    session: Session,
    forms: dict[str, FormSpec],
    form_id: str | None,
    language: str,
    fmt: str,
    path: Path,
    *,
    group_key: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> int:
    """Write the reports of one form (or of every form, XLSX only) to `path`.

    Headers and labels are in `language`; an Arabic workbook reads right to left. Returns
    how many report rows were written. Raises ValueError for an unknown form or format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    if form_id is not None and form_id not in forms:
        raise ValueError(f"unknown form {form_id!r}: known forms are {', '.join(forms)}")
    if form_id is None and fmt == "csv":
        raise ValueError("a CSV file holds one form: name the form")
    tr = translator(language)
    chosen = [forms[form_id]] if form_id is not None else list(forms.values())
    tables = [
        report_table(session, form, tr, group_key=group_key, date_from=date_from, date_to=date_to)
        for form in chosen
    ]
    if fmt == "csv":
        write_csv(tables[0], path)
    else:
        write_xlsx(tables, path, right_to_left=tr.direction == "rtl")
    return sum(len(table.rows) for table in tables)


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path in `path`'s folder that becomes `path` when the block succeeds."""
    path = Path(path)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    temporary = Path(name)  # mkstemp's mode, 0600: reports are read by their owner only
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
