"""Builds the `staging` and `billing` views from the files in `sql/`, all or nothing.

Order: `sql/*.sql`, then each registered vendor's `sql/10_staging/<vendor>/*.sql`, then every
other folder (`20_billing/`, `30_ar/`, `40_checks/`, ...), all in file-name order. A view that
names `{{ staging:<entity> }}` reads the union of every vendor's staging view of that entity,
headed by an empty relation of the entity's declared shape, each vendor's view read for the
declared columns by name, so every declared column exists with its declared type even where a
vendor does not send it (those rows hold NULL). A vendor whose raw tables do not exist yet
(never synced, or no rows of that kind) gets an empty staging view of that shape, so the
`billing` schema is always whole. Everything runs in one transaction: a file that fails
leaves the previous views as they were.

The files are in DuckDB's dialect; on PostgreSQL each statement is rendered by
`pipelines/dialects.py` (macros become functions), and a build drops the views and functions
the last one made, then creates them anew, in one transaction (`CREATE OR REPLACE` cannot
change a view's columns there). Dropping a view waits for the readers' queries that use it, and
makes new readers wait until the build commits; so a build whose statements are those of the
last one is skipped (the views read the raw tables live: new data needs no rebuild), and a
build waits at most `LOCK_TIMEOUT` at a time for the views' readers, trying again up to
`REBUILD_ATTEMPTS` times. Nothing is dropped with CASCADE: a view someone built on ours makes
the build fail, in one line naming it, rather than vanish.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dlt.common.runtime import signals

from pipelines.contract import STAGING_ENTITIES
from pipelines.destinations import (
    DATABASE_ERRORS,
    DatabaseError,
    Destination,
    dialect_of,
    open_for_sync,
)
from pipelines.dialects import Function, RenderError, render

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_PLACEHOLDER = re.compile(r"\{\{\s*staging:(\w+)\s*\}\}")

BUILT_TABLE = "_invoice_sync.views_built"  # PostgreSQL: what the last build made, and its digest
LOCK_TIMEOUT = "3s"  # PostgreSQL: longest a build makes the views' new readers wait
REBUILD_ATTEMPTS = 20
REBUILD_PAUSE = 3.0  # seconds between attempts, in which readers go on
LOCK_NOT_AVAILABLE = "55P03"
DEPENDENT_OBJECTS = "2BP01"


class ViewBuildError(RuntimeError):
    """A view file failed; the message names the file and the database's reason."""


def _sql_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sql")) if folder.is_dir() else []


def _existing_tables(con: Any) -> set[str]:
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


def expand(sql: str, vendors: list[str], columns_of: Callable[[str], set[str]]) -> str:
    """`{{ staging:<entity> }}` as the union of the vendors' staging views of the entity, each
    read for the declared columns (NULL of the declared type where its view has none);
    `columns_of(view)` names a staging view's columns."""

    def union(match: re.Match) -> str:
        declared = STAGING_ENTITIES[match.group(1)]
        parts = [empty_select(declared)]
        for vendor in vendors:
            view = f"{vendor}_{match.group(1)}"
            present = columns_of(view)
            columns = ", ".join(
                name if name in present else f"CAST(NULL AS {kind}) AS {name}"
                for name, kind in declared.items()
            )
            parts.append(f"SELECT {columns} FROM staging.{view}")
        return " UNION ALL ".join(parts)

    return _PLACEHOLDER.sub(union, sql)


def _columns_reader(con: Any) -> Callable[[str], set[str]]:
    """Reads a staging view's columns from the catalog (inside the build's transaction)."""

    def columns_of(view: str) -> set[str]:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'staging' AND table_name = ?",
            [view],
        ).fetchall()
        return {row[0] for row in rows}

    return columns_of


def build_statements(con: Any, vendors: list[str]) -> list[tuple[str, str]]:
    """Every statement of a build, in order, labelled with the file it came from; the
    `{{ staging:<entity> }}` placeholders are expanded as each runs (`expand`)."""
    existing = _existing_tables(con)
    statements = [(str(p.relative_to(SQL_DIR)), p.read_text()) for p in _sql_files(SQL_DIR)]
    for vendor in vendors:
        statements.extend(_staging_statements(vendor, existing))
    for folder in sorted(p for p in SQL_DIR.iterdir() if p.is_dir() and p.name != "10_staging"):
        statements.extend((str(p.relative_to(SQL_DIR)), p.read_text()) for p in _sql_files(folder))
    return statements


def build_views(db_path: str | Path | Destination, vendors: list[str]) -> int:
    """(Re)create every view in one transaction; returns how many statements ran (0 when a
    PostgreSQL build was skipped: nothing changed since the last)."""
    con = open_for_sync(db_path)
    try:
        statements = build_statements(con, vendors)
        if dialect_of(db_path) == "postgres":
            return _build_on_postgres(con, statements, vendors)
        columns_of = _columns_reader(con)
        con.execute("BEGIN TRANSACTION")
        for label, sql in statements:
            try:
                con.execute(expand(sql, vendors, columns_of))
            except DATABASE_ERRORS as err:
                con.execute("ROLLBACK")
                raise _failed(label, err) from None
        con.execute("COMMIT")
        return len(statements)
    finally:
        con.close()


