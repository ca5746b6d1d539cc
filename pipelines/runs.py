"""`billing.sync_runs`: one row per source per sync, so schedulers and people can see what ran.

New, changed and unchanged invoices are counted in contract terms: rows of `billing.invoices`
for the source before and after the sync, compared by content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

RUNS_DDL = """
CREATE SCHEMA IF NOT EXISTS billing;
CREATE TABLE IF NOT EXISTS billing.sync_runs (
    source VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,  -- succeeded | failed
    full_refresh BOOLEAN NOT NULL,
    requests BIGINT,
    invoices_new BIGINT,
    invoices_changed BIGINT,
    invoices_unchanged BIGINT,
    invoices_total BIGINT,
    error VARCHAR
)
"""

RUN_COLUMNS = (
    "source",
    "started_at",
    "finished_at",
    "status",
    "full_refresh",
    "requests",
    "invoices_new",
    "invoices_changed",
    "invoices_unchanged",
    "invoices_total",
    "error",
)


@dataclass
class InvoiceCounts:
    new: int
    changed: int
    unchanged: int
    total: int


def invoice_fingerprints(db_path: str | Path, source: str) -> dict[str, str]:
    """invoice_id -> digest of its billing.invoices row; empty before the first build."""
    if not Path(db_path).exists():
        return {}
    con = duckdb.connect(str(db_path))
    try:
        rows = con.execute(
            "SELECT invoice_id, md5(CAST(i AS VARCHAR)) FROM billing.invoices AS i "
            "WHERE source = ?",
            [source],
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    finally:
        con.close()
    return dict(rows)


def compare(before: dict[str, str], after: dict[str, str]) -> InvoiceCounts:
    new = sum(1 for key in after if key not in before)
    changed = sum(1 for key, digest in after.items() if key in before and before[key] != digest)
    return InvoiceCounts(new, changed, len(after) - new - changed, len(after))


def record_run(
    db_path: str | Path,
    source: str,
    started_at: datetime,
    finished_at: datetime,
    *,
    full_refresh: bool,
    requests: int,
    counts: InvoiceCounts | None,
    error: str | None,
) -> None:
    con = duckdb.connect(str(db_path))
    try:
        con.execute(RUNS_DDL)
        con.execute(
            f"INSERT INTO billing.sync_runs ({', '.join(RUN_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source,
                started_at,
                finished_at,
                "failed" if error else "succeeded",
                full_refresh,
                requests,
                counts.new if counts else None,
                counts.changed if counts else None,
                counts.unchanged if counts else None,
                counts.total if counts else None,
                error,
            ],
        )
    finally:
        con.close()


def last_runs(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Per source: last success, last run's status, its requests and counts, its error."""
    try:
        return con.execute(
            """
            SELECT
                source,
                max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
                arg_max(status, finished_at) AS last_status,
                arg_max(requests, finished_at) AS requests,
                arg_max(invoices_new, finished_at) AS new,
                arg_max(invoices_changed, finished_at) AS changed,
                arg_max(coalesce(error, ''), finished_at) AS error
            FROM billing.sync_runs
            GROUP BY source
            ORDER BY source
            """
        ).fetchall()
    except duckdb.CatalogException:
        return []
