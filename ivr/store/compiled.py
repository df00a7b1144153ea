"""SQLAlchemy Core statements compiled once for a database, run straight on a DB-API cursor.

The webhook path runs a handful of statements thousands of times a second; SQLAlchemy's execution
machinery costs more than the statements themselves there. Written as Core (one definition of the
tables, the dialect's own SQL and parameter style), compiled once, they are run on a DB-API
connection with the dialect's own value conversions (SQLite keeps moments as text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler


def _same(value: Any) -> Any:
    return value


class Compiled:
    """One statement, compiled for one dialect."""

    def __init__(self, statement: sa.sql.expression.ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._order: tuple[str, ...] | None = tuple(compiled.positiontup) if compiled.positiontup else None
        # The dialect's own conversions (its implementation of each type, not the generic one).
        self._convert: dict[str, Callable[[Any], Any]] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) or _same
            for name, bind in compiled.binds.items()
        }
        columns = getattr(statement, "_returning", ()) or getattr(statement, "selected_columns", ())
        results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self._returns = bool(columns)
        # Only the columns that need it are converted (SQLite's moments and booleans, say).
        self._convert_results = [(n, f) for n, f in enumerate(results) if f is not None]

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """`values` converted and laid out as the driver takes them."""
        convert = self._convert
        if self._order is not None:
            return tuple(convert[name](values[name]) for name in self._order)
        return {name: convert[name](value) for name, value in values.items()}

    def run(self, cursor: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute on a DB-API cursor; the rows it returns, converted, for a statement that returns any."""
        cursor.execute(self.sql, self.parameters(values))
        if not self._returns:
            return []
        rows = cursor.fetchall()
        if not self._convert_results:
            return [tuple(row) for row in rows]
        converted = []
        for row in rows:
            fields = list(row)
            for number, convert in self._convert_results:
                fields[number] = convert(fields[number])
            converted.append(tuple(fields))
        return converted
