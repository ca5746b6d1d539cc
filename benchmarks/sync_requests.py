"""How many requests an incremental sync makes, against a full one (issue: incremental sync).

For each vendor: a sandbox account of N invoices with a mature history (most invoices paid
long ago, a few open), a full sync, then 1% of N random changes (payments, partial payments,
failed payments, voids, finalisations, new invoices), then an incremental sync. Prints the
requests of both, their ratio, and whether the warehouse equals the sandbox's ground truth.

    python benchmarks/sync_requests.py                      # every vendor, 20,000 invoices
    python benchmarks/sync_requests.py --vendor meteroid --invoices 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines.registry import VENDORS
from pipelines.sandbox import environment
from pipelines.sync import sync
from sources.common.sandbox.server import SandboxServer

TARGET = 0.15  # an incremental sync after 1% changed: at most 15% of a full sync's requests
SNAPSHOT_VENDORS = {"press"}  # one request whatever happens: the target does not apply


def warehouse_matches_truth(db: Path, emulator) -> bool:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT invoice_id, status, currency, total, amount_paid, amount_due, due_date "
            "FROM billing.invoices WHERE source = ?",
            [emulator.name],
        ).fetchall()
    finally:
        con.close()
    loaded = {r[0]: tuple(r[1:]) for r in rows}
    truth = {
        t.invoice_id: (t.status, t.currency, t.total, t.amount_paid, t.amount_due, t.due_date)
        for t in emulator.truth()
    }
    return loaded == truth


def measure(name: str, invoices: int, changes: int, seed: int) -> dict:
    vendor = VENDORS[name]
    ledger = vendor.make_ledger(seed=seed, invoices=invoices, history="mature")
    emulator = vendor.emulator(ledger)
    with tempfile.TemporaryDirectory() as folder, SandboxServer({"": emulator}) as server:
        db = Path(folder) / "bench.duckdb"
        with environment(emulator.settings(server.base_url(emulator))):
            started = time.perf_counter()
            [full] = sync([vendor], db)
            full_seconds = time.perf_counter() - started
            ledger.random_changes(changes)
            started = time.perf_counter()
            [incremental] = sync([vendor], db)
            incremental_seconds = time.perf_counter() - started
        for result in (full, incremental):
            if not result.ok:
                raise SystemExit(result.describe())
        exact = warehouse_matches_truth(db, emulator)
    return {
        "vendor": name,
        "full": full.requests,
        "full_s": full_seconds,
        "incremental": incremental.requests,
        "incremental_s": incremental_seconds,
        "ratio": incremental.requests / full.requests if full.requests else 0.0,
        "exact": exact,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", action="append", choices=sorted(VENDORS))
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of invoices changed")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    changes = max(1, round(args.invoices * args.changed))
    print(
        f"{args.invoices:,} invoices, {changes:,} changes ({args.changed:.0%}); "
        f"target: incremental <= {TARGET:.0%} of full (press excepted)\n"
    )
    header = f"{'vendor':<10}{'full req':>10}{'full s':>9}{'incr req':>10}{'incr s':>9}"
    print(header + f"{'ratio':>8}  {'target':<8}{'exact':<6}")
    failed = False
    for name in args.vendor or sorted(VENDORS):
        row = measure(name, args.invoices, changes, args.seed)
        if name in SNAPSHOT_VENDORS:
            verdict = "n/a"
        else:
            verdict = "met" if row["ratio"] <= TARGET else "MISSED"
        failed |= not row["exact"]
        print(
            f"{name:<10}{row['full']:>10,}{row['full_s']:>9.1f}{row['incremental']:>10,}"
            f"{row['incremental_s']:>9.1f}{row['ratio']:>8.1%}  {verdict:<8}"
            f"{'yes' if row['exact'] else 'NO':<6}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