def _failed(label: str, err: BaseException) -> ViewBuildError:
    first_line = str(err).strip().splitlines()[0]
    return ViewBuildError(f"building views failed in {label}: {first_line}")


# -- PostgreSQL -------------------------------------------------------------------------------


def _digest(statements: list[tuple[str, str]], vendors: list[str]) -> str:
    return hashlib.sha256(json.dumps([vendors, statements]).encode()).hexdigest()


def _made_by(statements: list[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """The views and the functions (signatures) that these statements create."""
    views, functions = set(), set()
    for label, sql in statements:
        try:
            rendered = render(_PLACEHOLDER.sub("SELECT 1", sql), "postgres")
        except RenderError as err:
            raise _failed(label, err) from None
        for statement in rendered:
            if isinstance(statement, Function):
                functions.add(statement.signature.lower())
            elif statement.kind == "view" and statement.name:
                views.add(statement.name.lower())
    return views, functions


def _last_build(con: Any) -> tuple[str | None, set[str], set[str]]:
    """The digest and objects of the last build recorded, if any."""
    con.execute(
        "CREATE SCHEMA IF NOT EXISTS _invoice_sync; "
        f"CREATE TABLE IF NOT EXISTS {BUILT_TABLE} "
        "(digest TEXT, objects TEXT, built_at TIMESTAMPTZ)"
    )
    row = con.execute(f"SELECT digest, objects FROM {BUILT_TABLE}").fetchone()
    if row is None:
        return None, set(), set()
    objects = json.loads(row[1])
    return row[0], set(objects["views"]), set(objects["functions"])


def _all_exist(con: Any, views: set[str], functions: set[str]) -> bool:
    [(missing,)] = con.execute(
        "SELECT (SELECT count(*) FROM unnest(CAST(? AS TEXT[])) AS v(name) "
        "WHERE to_regclass(v.name) IS NULL) + (SELECT count(*) FROM "
        "unnest(CAST(? AS TEXT[])) AS f(name) WHERE to_regprocedure(f.name) IS NULL)",
        [sorted(views), sorted(functions)],
    ).fetchall()
    return missing == 0


def _build_on_postgres(con: Any, statements: list[tuple[str, str]], vendors: list[str]) -> int:
    digest = _digest(statements, vendors)
    last, views, functions = _last_build(con)
    if last == digest and _all_exist(con, views, functions):
        return 0
    new_views, new_functions = _made_by(statements)
    attempt = 1
    while True:
        try:
            return _rebuild(
                con, statements, vendors, views | new_views, functions | new_functions, digest
            )
        except _ReadersInTheWay:
            if attempt == REBUILD_ATTEMPTS:
                raise ViewBuildError(
                    "building views failed: readers' queries held the views through "
                    f"{REBUILD_ATTEMPTS} attempts of {LOCK_TIMEOUT} each (the next sync tries "
                    "again)"
                ) from None
        attempt += 1
        signals.raise_if_signalled()
        time.sleep(REBUILD_PAUSE)


class _ReadersInTheWay(Exception):
    """A build's DROP waited `LOCK_TIMEOUT` for queries reading the views."""


def _rebuild(
    con: Any,
    statements: list[tuple[str, str]],
    vendors: list[str],
    views: set[str],
    functions: set[str],
    digest: str,
) -> int:
    """Drop the views and functions of the last build and of this one, create this one's."""
    columns_of = _columns_reader(con)
    made_views: list[str] = []
    made_functions: list[str] = []
    con.execute("BEGIN")
    at = "dropping the previous views"
    try:
        con.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if views:
            con.execute(f"DROP VIEW IF EXISTS {', '.join(sorted(views))}")
        if functions:
            con.execute(f"DROP FUNCTION IF EXISTS {', '.join(sorted(functions))}")
        for label, sql in statements:
            at = label
            for statement in render(expand(sql, vendors, columns_of), "postgres"):
                if isinstance(statement, Function):
                    con.execute(statement.create_sql(_probe(con, statement)))
                    made_functions.append(statement.signature.lower())
                    continue
                con.execute(statement.sql)
                if statement.kind == "view" and statement.name:
                    made_views.append(statement.name.lower())
        objects = json.dumps({"views": made_views, "functions": made_functions})
        con.execute(f"DELETE FROM {BUILT_TABLE}")
        con.execute(
            f"INSERT INTO {BUILT_TABLE} VALUES (?, ?, current_timestamp)", [digest, objects]
        )
    except (DatabaseError, RenderError) as err:
        con.execute("ROLLBACK")
        code = getattr(err, "pgcode", None)
        if code == LOCK_NOT_AVAILABLE:
            raise _ReadersInTheWay() from None
        failure = _failed(at, err)
        if code == DEPENDENT_OBJECTS:
            failure = ViewBuildError(
                f"{failure}; drop the view built on ours (it is never dropped for you), sync "
                "again, then create it again"
            )
        raise failure from None
    con.execute("COMMIT")
    return len(statements)


def _probe(con: Any, function: Function) -> list[tuple[str, str]]:
    """The (name, type) of each column the function's body returns."""
    con.execute(f"CREATE TEMP VIEW _invoice_sync_probe AS {function.probe}")
    rows = con.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = CAST('pg_temp._invoice_sync_probe' AS regclass) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    con.execute("DROP VIEW pg_temp._invoice_sync_probe")
    return [(name, kind) for name, kind in rows]
