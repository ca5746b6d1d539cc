"""`billing.sync_runs`: one row per source per sync, so schedulers and people can see what ran.

New, changed and unchanged invoices are counted in contract terms: the content of each
source's `billing.invoices` rows, compared with what it was when last counted. A digest of
every row is kept in the warehouse (`_invoice_sync.digests_<source>`, with the dlt load that
wrote it), not in Python. After a sync, only the invoices written by loads newer than the
newest digest are hashed and compared (each staging view's `load_id` names the latest load
that wrote any data its row is computed from); no other invoice can have changed. So counting
an hourly sync costs what it loaded, not what the warehouse holds: hashing every invoice
before and after each sync was, at 200,000 Exsited invoices, the peak of a 1%-changed sync.
A sync that fails counts nothing; the next one that succeeds counts what both loaded.

The digest is DuckDB's 64-bit `hash()` of the row there, and on PostgreSQL the `md5` of the
row's text (the same contract columns, cast alike); the queries are otherwise the same SQL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.contract import INVOICES
from pipelines.destinations import MISSING_OBJECT, Destination, dialect_of, open_for_sync

RUNS_DDL = """
CREATE SCHEMA IF NOT EXISTS billing;
CREATE TABLE IF NOT EXISTS billing.sync_runs (
    source VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL,  -- succeeded | failed | interrupted
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


DIGESTS_SCHEMA = "_invoice_sync"
# DuckDB's 64-bit hash of the row's contract columns, each cast to its contract type, so a
# row hashes alike from `billing.invoices` and from its staging view; two different rows
# share one with a chance of 2^-64.
DIGEST = "hash({})".format(", ".join(f"CAST({name} AS {kind})" for name, kind in INVOICES.items()))
# PostgreSQL: the md5 of the row of those columns as text (NULL and '' are told apart)
POSTGRES_DIGEST = "md5(CAST(ROW({}) AS TEXT))".format(
    ", ".join(f"CAST({name} AS {kind})" for name, kind in INVOICES.items())
)
DIGESTS = {"duckdb": (DIGEST, "UBIGINT"), "postgres": (POSTGRES_DIGEST, "TEXT")}


def _digests_table(source: str) -> str:
    return f'{DIGESTS_SCHEMA}."digests_{source}"'


def _staging_invoices(source: str) -> str:
    return f'staging."{source}_invoices"'


def keep_digests(db_path: str | Path | Destination, source: str) -> None:
    """Make sure `source` has a digest table to count the next sync's changes against.

    Made once: from the invoices already in the warehouse, with no load named (so the next
    sync compares every invoice once), or empty before the first sync.
    """
    digest, digest_type = DIGESTS[dialect_of(db_path)]
    with open_for_sync(db_path) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [DIGESTS_SCHEMA, f"digests_{source}"],
        ).fetchone()
        if exists == (1,):
            return
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {DIGESTS_SCHEMA}")
        table = _digests_table(source)
        try:
            con.execute(
                f"CREATE TABLE {table} AS SELECT invoice_id, {digest} AS digest, "
                "CAST(NULL AS VARCHAR) AS load_id FROM billing.invoices WHERE source = ?",
                [source],
            )
        except MISSING_OBJECT:  # no views yet: every invoice will be new
            con.execute(
                f"CREATE TABLE {table} (invoice_id VARCHAR, digest {digest_type}, load_id VARCHAR)"
            )


def count_changes(
    db_path: str | Path | Destination, source: str, full_refresh: bool
) -> InvoiceCounts:
    """New, changed and unchanged invoices of `source` since they were last counted; the
    digests then describe the warehouse as it is. Run after the views are built."""
    table = _digests_table(source)
    digest, _ = DIGESTS[dialect_of(db_path)]
    with open_for_sync(db_path) as con:
        con.execute("BEGIN TRANSACTION")
        [(newest,)] = con.execute(
            f"SELECT max(CAST(load_id AS DOUBLE PRECISION)) FROM {table}"
        ).fetchall()
        since = "" if newest is None else f"WHERE CAST(load_id AS DOUBLE PRECISION) > {newest!r}"
        con.execute(
            f"CREATE TEMP TABLE loaded AS SELECT invoice_id, {digest} AS digest, load_id "
            f"FROM {_staging_invoices(source)} {since}"
        )
        new, changed = con.execute(
            "SELECT count(*) FILTER (WHERE d.invoice_id IS NULL), "
            "count(*) FILTER (WHERE d.digest <> l.digest) "
            f"FROM loaded AS l LEFT JOIN {table} AS d USING (invoice_id)"
        ).fetchone()
        con.execute(f"DELETE FROM {table} WHERE invoice_id IN (SELECT invoice_id FROM loaded)")
        con.execute(f"INSERT INTO {table} SELECT invoice_id, digest, load_id FROM loaded")
        if full_refresh:  # the tables were replaced: what was not loaded again is gone
            con.execute(
                f"DELETE FROM {table} WHERE invoice_id NOT IN "
                f"(SELECT invoice_id FROM {_staging_invoices(source)})"
            )
        [(total,)] = con.execute(
            "SELECT count(*) FROM billing.invoices WHERE source = ?", [source]
        ).fetchall()
        con.execute("DROP TABLE loaded")
        con.execute("COMMIT")
    return InvoiceCounts(new, changed, total - new - changed, total)


