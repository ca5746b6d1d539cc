"""What the warehouse's history costs a sync (issue: point-in-time AR).

For each vendor: a sandbox account of N invoices with a mature history, then three syncs: the
first (full), one after 1% of N random changes, and one of unchanged data. For each, the
sync's seconds, and the rows and seconds `record_history` added (billing.invoice_history and
billing.payment_history); then how long the point-in-time views take over the result.

    python benchmarks/history_cost.py                      # Meteroid, 200,000 invoices
    python benchmarks/history_cost.py --vendor exsited --invoices 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

import pipelines.sync
from pipelines import history
from pipelines.registry import VENDORS
from pipelines.sandbox import environment
from pipelines.sync import sync
from sources.common.sandbox.server import SandboxServer

VIEWS = (
    "SELECT * FROM billing.ar_summary",
    "SELECT * FROM billing.ar_aging",
    "SELECT * FROM billing.ar_summary_at(current_date - 90)",
)


def _history_rows(db: Path) -> tuple[int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM billing.invoice_history), "
            "(SELECT count(*) FROM billing.payment_history)"
        ).fetchone()
    finally:
        con.close()


def timed_sync(vendor: str, db: Path, spent: list[float]) -> dict:
    """One sync; its seconds and what recording its history added."""
    before = _history_rows(db) if db.exists() else (0, 0)
    spent.clear()
    started = time.perf_counter()
    [result] = sync([VENDORS[vendor]], db)
    seconds = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(result.describe())
    after = _history_rows(db)
    return {
        "sync_s": seconds,
        "history_s": sum(spent),
        "invoice_rows": after[0] - before[0],
        "payment_rows": after[1] - before[1],
        "invoices": result.counts.total if result.counts else 0,
    }


def views(db: Path) -> list[float]:
    """Seconds each point-in-time view takes in full, the best of three, fresh connection."""
    timings = []
    for sql in VIEWS:
        con = duckdb.connect(str(db), read_only=True)
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            con.execute(sql).fetchall()
            runs.append(time.perf_counter() - started)
        con.close()
        timings.append(min(runs))
    return timings


def measure(vendor: str, invoices: int, seed: int) -> tuple[list[tuple[str, dict]], list[float]]:
    spent: list[float] = []

    def recorded(db: Path, source: str, seen_at) -> int:
        started = time.perf_counter()
        try:
            return history.record_history(db, source, seen_at)
        finally:
            spent.append(time.perf_counter() - started)

    pipelines.sync.record_history = recorded
    ledger = VENDORS[vendor].make_ledger(seed=seed, invoices=invoices, history="mature")
    emulator = VENDORS[vendor].emulator(ledger)
    rows = []
    with tempfile.TemporaryDirectory() as folder, SandboxServer({"": emulator}) as server:
        db = Path(folder) / "bench.duckdb"
        with environment(emulator.settings(server.base_url(emulator))):
            rows.append(("full", timed_sync(vendor, db, spent)))
            ledger.random_changes(max(invoices // 100, 1))
            rows.append(("1% changed", timed_sync(vendor, db, spent)))
            rows.append(("unchanged", timed_sync(vendor, db, spent)))
        return rows, views(db)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", action="append", choices=sorted(VENDORS))
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(
        f"{'vendor':<9} {'sync':<11} {'invoices':>9} {'sync s':>8} {'history s':>10} "
        f"{'share':>6} {'history rows':>13} {'payment rows':>13}"
    )
    for vendor in args.vendor or ["meteroid"]:
        rows, timings = measure(vendor, args.invoices, args.seed)
        for label, row in rows:
            print(
                f"{vendor:<9} {label:<11} {row['invoices']:>9,} {row['sync_s']:>8.2f} "
                f"{row['history_s']:>10.2f} {row['history_s'] / row['sync_s']:>6.1%} "
                f"{row['invoice_rows']:>13,} {row['payment_rows']:>13,}"
            )
        day = date.today() - timedelta(days=90)
        print(
            f"{vendor}: views ar_summary {timings[0]:.2f} s, ar_aging {timings[1]:.2f} s, "
            f"ar_summary_at({day}) {timings[2]:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
