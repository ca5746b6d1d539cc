"""`invoice-sync query "SQL"`: read the published warehouse without installing DuckDB's CLI
(or a PostgreSQL warehouse without psql), read-only, in the warehouse's own SQL dialect."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pipelines.destinations import DATABASE_ERRORS, Destination, open_read_only
from pipelines.warehouse import first_line


class QueryError(RuntimeError):
    """The query could not run; the message is the database's first line."""


def run_query(db_path: str | Path | Destination, sql: str) -> tuple[list[str], list[tuple]]:
    """(column names, rows) of `sql` over the published warehouse, opened read-only (or over
    the destination given, in a read-only transaction)."""
    con = open_read_only(db_path)
    try:
        _one_statement(con, sql)
        if isinstance(con, duckdb.DuckDBPyConnection):  # the warehouse, and no file beside it
            con.execute("SET enable_external_access = false")
        cursor = con.execute(sql)
        if cursor is None or cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()
    except DATABASE_ERRORS as err:
        raise QueryError(f"the query failed: {first_line(err)}") from None
    finally:
        con.close()


def _one_statement(con: Any, sql: str) -> None:
    """Refuse no statement, or (on DuckDB, which would run them all and show the last) several."""
    if not sql.strip():
        raise QueryError('no SQL given: e.g. "SELECT * FROM billing.ar_summary"')
    if isinstance(con, duckdb.DuckDBPyConnection):
        statements = con.extract_statements(sql)
        if len(statements) != 1:
            raise QueryError(f"one SQL statement at a time, not {len(statements)}")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)  # Decimal's str is exact


def _unique(columns: list[str]) -> list[str]:
    """Column names as JSON keys: a name met again gets _2, _3, ... (`SELECT 1 a, 2 a`)."""
    seen: dict[str, int] = {}
    keys = []
    for column in columns:
        seen[column] = seen.get(column, 0) + 1
        keys.append(column if seen[column] == 1 else f"{column}_{seen[column]}")
    return keys


def render(columns: list[str], rows: list[tuple], fmt: str = "table") -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(v) for v in row] for row in rows)
        return out.getvalue().rstrip("\n")
    if fmt == "json":
        keys = _unique(columns)
        return json.dumps(
            [
                {
                    c: _text(v) if isinstance(v, Decimal | date | datetime) else v
                    for c, v in zip(keys, row, strict=True)
                }
                for row in rows
            ],
            indent=2,
            default=str,
        )
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    shown = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    noun = "row" if len(rows) == 1 else "rows"
    return "\n".join([*shown, f"({len(rows)} {noun})"])
