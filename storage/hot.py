"""Statements run for every incoming message, without SQLAlchemy's per-execution work on SQLite.

For each execution Core builds an execution context, processes the parameters and wraps the
row: some 15-50 µs of Python per statement, several times what SQLite itself spends on these
one-row lookups by key. A `HotStatement` on a SQLite connection is compiled once, converts its
parameters and columns with the very type processors Core would use (JSON, UTC datetimes,
booleans) and runs on the DBAPI cursor, inside the connection's transaction. Errors are wrapped
as Core wraps them (IntegrityError, OperationalError ...), so callers cannot tell the
difference.

On other databases (on PostgreSQL the network round trip outweighs Core's work), with a
Session, on a connection outside a transaction, or for a statement that needs Core's help (a
Python-side column default), the statement simply goes through Core.

Kept only for the three statements an update applied in a transaction of its own runs (its
record in processed_update, the chat's row with its writer, the chat's new state: a webhook's
update, WhatsApp's, a lone update fetched by long polling; a batch of several reads them for
all its updates at once, see `Dispatcher.handle_together`), because the bench still shows it (6
December 2026, SQLite, bench/README.md): through Core, the dispatcher's CPU per update was
8-29% higher an update a transaction and 22-33% higher 50 to a transaction (`bench.dispatch`);
`bench.e2e`, five alternated pairs: Sanad's CPU per update 3.43-3.71 ms against 2.62-3.49 ms,
ratio Sanad/echo 0.85-1.04 against 0.97-1.18. The statements of reports (once per report) went
back to Core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import Select
from sqlmodel import Session

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the order of the ?s
    fixed: dict[str, Any]  # parameters whose value the statement carries (values(x=True))
    binds: tuple[Processor, ...]
    returns: bool
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # the columns that need converting


class HotStatement:
    """A Core statement (select, insert, update) with named parameters, run often."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self.statement = statement
        self._compiled: WeakKeyDictionary[Dialect, dict[frozenset[str], _Compiled | None]] = (
            WeakKeyDictionary()
        )

    def first(
        self, runner: Session | Connection, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row, as a plain tuple; None if there is none."""
        compiled = self._compiled_for(runner, params)
        if compiled is None:
            row = runner.execute(self.statement, params).first()  # type: ignore[call-overload]
            return tuple(row) if row is not None else None
        assert isinstance(runner, Connection)
        rows = self._run(runner, compiled, params)
        if not rows:
            return None
        values = list(rows[0])
        for index, process in compiled.results:
            values[index] = process(values[index])
        return tuple(values)

    def run(self, runner: Session | Connection, params: Mapping[str, Any]) -> None:
        """Execute, for a statement whose rows (if any) are not wanted."""
        compiled = self._compiled_for(runner, params)
        if compiled is None:
            runner.execute(self.statement, params)  # type: ignore[call-overload]
        else:
            assert isinstance(runner, Connection)
            self._run(runner, compiled, params)

    def _run(
        self, connection: Connection, compiled: _Compiled, params: Mapping[str, Any]
    ) -> list[Any]:
        values = []
        for name, process in zip(compiled.names, compiled.binds, strict=True):
            value = params[name] if name in params else compiled.fixed[name]
            values.append(value if process is None else process(value))
        dialect = connection.dialect
        cursor = connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, values)
            return list(cursor.fetchall()) if compiled.returns else []
        except dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                compiled.sql, values, error, dialect.loaded_dbapi.Error, dialect=dialect
            ) from error
        finally:
            cursor.close()

    def _compiled_for(
        self, runner: Session | Connection, params: Mapping[str, Any]
    ) -> _Compiled | None:
        if (
            not isinstance(runner, Connection)
            or runner.dialect.name != "sqlite"
            or not runner.in_transaction()
        ):  # Core begins one, which the cursor would not
            return None
        by_keys = self._compiled.setdefault(runner.dialect, {})
        keys = frozenset(params)
        if keys not in by_keys:
            by_keys[keys] = _compile(self.statement, runner.dialect, keys)
        return by_keys[keys]


def _compile(statement: ClauseElement, dialect: Dialect, keys: frozenset[str]) -> _Compiled | None:
    """What running `statement` with parameters named `keys` takes, or None where Core must
    do it (a column default computed in Python, a parameter it expands at run time)."""
    compiled: Any = statement.compile(dialect=dialect, column_keys=sorted(keys))
    if (
        any(
            getattr(compiled, name, None)
            for name in (
                "insert_prefetch",
                "update_prefetch",
                "postfetch",
                "literal_execute_params",
                "post_compile_params",
            )
        )
        or not compiled.positional
    ):
        return None
    names = tuple(compiled.positiontup)
    binds = [compiled.binds[name] for name in names]
    if any(
        bind.callable is not None or bind.expanding or (bind.required and name not in keys)
        for name, bind in zip(names, binds, strict=True)
    ):
        return None
    fixed = {name: bind.value for name, bind in zip(names, binds, strict=True) if name not in keys}
    returned = (
        statement.selected_columns
        if isinstance(statement, Select)
        else compiled.effective_returning
    )
    processors = [
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in returned or ()
    ]
    return _Compiled(
        compiled.string,
        names,
        fixed,
        tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds),
        bool(returned),
        tuple((index, process) for index, process in enumerate(processors) if process is not None),
    )
