"""Builds the `staging` and `billing` views from the files in `sql/`, all or nothing.

Order: `sql/00_*.sql`, then each registered vendor's `sql/10_staging/<vendor>/*.sql`, then
`sql/20_billing/`, then `sql/30_ar/`, each folder in file-name order. A unified view names
`{{ staging:<entity> }}`, which becomes the union of every vendor's staging view of that
entity. A vendor whose raw tables do not exist yet (never synced, or no rows of that kind)
gets an empty staging view of the contract's shape, so the `billing` schema is always
whole. Everything runs in one transaction: a file that fails leaves the previous views.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from pipelines.contract import STAGING_ENTITIES

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


def empty_view_sql(view: str, columns: dict[str, str]) -> str:
    """A view with the contract's columns and types and no rows."""
    select = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns.items())
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {select} WHERE false"


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
        return " UNION ALL BY NAME ".join(
            f"SELECT * FROM staging.{vendor}_{entity}" for vendor in vendors
        )

    return _PLACEHOLDER.sub(union, sql)


def build_statements(con: duckdb.DuckDBPyConnection, vendors: list[str]) -> list[tuple[str, str]]:
    """Every statement of a build, in order, labelled with the file it came from."""
    existing = _existing_tables(con)
    statements = [(str(p.relative_to(SQL_DIR)), p.read_text()) for p in _sql_files(SQL_DIR)]
    for vendor in vendors:
        statements.extend(_staging_statements(vendor, existing))
    for folder in ("20_billing", "30_ar"):
        statements.extend(
            (str(p.relative_to(SQL_DIR)), _expand(p.read_text(), vendors))
            for p in _sql_files(SQL_DIR / folder)
        )
    return statements


def build_views(db_path: str | Path, vendors: list[str]) -> int:
    """(Re)create every view in one transaction; returns how many statements ran."""
    con = duckdb.connect(str(db_path))
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
