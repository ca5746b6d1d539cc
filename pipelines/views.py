"""Builds the `staging` and `billing` views from the files in `sql/`, all or nothing.

Order: `sql/*.sql`, then each registered vendor's `sql/10_staging/<vendor>/*.sql`, then every
other folder (`20_billing/`, `30_ar/`, `40_checks/`, ...), all in file-name order. A view that
names `{{ staging:<entity> }}` reads the union of every vendor's staging view of that entity,
headed by an empty relation of the entity's declared shape, so every declared column exists
with its declared type even where a vendor does not send it (those rows hold NULL). A vendor
whose raw tables do not exist yet (never synced, or no rows of that kind) gets an empty
staging view of that shape, so the `billing` schema is always whole. Everything runs in one
transaction: a file that fails leaves the previous views as they were.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from pipelines.contract import STAGING_ENTITIES
from pipelines.tuning import warehouse_connection

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_PLACEHOLDER = re.compile(r"\{\{\s*staging:(\w+)\s*\}\}")


class ViewBuildError(RuntimeError):
    """A view file failed; the message names the file and DuckDB's reason."""


def _sql_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql")) if folder.is_dir() else []


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables")
    return {row[0] for row in rows.fetchall()}


def _raw_tables(sql: str, vendor: str) -> set[str]:
    return {f"{vendor}.{table}" for table in re.findall(rf"\b{vendor}\.(\w+)", sql)}


def empty_select(columns: dict[str, str]) -> str:
    """A SELECT of the given columns and types that yields no rows."""
    select = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns.items())
    return f"SELECT {select} WHERE false"


def empty_view_sql(view: str, columns: dict[str, str]) -> str:
    """A view with the declared columns and types and no rows."""
    return f"CREATE OR REPLACE VIEW {view} AS {empty_select(columns)}"


def _staging_statements(vendor: str, existing: set[str]) -> Iterable[tuple[str, str]]:
    """(label, sql) for one vendor's staging views; stand-ins where raw tables are missing."""
    folder = SQL_DIR / "10_staging" / vendor
    files = {path.stem: path for path in _sql_files(folder)}
    for entity, columns in STAGING_ENTITIES.items():
        view = f"staging.{vendor}_{entity}"
        path = files.pop(entity, None)
        if path is None:
            yield f"{view} (no staging file: empty)", empty_view_sql(view, columns)
            continue
        sql = path.read_text()
        if _raw_tables(sql, vendor) <= existing:
            yield str(path.relative_to(SQL_DIR)), sql
        else:
            yield f"{view} (raw tables not loaded yet: empty)", empty_view_sql(view, columns)
    for path in files.values():  # extra per-vendor views beyond the contract's entities
        sql = path.read_text()
        if _raw_tables(sql, vendor) <= existing:
            yield str(path.relative_to(SQL_DIR)), sql


def _expand(sql: str, vendors: list[str]) -> str:
    def union(match: re.Match) -> str:
        entity = match.group(1)
        parts = [empty_select(STAGING_ENTITIES[entity])]
        parts += [f"SELECT * FROM staging.{vendor}_{entity}" for vendor in vendors]
        return " UNION ALL BY NAME ".join(parts)

    return _PLACEHOLDER.sub(union, sql)


def build_statements(con: duckdb.DuckDBPyConnection, vendors: list[str]) -> list[tuple[str, str]]:
    """Every statement of a build, in order, labelled with the file it came from."""
    existing = _existing_tables(con)
    statements = [(str(p.relative_to(SQL_DIR)), p.read_text()) for p in _sql_files(SQL_DIR)]
    for vendor in vendors:
        statements.extend(_staging_statements(vendor, existing))
    for folder in sorted(p for p in SQL_DIR.iterdir() if p.is_dir() and p.name != "10_staging"):
        statements.extend(
            (str(p.relative_to(SQL_DIR)), _expand(p.read_text(), vendors))
            for p in _sql_files(folder)
        )
    return statements


def build_views(db_path: str | Path, vendors: list[str]) -> int:
    """(Re)create every view in one transaction; returns how many statements ran."""
    con = warehouse_connection(db_path)
    try:
        statements = build_statements(con, vendors)
        con.execute("BEGIN TRANSACTION")
        for label, sql in statements:
            try:
                con.execute(sql)
            except duckdb.Error as err:
                con.execute("ROLLBACK")
                first_line = str(err).strip().splitlines()[0]
                raise ViewBuildError(f"building views failed in {label}: {first_line}") from None
        con.execute("COMMIT")
        return len(statements)
    finally:
        con.close()