def record_run(
    db_path: str | Path | Destination,
    source: str,
    started_at: datetime,
    finished_at: datetime,
    *,
    full_refresh: bool,
    requests: int | None,
    counts: InvoiceCounts | None,
    error: str | None,
    status: str | None = None,
) -> None:
    """One row in billing.sync_runs; `status` is `succeeded`, or `failed` when there is an
    `error`, unless given (`interrupted`)."""
    con = open_for_sync(db_path)
    try:
        con.execute(RUNS_DDL)
        con.execute(
            f"INSERT INTO billing.sync_runs ({', '.join(RUN_COLUMNS)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source,
                started_at,
                finished_at,
                status or ("failed" if error else "succeeded"),
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


UNFINISHED = (
    "the sync stopped before it finished (killed, crashed or out of disk) and could not "
    "record this run; the next sync completed what it had loaded"
)


class RunJournal:
    """Runs under way, in a file beside the working warehouse until each is recorded in
    `billing.sync_runs`, so that a run which could not record itself (a process killed, the
    machine gone down, a full disk) is recorded, as failed, by the next sync."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> dict[str, dict]:
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:  # written part-way when the process died: its runs are unknown
            return {}
        return entries if isinstance(entries, dict) else {}

    def _save(self, entries: dict[str, dict]) -> None:
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        staged = self.path.with_name(self.path.name + ".new")
        staged.write_text(json.dumps(entries))
        os.replace(staged, self.path)

    def begin(self, source: str, started_at: datetime, full_refresh: bool) -> None:
        entries = self._entries()
        entries[source] = {
            "started_at": started_at.isoformat(),
            "full_refresh": full_refresh,
            "pid": os.getpid(),
        }
        self._save(entries)

    def note(self, source: str, error: str) -> None:
        """What failed, for the next sync to record if this one cannot."""
        entries = self._entries()
        if source in entries:
            entries[source]["error"] = error
            self._save(entries)

    def done(self, source: str) -> None:
        entries = self._entries()
        if entries.pop(source, None) is not None:
            self._save(entries)

    def record_leftovers(self, db_path: str | Path | Destination) -> list[str]:
        """Record the runs an earlier sync left unrecorded; returns their sources."""
        entries = self._entries()
        if not entries:
            return []
        last_seen = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        for source, entry in entries.items():
            started = datetime.fromisoformat(entry["started_at"])
            record_run(
                db_path,
                source,
                started,
                max(started, last_seen),
                full_refresh=bool(entry.get("full_refresh")),
                requests=None,
                counts=None,
                error=entry.get("error") or f"{source}: {UNFINISHED} (pid {entry.get('pid')})",
            )
        self._save({})
        return sorted(entries)


def last_runs(con: Any) -> list[tuple]:
    """Per source, failed ones first: last success, last run's status, its requests and
    counts, its error and when it finished."""
    try:
        return con.execute(
            """
            WITH runs AS (
                SELECT
                    *,
                    row_number() OVER (PARTITION BY source ORDER BY finished_at DESC) AS recency,
                    max(finished_at) FILTER (WHERE status = 'succeeded')
                        OVER (PARTITION BY source) AS last_success
                FROM billing.sync_runs
            )
            SELECT
                source,
                last_success,
                status AS last_status,
                requests,
                invoices_new,
                invoices_changed,
                coalesce(error, '') AS error,
                finished_at AS last_run
            FROM runs
            WHERE recency = 1
            ORDER BY status = 'succeeded', source
            """
        ).fetchall()
    except MISSING_OBJECT:
        return []
