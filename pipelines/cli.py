"""`invoice-sync`: demo, sync, summary, sandbox (see the README for the contract).

Exit statuses: 0 success; 1 a source failed (or the last sync of one did, for `summary`);
2 usage or configuration; 75 another sync of the warehouse is running; 130 and 143 SIGINT
(Ctrl-C) and SIGTERM. Every expected failure is one line on standard error.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

import dlt
import duckdb
from dlt.common.runtime import signals

from pipelines import summary
from pipelines.destinations import (
    DEFAULT_DESTINATION,
    DESTINATION_KEY,
    DESTINATIONS,
    DatabaseError,
    Destination,
    DuckDBDestination,
    resolve,
)
from pipelines.progress import Progress, log_in_one_line_per_record
from pipelines.registry import VENDORS
from pipelines.sync import (
    DEFAULT_DB,
    Interrupted,
    configured_value,
    configured_vendors,
    disk_full,
    interruption,
    sync,
)
from pipelines.views import ViewBuildError
from pipelines.warehouse import (
    DEFAULT_LOCK_WAIT,
    SyncBusy,
    Warehouse,
    WarehouseError,
    first_line,
    made_by_demo,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 75
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class UsageError(RuntimeError):
    """A command that cannot run as given; the message is one line for the user."""


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _number_between(
    convert: Callable[[str], float], low: float, high: float, refusal: str
) -> Callable[[str], float]:
    """An argparse type: `convert`ed text from `low` to `high`, else `refusal` and the text."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{refusal}: {text!r}")
        return value

    return parse


_seconds = _number_between(float, 0, math.inf, "not a number of seconds, 0 or more")
_port = _number_between(int, 0, 65535, "not a port number (0 to 65535)")


def _package_version() -> str:
    try:
        return version("invoice-sync")
    except PackageNotFoundError:
        return "unknown"


def _add_destination(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--db",
        default=None,
        type=Path,
        help=f"DuckDB file (default {DEFAULT_DB}); for --destination duckdb",
    )
    command.add_argument(
        "--destination",
        choices=DESTINATIONS,
        default=None,
        help=f"where the warehouse is (default {DEFAULT_DESTINATION}, or {DESTINATION_KEY} in "
        ".dlt/config.toml); credentials as dlt reads them, e.g. "
        "DESTINATION__POSTGRES__CREDENTIALS",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoice-sync",
        description="Keep a DuckDB warehouse in step with your billing APIs' invoices.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="sync the built-in sandbox twice and show the AR summary"
    )
    demo.add_argument(
        "--db", default=DEFAULT_DB, type=Path, help=f"DuckDB file (default {DEFAULT_DB})"
    )

    run = commands.add_parser("sync", help="sync sources from their APIs, then rebuild the views")
    run.add_argument("sources", nargs="*", metavar="SOURCE", help=f"any of: {', '.join(VENDORS)}")
    _add_destination(run)
    run.add_argument(
        "--full-refresh", action="store_true", help="re-read everything and replace what is stored"
    )
    run.add_argument("--quiet", action="store_true", help="print errors only (for cron)")
    run.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how long to wait for another sync of the same database to end "
        f"(default {DEFAULT_LOCK_WAIT:.0f}, or invoice_sync.lock_wait in .dlt/config.toml)",
    )

    show = commands.add_parser("summary", help="outstanding, overdue and paid, and aging")
    _add_destination(show)
    show.add_argument("--as-of", type=_as_of, default=None, metavar="YYYY-MM-DD")
    show.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table for people, csv or json for scripts (amounts exact)",
    )

    report = commands.add_parser("report", help="write the AR figures as one HTML page")
    _add_destination(report)
    report.add_argument("--as-of", type=_as_of, default=None, metavar="YYYY-MM-DD")
    report.add_argument(
        "--out", default=Path("ar-report.html"), type=Path, help="default ar-report.html"
    )

    query = commands.add_parser(
        "query", help="run one SQL statement over the warehouse, read-only, and print its rows"
    )
    query.add_argument("sql", help='e.g. "SELECT * FROM billing.ar_summary"')
    _add_destination(query)
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")

    sandbox = commands.add_parser("sandbox", help="serve the vendor emulators until interrupted")
    sandbox.add_argument(
        "--port", type=_port, default=None, help="port (default 8765; 0: any free port)"
    )
    return parser


def _say(message: str) -> None:
    print(f"invoice-sync: {message}", file=sys.stderr, flush=True)


def _lock_wait(given: float | None) -> float:
    if given is not None:
        return given
    configured = dlt.config.get("invoice_sync.lock_wait")
    try:
        return DEFAULT_LOCK_WAIT if configured is None else float(configured)
    except (TypeError, ValueError):
        raise UsageError(
            f"invoice_sync.lock_wait is not a number of seconds: {configured!r}"
        ) from None


def _warehouse(args: argparse.Namespace) -> Path | Destination:
    """The warehouse a command names: the DuckDB file's path as given, or the destination."""
    destination = resolve(args.destination, args.db, DEFAULT_DB)
    if isinstance(destination, DuckDBDestination):
        return args.db if args.db is not None else Path(DEFAULT_DB)
    return destination


