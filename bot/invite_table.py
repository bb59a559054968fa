"""`python -m bot invite --from-file people.csv|people.xlsx`: one invitation per row.

The table has a header row with the columns name, organization (its key in the network file),
role (optional: the organization's role), language (ar, en, fr or empty) and channel
(telegram or whatsapp; empty is telegram), in any order and any case; other columns are kept.
Every row is checked first: one bad row and no invitation is made, and each problem is told
with its line number. Otherwise the same table is written back (same format) with each
person's code, link and expiry, in the same transaction as the invitations: a file that
cannot be written leaves no invitation behind. The written file holds working codes: it is
readable by its owner only.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from handlers.context import InviteLink
from storage.invites import (
    DEFAULT_VALIDITY,
    InviteRefused,
    check_role,
    new_invite,
    role_for,
    shown,
)
from storage.models import ROLES, Organization

REQUIRED = ("name", "organization")
OPTIONAL = ("role", "language", "channel")
ADDED = ("code", "link", "expires")
LANGUAGES = ("ar", "en", "fr")
CHANNELS = ("telegram", "whatsapp")
MAX_ROWS = 5000
MAX_NAME_LENGTH = 120


class TableError(Exception):
    """The table cannot be used; the message lists every problem with its line."""


@dataclass
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)  # (line, cells)
    delimiter: str = ","  # a CSV's, written back the same

    def column(self, name: str) -> int | None:
        folded = [cell.strip().casefold() for cell in self.header]
        return folded.index(name) if name in folded else None


@dataclass(frozen=True)
class Person:
    line: int
    name: str
    organization: Organization
    role: str
    language: str | None
    channel: str


def read_table(path: Path) -> Table:
    if path.suffix.lower() == ".xlsx":
        return _read_xlsx(path)
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    raise TableError(f"{path}: use a .csv or .xlsx file")


def _read_csv(path: Path) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not UTF-8 text; save it as CSV UTF-8") from error
    except OSError as error:
        raise TableError(f"{path}: cannot be read: {error.strerror or error}") from error
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)  # spreadsheets in French locales write ;
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    lines = list(reader)
    if not lines:
        raise TableError(f"{path}: empty; the first line names the columns")
    table = Table(lines[0], delimiter=delimiter)
    table.rows = [
        (n, row) for n, row in enumerate(lines[1:], start=2) if any(c.strip() for c in row)
    ]
    return table


def _read_xlsx(path: Path) -> Table:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises several kinds for a broken file
        raise TableError(f"{path}: not a readable .xlsx file ({error})") from error
    sheet = workbook.worksheets[0]
    rows = [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    if not rows:
        raise TableError(f"{path}: empty; the first row names the columns")
    table = Table(rows[0])
    table.rows = [
        (n, row) for n, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)
    ]
    return table


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check(session: Session, table: Table, path: Path) -> list[Person]:
    """Every row as a person to invite; TableError listing every problem otherwise."""
    missing = [name for name in REQUIRED if table.column(name) is None]
    if missing:
        raise TableError(
            f"{path}: line 1 must name the columns {', '.join(REQUIRED + OPTIONAL)}; "
            f"missing: {', '.join(missing)}"
        )
    if not table.rows:
        raise TableError(f"{path}: no people in the table")
    if len(table.rows) > MAX_ROWS:
        raise TableError(f"{path}: more than {MAX_ROWS} people; split the table")
    organizations = {o.key: o for o in session.exec(select(Organization)).all()}
    people: list[Person] = []
    problems: list[str] = []
    places = {name: table.column(name) for name in REQUIRED + OPTIONAL}
    for line, cells in table.rows:
        values = {
            name: cells[index].strip() if index is not None and index < len(cells) else ""
            for name, index in places.items()
        }
        try:
            people.append(_person(line, values, organizations))
        except InviteRefused as error:
            problems.append(f"line {line}: {error}")
    if problems:
        raise TableError(f"{path}: nothing was done; fix these lines:\n" + "\n".join(problems))
    return people


def _person(line: int, values: dict[str, str], organizations: dict[str, Organization]) -> Person:
    name, key = values["name"], values["organization"]
    role, language = values["role"].casefold(), values["language"].casefold()
    channel = values["channel"].casefold() or "telegram"
    if not name:
        raise InviteRefused("the name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InviteRefused(f"the name has {len(name)} characters; at most {MAX_NAME_LENGTH}")
    organization = organizations.get(key)
    if organization is None:
        raise InviteRefused(f"no organization {key!r} in the network (check its key)")
    if not organization.active:
        raise InviteRefused(f"organization {key!r} is retired")
    if role and role not in ROLES:
        raise InviteRefused(
            f"unknown role {role!r}; choose from {', '.join(ROLES)} or leave it empty"
        )
    role = role or role_for(organization)
    check_role(organization, role)
    if language and language not in LANGUAGES:
        raise InviteRefused(
            f"unknown language {language!r}; use {', '.join(LANGUAGES)} or leave it empty"
        )
    if channel not in CHANNELS:
        raise InviteRefused(f"unknown channel {channel!r}; use {' or '.join(CHANNELS)}")
    return Person(line, name, organization, role, language or None, channel)


def invite_all(
    session: Session,
    table: Table,
    people: list[Person],
    links: InviteLink,
    now: datetime,
    output: Path,
    valid_for: timedelta = DEFAULT_VALIDITY,
) -> set[str]:
    """One invitation per person, and the table written back to `output` with them, each
    with its channel's link (bot.invite_links); call in a transaction, so that a file that
    cannot be written leaves no invitation. Returns the channels whose links are not known
    yet (their link cells are empty)."""
    unlinked: set[str] = set()
    header = [*table.header, *(column for column in ADDED if table.column(column) is None)]
    places = {column: header.index(column) if column in header else None for column in ADDED}
    for index, column in enumerate(table.header):
        if column.strip().casefold() in ADDED:
            places[column.strip().casefold()] = index
    rows: list[list[str]] = []
    for person, (_, cells) in zip(people, table.rows, strict=True):
        made = new_invite(
            session,
            person.organization,
            person.role,
            now,
            valid_for,
            name=person.name,
            language=person.language,
        )
        assert made.expires_at is not None
        link = links(session, person.channel, made.code)
        if not link:
            unlinked.add(person.channel)
        row = cells + [""] * (len(header) - len(cells))
        for column, value in (
            ("code", shown(made.code)),
            ("link", link or ""),
            ("expires", made.expires_at.strftime("%Y-%m-%d %H:%M UTC")),
        ):
            place = places[column]
            assert place is not None
            row[place] = value
        rows.append(row)
    write_table(output, header, rows, table.delimiter)
    return unlinked


def write_table(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    try:
        _write(path, header, rows, delimiter)
    except OSError as error:
        raise TableError(
            f"{path}: cannot be written ({error.strerror or error}); nothing was done"
        ) from error


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str) -> None:
    with _owner_only(path) as temporary:
        if path.suffix.lower() == ".xlsx":
            from openpyxl import Workbook

            workbook = Workbook()
            sheet = workbook.active
            assert sheet is not None
            sheet.append(header)
            for row in rows:
                sheet.append(row)
            for cells in sheet.iter_rows(min_row=2):
                for cell in cells:
                    if isinstance(cell.value, str) and cell.value.startswith("="):
                        cell.data_type = "s"  # text as it was read, not a formula
            workbook.save(temporary)
        else:
            with temporary.open("w", encoding="utf-8-sig", newline="") as file:
                writer = csv.writer(file, delimiter=delimiter)
                writer.writerow(header)
                writer.writerows(rows)  # the operator's cells as they were given


def output_for(path: Path) -> Path:
    """Where the table is written back by default: beside it, "-invitations" added."""
    return path.with_name(f"{path.stem}-invitations{path.suffix}")


@contextmanager
def _owner_only(path: Path) -> Iterator[Path]:
    """A temporary file (mode 0600) beside `path` that becomes `path` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
