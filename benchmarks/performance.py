"""Sync speed and memory against the floor and the obvious alternative, on the same data.

For Meteroid (page numbers) and Exsited (offsets), with N invoices of 5 line items of 2
sub-line items each, a tax breakdown and transactions, served by the sandbox in its own
process, it measures in fresh processes:

1. floor: fetch every page and decode the JSON, nothing else;
2. rest_api_source: dlt's generic REST source with default settings, merge on id, into
   DuckDB, as a new user would write it;
3. invoice-sync: a full sync, then an incremental one after 1% of the invoices changed.

It prints wall time, ratio to the floor, invoices per second and peak memory for each (the
measuring process and its normaliser workers, sampled every 50 ms, shared pages counted
once; under each sync, the peak while dlt extracted, normalised and loaded, and after),
then how long `ar_summary` and `ar_aging` take over the synced data and, with
`--rate-limit`, the request rate the emulator admitted at 50 ms latency and 25 requests/s.
It ends with each of issue #9's targets the run can judge, met or not, with its figure;
given more than one `--invoices`, it compares each vendor's peak at the largest and the
smallest.

    python benchmarks/performance.py                          # 20,000 invoices
    python benchmarks/performance.py --invoices 200000        # (2) skipped: see --alternative
    python benchmarks/performance.py --invoices 20000 --invoices 200000 --rate-limit  # all
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import requests

VENDOR_NAMES = ("meteroid", "exsited")
PACEABLE = ("meteroid",)  # sources that fetch pages in parallel and take max_requests_per_second

# issue #9's targets
RATE_LIMIT = 25  # requests a second the emulator admits in the rate-limited runs
MOST_FLOOR_RATIO = 3.0  # a full sync against the floor (the issue's: at 20,000 invoices)
LEAST_SPEEDUP = 5.0  # against rest_api_source
MOST_PEAK_MB = 400
MOST_VIEWS_SHARE = 0.02  # of the full sync's time
LEAST_PACED_SHARE = 0.85  # of the rate limit, for paginators fetching pages in parallel
MOST_PUBLISH_SHARE = 0.10  # issue #33: publishing the warehouse, of the sync it ends


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
            elif command == "admitted":
                conn.send(list(emulator.admitted_at))
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
    if result.record_batches:  # the sandbox's pages never need it: these figures would mislead
        print(f"warning, not a columnar sync: {result.describe()}", file=sys.stderr, flush=True)
    return result.counts.total if result.counts else 0


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and all its descendants (Linux), in MB: memory
    shared between a parent and its forked normaliser workers counts once."""
    total_kb, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                total_kb += sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total_kb / 1024