def _refuse_real_accounts_in_demo(db: Path, vendors: list) -> None:
    """The demo's database holds sandbox invoices: real ones must not be mixed in."""
    if not made_by_demo(Warehouse.at(db)):
        return
    real = [
        vendor.name
        for vendor in vendors
        if urlparse(str(configured_value(vendor.name, "base_url") or "")).hostname
        not in LOOPBACK_HOSTS
    ]
    if real:
        raise UsageError(
            f"{db} is the demo's database (sandbox invoices); refusing to load "
            f"{', '.join(real)} into it: pass --db with another file for real accounts"
        )


def cmd_sync(args: argparse.Namespace) -> int:
    unknown = [name for name in args.sources if name not in VENDORS]
    if unknown:
        raise UsageError(f"unknown source {', '.join(unknown)}; choose from {', '.join(VENDORS)}")
    vendors = [VENDORS[name] for name in args.sources] or configured_vendors()
    if not vendors:
        raise UsageError(
            "no source is configured: set SOURCES__<NAME>__BASE_URL and its "
            "credentials (see README), or try `invoice-sync demo`"
        )
    warehouse = _warehouse(args)
    if not isinstance(warehouse, Destination):
        _refuse_real_accounts_in_demo(warehouse, vendors)
    results = sync(
        vendors,
        warehouse,
        full_refresh=args.full_refresh,
        progress=Progress(quiet=args.quiet),
        lock_wait=_lock_wait(args.wait),
    )
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_summary(args: argparse.Namespace) -> int:
    warehouse = _warehouse(args)
    data = summary.fetch(warehouse, args.as_of)
    print(summary.render_data(data, warehouse, args.as_of, args.format))
    return EXIT_FAILED if summary.failed_runs(data.runs) else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import ReportError, write_report

    try:
        print(write_report(_warehouse(args), args.out, args.as_of))
    except ReportError as err:
        _say(str(err))
        return err.exit_status
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    from pipelines.query import QueryError, render, run_query

    try:
        columns, rows = run_query(_warehouse(args), args.sql)
    except QueryError as err:
        raise UsageError(str(err)) from None
    print(render(columns, rows, args.format))
    return EXIT_OK


def cmd_sandbox(args: argparse.Namespace) -> int:
    from pipelines.sandbox import DEFAULT_PORT, build_emulators, serve

    port = DEFAULT_PORT if args.port is None else args.port
    try:
        server = serve(build_emulators(), port=port)
    except OSError as err:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{port} ({err.strerror}); try --port 0 for any free port"
        ) from None
    for key, value in server.settings().items():
        print(f"{key}={value}")
    sys.stdout.flush()
    print(
        f"Sandbox serving {', '.join(VENDORS)} at {server.url}; Ctrl-C to stop. "
        "To sync from it in another shell, export the lines above (e.g. `export "
        "SOURCES__METEROID__BASE_URL=...`) and run `invoice-sync sync`.",
        file=sys.stderr,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import DemoError, run_demo

    try:
        return EXIT_OK if run_demo(args.db) else EXIT_FAILED
    except DemoError as err:
        raise UsageError(str(err)) from None


HANDLERS = {
    "demo": cmd_demo,
    "sync": cmd_sync,
    "summary": cmd_summary,
    "report": cmd_report,
    "query": cmd_query,
    "sandbox": cmd_sandbox,
}
SYNCING = {"demo", "sync"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log_in_one_line_per_record()
    try:
        if args.command not in SYNCING:
            return HANDLERS[args.command](args)
        # SIGINT and SIGTERM stop a sync at its next safe point: dlt's extraction, normaliser
        # and loader look for them, and so do our HTTP retries and the wait for the lock (a
        # second signal stops at once)
        with signals.intercepted_signals():
            return HANDLERS[args.command](args)
    except (Interrupted, KeyboardInterrupt) as signalled:
        stop = interruption(signalled) or Interrupted(signal.SIGINT)
        if args.command in SYNCING:
            during = f" while syncing {stop.source}" if stop.source else ""
            _say(
                f"interrupted by {stop.name}{during}; the next sync completes what this one started"
            )
        else:
            _say(f"interrupted by {stop.name}")
        return stop.exit_status
    except SyncBusy as err:
        _say(str(err))
        return EXIT_BUSY
    except (UsageError, WarehouseError) as err:
        _say(str(err))
        return EXIT_USAGE
    except summary.SummaryError as err:
        _say(str(err))
        return err.exit_status
    except ViewBuildError as err:
        _say(f"{err}; the previous views were kept")
        return EXIT_FAILED
    except DatabaseError as err:
        _say(f"the warehouse failed: {err}")
        return EXIT_FAILED
    except BrokenPipeError:  # the reader went away (`... | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (OSError, duckdb.Error) as err:
        if disk := disk_full(err):
            _say(f"the disk is full ({disk}); free some space and run the command again")
        else:
            _say(f"{err.__class__.__name__}: {first_line(err)}")
        return EXIT_FAILED
    except Exception as err:  # a bug: one line, unless asked for the traceback
        if os.environ.get("INVOICE_SYNC_DEBUG"):
            raise
        _say(
            f"unexpected error: {err.__class__.__name__}: {first_line(err)} (please report this "
            "with the command you ran; INVOICE_SYNC_DEBUG=1 shows the traceback)"
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
