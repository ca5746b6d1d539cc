"""The warehouse's own history: what each sync saw of every invoice, from when to when.

Where a vendor sends no date for a change (a void in Sequence, anything in Press), the
point-in-time macros (`billing.ar_invoices_at`) date it from this history. After each
successful sync of a source, `record_history` writes to `billing.invoice_history` one row per
invoice whose status, amount paid, amount due or credit changed (the rows
`staging.invoice_changes` describes, valid from the vendor's update stamp where it moved,
else from when the sync fetched the data), closes the row it follows, and keeps in
`billing.payment_history` every dated payment or refund the sync loaded. Both tables live in
the `billing` schema, which `--full-refresh` does not replace, so history outlives it.

A history table of our own rather than dlt's `scd2` merge strategy: scd2 would change every
raw table, and so every staging view, and its validity comes from load time, not from the
vendor's own timestamps; and it would version whole rows, where AR needs only a change of
status or money. As with the change counts (`pipelines/runs.py`), only invoices written by
loads newer than the last one recorded are compared (each staging row names its `load_id`):
a sync of unchanged data adds no row, and comparing costs about what was loaded, plus one
read of the source's staging view (benchmarks/README.md, "2026-12-07").
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipelines.destinations import MISSING_OBJECT, Destination, open_for_sync
from pipelines.registry import VENDORS

MARKS = "_invoice_sync.history_marks"  # source -> the newest load whose invoices were compared
NAMED_UP_TO = 50_000  # invoices named in the comparison; beyond, every loaded invoice is read
# The invoices named, as a list parameter given twice (NULL: every invoice of the source). The
# same SQL on DuckDB (a list) and PostgreSQL (an array).
AMONG = "(CAST(? AS VARCHAR[]) IS NULL OR invoice_id IN (SELECT unnest(CAST(? AS VARCHAR[]))))"


def record_history(target: str | Path | Destination, source: str, seen_at: datetime) -> int:
    """Write what the sync of `source` at `seen_at` saw; returns how many history rows it
    added. Run after the views are built (they create the history tables and read
    `staging.invoice_changes`)."""
    with open_for_sync(target) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS _invoice_sync")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {MARKS} (source VARCHAR, load_id DOUBLE PRECISION)"
        )
        con.execute("BEGIN TRANSACTION")
        since = _compared_up_to(con, source)
        named, newest = _loaded_since(con, source, since)
        con.execute(
            "CREATE TEMP TABLE changed AS SELECT * FROM staging.invoice_changes(?) "
            f"WHERE source = ? AND {AMONG}",
            [seen_at, source, named, named],
        )
        con.execute(
            "UPDATE billing.invoice_history AS h SET valid_to = c.valid_from FROM changed AS c "
            "WHERE h.source = c.source AND h.invoice_id = c.invoice_id AND h.valid_to IS NULL"
        )
        con.execute(
            "INSERT INTO billing.invoice_history "
            "(source, invoice_id, valid_from, valid_to, status, amount_paid, amount_due, "
            "amount_credited, vendor_updated_at, first_seen, seen_at, load_id) "
            "SELECT source, invoice_id, valid_from, NULL, status, amount_paid, amount_due, "
            "amount_credited, vendor_updated_at, first_seen, ?, load_id FROM changed",
            [seen_at],
        )
        [(added,)] = con.execute("SELECT count(*) FROM changed").fetchall()
        con.execute(
            "INSERT INTO billing.payment_history "
            "(source, invoice_id, payment_id, kind, amount, processed_at, seen_at) "
            "SELECT m.source, m.invoice_id, m.payment_id, m.kind, m.amount, m.processed_at, ? "
            f"FROM staging.dated_money AS m WHERE m.source = ? AND {AMONG} AND NOT EXISTS ("
            "SELECT 1 FROM billing.payment_history AS h WHERE h.source = m.source "
            "AND h.invoice_id = m.invoice_id AND h.payment_id = m.payment_id)",
            [seen_at, source, named, named],
        )
        con.execute(f"DELETE FROM {MARKS} WHERE source = ?", [source])
        con.execute(f"INSERT INTO {MARKS} VALUES (?, ?)", [source, newest])
        con.execute("DROP TABLE changed")
        con.execute("COMMIT")
    return added


def _loaded_since(con: Any, source: str, since: float) -> tuple[list[str] | None, float]:
    """The invoices loaded after `since` (None, meaning all, when there are very many), and
    the newest load among them (`since` when there is none).

    The staging views are read in full either way (Exsited's, for one, keeps the newest copy
    of each invoice); naming the invoices lets DuckDB read only theirs from the raw tables and
    from the payments, which at 200,000 invoices makes comparing a few hundred 4x cheaper.
    """
    loaded = con.execute(
        f'SELECT invoice_id, CAST(load_id AS DOUBLE PRECISION) FROM staging."{source}_invoices" '
        "WHERE CAST(load_id AS DOUBLE PRECISION) > ?",
        [since],
    ).fetchall()
    newest = max((load for _, load in loaded), default=since)
    named = None if len(loaded) > NAMED_UP_TO else [invoice_id for invoice_id, _ in loaded]
    return named, newest


def _compared_up_to(con: Any, source: str) -> float:
    """The newest load already compared; -1 (everything) when the source has no history yet,
    so a history emptied by hand is written again in full."""
    [(mark,)] = con.execute(
        f"SELECT coalesce(max(load_id), -1) FROM {MARKS} WHERE source = ? AND EXISTS "
        "(SELECT 1 FROM billing.invoice_history WHERE source = ?)",
        [source, source],
    ).fetchall()
    return mark


def exactness_notes(con: Any, as_of: date, sources: list[str]) -> list[str]:
    """One line per source saying how exact its figures for `as_of` are: exact where the
    vendor dates every change; else which changes the history dates, and how (the vendor's
    update stamp, or the sync that saw them), and that before the first sync they are taken
    as of each invoice's last update or issue date. `con` reads the warehouse."""
    try:
        known = {
            source: (first, stamped, rows)
            for source, first, stamped, rows in con.execute(
                "SELECT source, CAST(min(seen_at) AT TIME ZONE 'UTC' AS DATE), "
                "count(vendor_updated_at), count(*) FROM billing.invoice_history GROUP BY source"
            ).fetchall()
        }
    except MISSING_OBJECT:
        known = {}
    notes = []
    for source in sorted(set(sources)):
        vendor = VENDORS.get(source)
        if vendor is None:
            continue
        if not vendor.undated:
            notes.append(f"{source}: exact (the vendor dates every change)")
            continue
        first, stamped, rows = known.get(source, (None, 0, 0))
        if first is None:
            notes.append(f"{source}: dates of {vendor.undated} unknown (no sync recorded yet)")
        elif as_of < first:
            basis = _stamped_or(stamped, rows, "each invoice's issue date")
            notes.append(
                f"{source}: dates of {vendor.undated} unknown before the first sync, {first} "
                f"(taken as {basis})"
            )
        else:
            by = _stamped_or(stamped, rows, "the sync that saw them")
            notes.append(f"{source}: {vendor.undated} dated by {by} (syncs since {first})")
    return notes


def _stamped_or(stamped: int, rows: int, otherwise: str) -> str:
    """What dates a source's undated changes, given how many of its `rows` history rows carry
    the vendor's update stamp (some vendors send it on some rows only)."""
    if stamped == 0:
        return otherwise
    if stamped == rows:
        return "each invoice's last update"
    return f"each invoice's last update where the vendor sent one, else {otherwise}"
