"""A full sync of N Meteroid invoices into PostgreSQL beside the same into DuckDB (issue #39).

On the same sandbox data as `performance.py` (5 line items of 2 sub-line items each, a tax
breakdown and transactions, served in its own process), in fresh processes: the floor
(fetch and decode), a full sync into DuckDB, a full sync into PostgreSQL, then both again
after 1% of the invoices changed, and how long the AR views take to answer on each. Peak
memory is the syncing process's (and its normaliser workers'), not the server's.

PostgreSQL is the server at `--url` (a database of its own: the benchmark drops and makes
its schemas), or else a throwaway cluster started here from Debian's `postgresql` package
(`tests/postgres.py`), with fsync and synchronous commit on, as a real server has them.

    python benchmarks/postgres.py                      # 20,000 invoices
    python benchmarks/postgres.py --invoices 200000 --url postgresql://u:p@host:5432/bench
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from performance import Measured, Sandbox, _row, floor, invoice_sync, measure  # noqa: E402

VENDOR = "meteroid"
URL_KEY = "BENCHMARK_POSTGRES_URL"  # passed to the measured process with the settings
VIEWS = ("ar_summary", "ar_aging", "ar_trend")


def invoice_sync_postgres(vendor: str, settings: dict[str, str], work: Path) -> int:
    """`invoice-sync sync <vendor> --destination postgres` into the benchmark's database."""
    from pipelines.destinations import PostgresDestination
    from pipelines.registry import VENDORS
    from pipelines.sandbox import environment
    from pipelines.sync import sync

    warehouse = PostgresDestination.from_url(settings[URL_KEY], working_dir=work / "pg-working")
    with environment(settings):
        [result] = sync([VENDORS[vendor]], warehouse)
    if not result.ok:
        raise RuntimeError(result.describe())
    return result.counts.total if result.counts else 0


def views_timing(connect: object) -> dict[str, float]:
    """Seconds each AR view takes to answer in full, from a fresh connection."""
    timings = {}
    for view in VIEWS:
        con = connect()  # type: ignore[operator]
        started = time.perf_counter()
        con.execute(f"SELECT * FROM billing.{view}").fetchall()
        timings[view] = time.perf_counter() - started
        con.close()
    return timings


def _views_line(label: str, timings: dict[str, float]) -> str:
    return f"  views on {label}: " + ", ".join(f"{v} {s:.3f}s" for v, s in timings.items())


def _empty(url: str) -> None:
    """Drop what an earlier run left in the benchmark's database."""
    import psycopg2

    con = psycopg2.connect(url)
    con.autocommit = True
    with con.cursor() as cursor:
        for schema in ("billing", "staging", "_invoice_sync", VENDOR, f"{VENDOR}_staging"):
            cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    con.close()


def run(invoices: int, url: str) -> dict[str, Measured]:
    import duckdb

    from pipelines.destinations import PostgresDestination

    print(f"\n{VENDOR}: {invoices:,} invoices, 5 lines x 2 sub-lines each")
    _empty(url)
    sandbox = Sandbox(VENDOR, invoices)
    settings = {**sandbox.settings, URL_KEY: url}
    measured: dict[str, Measured] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            measured["floor"] = base = measure(floor, VENDOR, settings, work)
            measured["duckdb"] = measure(invoice_sync, VENDOR, settings, work)
            measured["postgres"] = measure(invoice_sync_postgres, VENDOR, settings, work)
            print(f"  {'':<28}{'wall':>10}{'floor':>9}{'invoices':>14}{'peak':>13}")
            print(_row("1. floor (fetch + decode)", base, base))
            print(_row("2. full sync into DuckDB", measured["duckdb"], base))
            print(_row("3. full sync into PostgreSQL", measured["postgres"], base), flush=True)
            sandbox.ask("change", max(1, invoices // 100))
            measured["duckdb 1%"] = measure(invoice_sync, VENDOR, settings, work)
            measured["postgres 1%"] = measure(invoice_sync_postgres, VENDOR, settings, work)
            print(_row("   DuckDB, 1% changed", measured["duckdb 1%"], base))
            print(_row("   PostgreSQL, 1% changed", measured["postgres 1%"], base))
            db = str(work / "warehouse.duckdb")
            on_duckdb = views_timing(lambda: duckdb.connect(db, read_only=True))
            print(_views_line("DuckDB", on_duckdb))
            pg = PostgresDestination.from_url(url)
            print(_views_line("PostgreSQL", views_timing(pg.connect_read_only)))
            ratio = measured["postgres"].seconds / measured["duckdb"].seconds
            print(f"  PostgreSQL's full sync took {ratio:.2f}x DuckDB's")
    finally:
        sandbox.close()
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000, metavar="N")
    parser.add_argument(
        "--url", default=os.environ.get(URL_KEY), help=f"the server's database (or {URL_KEY})"
    )
    args = parser.parse_args(argv)
    if args.url:
        run(args.invoices, args.url)
        return 0
    from tests.postgres import PostgresServer

    server = PostgresServer.start(durable=True)
    try:
        run(args.invoices, server.create_database())
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
