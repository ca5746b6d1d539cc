"""Sync speed and memory against the floor and the obvious alternative, on the same data.

For Meteroid (page numbers) and Exsited (offsets), with N invoices of 5 line items of 2
sub-line items each, a tax breakdown and transactions, served by the sandbox in its own
process, it measures in fresh processes:

1. floor: fetch every page and decode the JSON, nothing else;
2. rest_api_source: dlt's generic REST source with default settings, merge on id, into
   DuckDB, as a new user would write it;
3. invoice-sync: a full sync, then an incremental one after 1% of the invoices changed.

It prints wall time, ratio to the floor, invoices per second and peak memory (max RSS of the
measuring process) for each, then the `billing` view timings and, with `--rate-limit`, the
request rate sustained against an emulator with 50 ms latency and 25 requests/s.

    python benchmarks/performance.py                          # 20,000 invoices
    python benchmarks/performance.py --invoices 200000 --vendor meteroid
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

VENDOR_NAMES = ("meteroid", "exsited")


# -- the sandbox, in its own process ---------------------------------------------------------


def _serve(vendor_name: str, invoices: int, latency: float, rate: float | None, conn: Any) -> None:
    from pipelines.registry import VENDORS
    from sources.common.sandbox.server import Faults, SandboxServer

    vendor = VENDORS[vendor_name]
    ledger = vendor.make_ledger(seed=9, invoices=invoices, history="mature", lines=5, sub_lines=2)
    emulator = vendor.emulator(ledger, Faults(latency=latency, rate_limit=rate))
    with SandboxServer({"": emulator}) as server:
        conn.send(emulator.settings(server.base_url(emulator)))
        while True:
            command, argument = conn.recv()
            if command == "change":
                ledger.random_changes(argument)
                conn.send("ok")
            elif command == "requests":
                conn.send(dict(emulator.requests))
            else:
                conn.send("bye")
                return


class Sandbox:
    def __init__(self, vendor: str, invoices: int, latency: float = 0.0, rate: float | None = None):
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("fork").Process(
            target=_serve, args=(vendor, invoices, latency, rate, child), daemon=True
        )
        self.process.start()
        self.settings: dict[str, str] = self.conn.recv()

    def ask(self, command: str, argument: Any = None) -> Any:
        self.conn.send((command, argument))
        return self.conn.recv()

    def close(self) -> None:
        self.ask("stop")
        self.process.join(timeout=10)


# -- what is measured, each in a fresh process -------------------------------------------------


def _exsited_token(settings: dict[str, str]) -> str:
    response = requests.post(
        settings["SOURCES__EXSITED__BASE_URL"] + "/api/v1/oauth2/token",
        json={
            "grant_type": "client_credentials",
            "client_id": settings["SOURCES__EXSITED__CLIENT_ID"],
            "client_secret": settings["SOURCES__EXSITED__CLIENT_SECRET"],
            "redirect_uri": "",
        },
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def floor(vendor: str, settings: dict[str, str], work: Path) -> int:
    """Every page fetched and decoded; returns the number of invoices."""
    session = requests.Session()
    rows = 0
    if vendor == "meteroid":
        base = settings["SOURCES__METEROID__BASE_URL"] + "/api/v1/invoices"
        session.headers["Authorization"] = f"Bearer {settings['SOURCES__METEROID__API_KEY']}"
        page, pages = 0, 1
        while page < pages:
            body = json.loads(session.get(base, params={"page": page, "per_page": 100}).content)
            rows += len(body["data"])
            pages = body["pagination_meta"]["total_pages"]
            page += 1
        return rows
    base = settings["SOURCES__EXSITED__BASE_URL"] + "/api/v3/invoices"
    session.headers["Authorization"] = f"Bearer {_exsited_token(settings)}"
    offset, total = 0, 1
    while offset < total:
        body = json.loads(session.get(base, params={"limit": 100, "offset": offset}).content)
        rows += len(body["invoices"])
        total = body["pagination"]["records"]
        offset += 100
    return rows


def rest_api(vendor: str, settings: dict[str, str], work: Path) -> int:
    """dlt's rest_api_source with its defaults, merge on id, into DuckDB."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    if vendor == "meteroid":
        client = {
            "base_url": settings["SOURCES__METEROID__BASE_URL"],
            "auth": {"type": "bearer", "token": settings["SOURCES__METEROID__API_KEY"]},
            "paginator": {
                "type": "page_number",
                "base_page": 0,
                "page_param": "page",
                "total_path": "pagination_meta.total_pages",
            },
        }
        endpoint = {"path": "api/v1/invoices", "params": {"per_page": 100}, "data_selector": "data"}
    else:
        client = {
            "base_url": settings["SOURCES__EXSITED__BASE_URL"],
            "auth": {"type": "bearer", "token": _exsited_token(settings)},
            "paginator": {"type": "offset", "limit": 100, "total_path": "pagination.records"},
        }
        endpoint = {"path": "api/v3/invoices", "data_selector": "invoices"}
    source = rest_api_source(
        {
            "client": client,
            "resources": [
                {
                    "name": "invoices",
                    "primary_key": "id",
                    "write_disposition": "merge",
                    "endpoint": endpoint,
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        "bench_rest_api",
        destination=dlt.destinations.duckdb(str(work / "rest.duckdb")),
        dataset_name=vendor,
        pipelines_dir=str(work / "dlt"),
    )
    pipeline.run(source)
    return pipeline.last_trace.last_normalize_info.row_counts["invoices"]


def invoice_sync(vendor: str, settings: dict[str, str], work: Path) -> int:
    """`invoice-sync sync <vendor>` into work/warehouse.duckdb (full or incremental)."""
    from pipelines.registry import VENDORS
    from pipelines.sandbox import environment
    from pipelines.sync import sync

    with environment(settings):
        [result] = sync([VENDORS[vendor]], work / "warehouse.duckdb")
    if not result.ok:
        raise RuntimeError(result.describe())
    return result.counts.total if result.counts else 0


def _child(fn: Callable, vendor: str, settings: dict[str, str], work: Path, out: Any) -> None:
    started = time.perf_counter()
    rows = fn(vendor, settings, work)
    seconds = time.perf_counter() - started
    out.send((seconds, rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(fn: Callable, vendor: str, settings: dict[str, str], work: Path) -> tuple:
    """(seconds, rows, peak MB) of `fn` run in a fresh process."""
    receive, send = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(
        target=_child, args=(fn, vendor, settings, work, send)
    )
    process.start()
    result = receive.recv()
    process.join()
    return result


# -- reporting -------------------------------------------------------------------------------


def _row(label: str, seconds: float, rows: int, peak: float, floor_seconds: float) -> str:
    return (
        f"  {label:<28}{seconds:>9.2f}s{seconds / floor_seconds:>8.1f}x"
        f"{rows / seconds:>12,.0f}/s{peak:>10,.0f} MB"
    )


def views_timing(work: Path) -> str:
    import duckdb

    con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
    timings = []
    for view in ("ar_summary", "ar_aging"):
        started = time.perf_counter()
        con.execute(f"SELECT * FROM billing.{view}").fetchall()
        timings.append(f"{view} {time.perf_counter() - started:.3f}s")
    con.close()
    return ", ".join(timings)


def benchmark(vendor: str, invoices: int) -> None:
    print(f"\n{vendor}: {invoices:,} invoices, 5 lines x 2 sub-lines each")
    sandbox = Sandbox(vendor, invoices)
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            base = measure(floor, vendor, sandbox.settings, work)
            print(f"  {'':<28}{'wall':>10}{'floor':>9}{'invoices':>14}{'peak':>13}")
            print(_row("1. floor (fetch + decode)", *base, base[0]))
            print(
                _row(
                    "2. dlt rest_api_source",
                    *measure(rest_api, vendor, sandbox.settings, work),
                    base[0],
                ),
                flush=True,
            )
            full = measure(invoice_sync, vendor, sandbox.settings, work)
            print(_row("3. invoice-sync full", *full, base[0]), flush=True)
            sandbox.ask("change", max(1, invoices // 100))
            incremental = measure(invoice_sync, vendor, sandbox.settings, work)
            print(_row("   invoice-sync, 1% changed", *incremental, base[0]))
            print(f"  views over the result: {views_timing(work)} (full sync {full[0]:.1f}s)")
    finally:
        sandbox.close()


def rate_limited(vendor: str, invoices: int) -> None:
    sandbox = Sandbox(vendor, invoices, latency=0.05, rate=25)
    try:
        with tempfile.TemporaryDirectory() as folder:
            seconds, _, _ = measure(invoice_sync, vendor, sandbox.settings, Path(folder))
            counts = sandbox.ask("requests")
    finally:
        sandbox.close()
    answered = sum(v for k, v in counts.items() if k != "rate_limited")
    print(
        f"  {vendor}: {answered} requests in {seconds:.1f}s = {answered / seconds:.1f}/s "
        f"({answered / seconds / 25:.0%} of 25/s), {counts.get('rate_limited', 0)} answered 429"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", action="append", choices=VENDOR_NAMES)
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument(
        "--rate-limit",
        action="store_true",
        help="also measure the request rate at 50 ms latency and 25 requests/s",
    )
    args = parser.parse_args(argv)
    for vendor in args.vendor or VENDOR_NAMES:
        benchmark(vendor, args.invoices)
    if args.rate_limit:
        print("\n50 ms latency, 25 requests/s limit (5,000 invoices):")
        for vendor in args.vendor or VENDOR_NAMES:
            rate_limited(vendor, 5_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