class PeakMemory(threading.Thread):
    """Samples the memory of this process and its workers every 50 ms; `peak` is the largest
    sample or this process's own peak RSS, whichever is higher. `by_phase` keeps the largest
    sample taken during each phase named in `phase`; `enter` samples as a phase begins, so
    a phase shorter than 50 ms is listed too."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.largest = 0.0
        self.phase = "before extract"  # reading state, dlt restoring it from the warehouse
        self.by_phase: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.sample()

    def sample(self) -> None:
        sample, phase = _tree_pss_mb(os.getpid()), self.phase
        self.largest = max(self.largest, sample)
        self.by_phase[phase] = max(self.by_phase.get(phase, 0.0), sample)

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.sample()

    @property
    def peak(self) -> float:
        self.done.set()
        self.join()
        return max(self.largest, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


PHASES = ("extract", "normalize", "load")


def mark_phases(memory: PeakMemory) -> None:
    """Name the phase `memory` samples in while any dlt pipeline of this process runs one
    (`run` calls the same three methods)."""
    import dlt

    def marked(name: str, step: Callable) -> Callable:
        def run_step(self: dlt.Pipeline, *args: Any, **kwargs: Any) -> Any:
            memory.enter(name)
            try:
                return step(self, *args, **kwargs)
            finally:
                memory.sample()
                memory.enter(f"after {name}")

        return run_step

    for name in PHASES:
        setattr(dlt.Pipeline, name, marked(name, getattr(dlt.Pipeline, name)))


class Measured(NamedTuple):
    seconds: float
    rows: int
    peak: float
    by_phase: dict[str, float]
    # seconds the sync spent publishing its warehouse, and the published file's bytes
    publish_seconds: float = 0.0
    published_bytes: int = 0


def time_publications(into: list[Any]) -> None:
    """Keep each publication (seconds, bytes) of the syncs this process runs in `into`."""
    import pipelines.sync

    publish = pipelines.sync.publish

    def timed(warehouse: Any) -> Any:
        publication = publish(warehouse)
        into.append(publication)
        return publication

    pipelines.sync.publish = timed


def _child(fn: Callable, vendor: str, settings: dict[str, str], work: Path, out: Any) -> None:
    memory = PeakMemory()
    mark_phases(memory)
    publications: list[Any] = []
    if fn is invoice_sync:
        time_publications(publications)
    memory.start()
    started = time.perf_counter()
    rows = fn(vendor, settings, work)
    seconds = time.perf_counter() - started
    peak = memory.peak
    out.send(
        Measured(
            seconds,
            rows,
            peak,
            memory.by_phase,
            sum(p.seconds for p in publications),
            sum(p.bytes for p in publications),
        )
    )


def measure(fn: Callable, vendor: str, settings: dict[str, str], work: Path) -> Measured:
    """Time, rows and peak memory of `fn` run in a fresh process."""
    receive, send = mp.Pipe(duplex=False)
    process = mp.get_context("spawn").Process(
        target=_child, args=(fn, vendor, settings, work, send)
    )
    process.start()
    result = receive.recv()
    process.join()
    return result


# -- reporting -------------------------------------------------------------------------------


def _row(label: str, run: Measured, floor: Measured) -> str:
    line = (
        f"  {label:<28}{run.seconds:>9.2f}s{run.seconds / floor.seconds:>8.1f}x"
        f"{run.rows / run.seconds:>12,.0f}/s{run.peak:>10,.0f} MB"
    )
    phases = [(name, mb) for name, mb in run.by_phase.items() if name.split()[-1] in PHASES]
    if any(name in PHASES for name, _ in phases):  # a dlt pipeline ran
        line += "\n      peak by phase: " + ", ".join(f"{n} {mb:,.0f} MB" for n, mb in phases)
    return line


def views_timing(work: Path) -> dict[str, float]:
    """Seconds each AR view takes to answer in full, from a fresh connection."""
    import duckdb

    timings = {}
    for view in ("ar_summary", "ar_aging"):
        con = duckdb.connect(str(work / "warehouse.duckdb"), read_only=True)
        started = time.perf_counter()
        con.execute(f"SELECT * FROM billing.{view}").fetchall()
        timings[view] = time.perf_counter() - started
        con.close()
    return timings


class Run(NamedTuple):
    """One vendor at one size: what `benchmark` measured."""

    vendor: str
    invoices: int
    floor: Measured
    alternative: Measured | None
    full: Measured
    incremental: Measured
    views: dict[str, float]  # seconds, by view


class RateRun(NamedTuple):
    """One sync against the rate-limited emulator, as the emulator saw it."""

    vendor: str
    paced: bool
    per_second: float  # admitted, from the first request to the last
    busiest_second: int  # most requests admitted within any one second
    refused: int  # answered 429


def benchmark(vendor: str, invoices: int, alternative: bool) -> Run:
    print(f"\n{vendor}: {invoices:,} invoices, 5 lines x 2 sub-lines each")
    sandbox = Sandbox(vendor, invoices)
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            base = measure(floor, vendor, sandbox.settings, work)
            # invoice-sync before the alternative: rest_api_source churns through gigabytes,
            # and the machine is slower for a while after it
            full = measure(invoice_sync, vendor, sandbox.settings, work)
            views = views_timing(work)
            rest = measure(rest_api, vendor, sandbox.settings, work) if alternative else None
            print(f"  {'':<28}{'wall':>10}{'floor':>9}{'invoices':>14}{'peak':>13}")
            print(_row("1. floor (fetch + decode)", base, base))
            if rest:
                print(_row("2. dlt rest_api_source", rest, base))
            else:
                print("  2. dlt rest_api_source      skipped (--alternative to run it)")
            print(_row("3. invoice-sync full", full, base), flush=True)
            sandbox.ask("change", max(1, invoices // 100))
            incremental = measure(invoice_sync, vendor, sandbox.settings, work)
            print(_row("   invoice-sync, 1% changed", incremental, base))
            shares = (
                f"{view} {s:.3f}s ({s / full.seconds:.2%} of the full sync)"
                for view, s in views.items()
            )
            print(f"  views over the result: {', '.join(shares)}")
            for label, run in (("full", full), ("1% changed", incremental)):
                print(
                    f"  publishing after the {label} sync: {run.publish_seconds:.2f}s "
                    f"({run.publish_seconds / run.seconds:.1%} of it), "
                    f"{run.published_bytes / 1e6:,.0f} MB copied"
                )
    finally:
        sandbox.close()
    return Run(vendor, invoices, base, rest, full, incremental, views)


def busiest_second(times: list[float]) -> int:
    """The most of these sorted moments that fall within any one second (a half-open one)."""
    first, most = 0, 0
    for last, moment in enumerate(times):
        while times[first] <= moment - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def rate_limited(vendor: str, invoices: int, pace: float | None) -> RateRun:
    """One sync against 50 ms latency and a 25 requests/s token bucket (burst 25), measured
    by the emulator: the rate it admitted while the sync was reading, and the 429s it sent."""
    sandbox = Sandbox(vendor, invoices, latency=0.05, rate=RATE_LIMIT)
    settings = dict(sandbox.settings)
    if pace:
        settings[f"SOURCES__{vendor.upper()}__MAX_REQUESTS_PER_SECOND"] = str(pace)
    try:
        with tempfile.TemporaryDirectory() as folder:
            measure(invoice_sync, vendor, settings, Path(folder))
            counts = sandbox.ask("requests")
            times = sorted(sandbox.ask("admitted"))
    finally:
        sandbox.close()
    run = RateRun(
        vendor,
        paced=bool(pace),
        per_second=(len(times) - 1) / (times[-1] - times[0]),
        busiest_second=busiest_second(times),
        refused=counts.get("rate_limited", 0),
    )
    how = f"paced at {pace:g}/s" if pace else "unpaced"
    print(
        f"  {vendor} ({how}): {len(times)} requests at {run.per_second:.1f}/s "
        f"({run.per_second / RATE_LIMIT:.0%} of {RATE_LIMIT}/s), at most {run.busiest_second} "
        f"in one second, {run.refused} answered 429"
    )
    return run


# -- issue #9's targets ----------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _peak(run: Run) -> float:
    return max(run.full.peak, run.incremental.peak)


def target_lines(runs: list[Run], rates: list[RateRun]) -> list[str]:
    """Each of issue #9's targets that this run's measurements can judge, with the figures."""
    lines = []
    for run in runs:
        at = f"{run.vendor}, {run.invoices:,}"
        ratio = run.full.seconds / run.floor.seconds
        lines.append(
            f"{at}: full sync {ratio:.1f}x the floor (at most {MOST_FLOOR_RATIO:g}x): "
            f"{_verdict(ratio <= MOST_FLOOR_RATIO)}"
        )
        if run.alternative:
            speedup = run.alternative.seconds / run.full.seconds
            lines.append(
                f"{at}: {speedup:.1f}x faster than rest_api_source (at least "
                f"{LEAST_SPEEDUP:g}x): {_verdict(speedup >= LEAST_SPEEDUP)}"
            )
        lines.append(
            f"{at}: peak {_peak(run):,.0f} MB (under {MOST_PEAK_MB} MB): "
            f"{_verdict(_peak(run) < MOST_PEAK_MB)}"
        )
        share = max(run.views.values()) / run.full.seconds
        lines.append(
            f"{at}: slowest view {share:.2%} of the full sync (under {MOST_VIEWS_SHARE:.0%}): "
            f"{_verdict(share < MOST_VIEWS_SHARE)}"
        )
        publishing = max(
            sync.publish_seconds / sync.seconds for sync in (run.full, run.incremental)
        )
        lines.append(
            f"{at}: publishing at most {publishing:.1%} of a sync (under "
            f"{MOST_PUBLISH_SHARE:.0%}; issue #33): {_verdict(publishing < MOST_PUBLISH_SHARE)}"
        )
    for vendor in dict.fromkeys(run.vendor for run in runs):
        sizes = sorted((run for run in runs if run.vendor == vendor), key=lambda run: run.invoices)
        if len(sizes) > 1:
            small, big = sizes[0], sizes[-1]
            lines.append(
                f"{vendor}: peak {_peak(big):,.0f} MB at {big.invoices:,} against "
                f"{_peak(small):,.0f} MB at {small.invoices:,} (no more): "
                f"{_verdict(_peak(big) <= _peak(small))}"
            )
    for rate in (rate for rate in rates if rate.paced):
        share = rate.per_second / RATE_LIMIT
        within = rate.busiest_second <= RATE_LIMIT and rate.refused == 0
        lines.append(
            f"{rate.vendor}, paced: {share:.1%} of the limit (at least "
            f"{LEAST_PACED_SHARE:.0%}), at most {rate.busiest_second} in one second (at most "
            f"{RATE_LIMIT}), {rate.refused} answered 429 (none): "
            f"{_verdict(share >= LEAST_PACED_SHARE and within)}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", action="append", choices=VENDOR_NAMES)
    parser.add_argument(
        "--invoices",
        type=int,
        action="append",
        metavar="N",
        help="invoices to sync (20,000 unless given; give it twice, e.g. 20000 and 200000, "
        "to compare peak memory across sizes)",
    )
    parser.add_argument(
        "--alternative",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure dlt's rest_api_source too (default: only up to 20,000 invoices; it "
        "peaked at 10.7 GB there, so 200,000 would exhaust most machines)",
    )
    parser.add_argument(
        "--rate-limit",
        action="store_true",
        help="also measure the request rate at 50 ms latency and 25 requests/s",
    )
    parser.add_argument("--rate-invoices", type=int, default=20_000, metavar="N")
    args = parser.parse_args(argv)
    vendors = args.vendor or VENDOR_NAMES
    runs = []
    for invoices in args.invoices or [20_000]:
        alternative = invoices <= 20_000 if args.alternative is None else args.alternative
        runs += [benchmark(vendor, invoices, alternative) for vendor in vendors]
    rates = []
    if args.rate_limit:
        print(f"\n50 ms latency, {RATE_LIMIT} requests/s limit ({args.rate_invoices:,} invoices):")
        for vendor in vendors:
            if vendor in PACEABLE:
                rates.append(rate_limited(vendor, args.rate_invoices, pace=RATE_LIMIT))
            rates.append(rate_limited(vendor, args.rate_invoices, pace=None))
    print("\nissue #9's targets, as far as this run can judge them:")
    for line in target_lines(runs, rates):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
