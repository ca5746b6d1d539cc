"""`invoice-sync`: demo, sync, summary, sandbox (see the README for the contract)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from pipelines import summary
from pipelines.registry import VENDORS
from pipelines.sync import DEFAULT_DB, configured_vendors, sync
from pipelines.views import ViewBuildError


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoice-sync",
        description="Keep a DuckDB warehouse in step with your billing APIs' invoices.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="sync the built-in sandbox twice and show the AR summary"
    )
    demo.add_argument(
        "--db", default=DEFAULT_DB, type=Path, help=f"DuckDB file (default {DEFAULT_DB})"
    )

    run = commands.add_parser("sync", help="sync sources from their APIs, then rebuild the views")
    run.add_argument("sources", nargs="*", metavar="SOURCE", help=f"any of: {', '.join(VENDORS)}")
    run.add_argument("--db", default=DEFAULT_DB, type=Path)
    run.add_argument(
        "--full-refresh", action="store_true", help="re-read everything and replace what is stored"
    )

    show = commands.add_parser("summary", help="outstanding, overdue and paid, and aging")
    show.add_argument("--db", default=DEFAULT_DB, type=Path)
    show.add_argument("--as-of", type=_as_of, default=None, metavar="YYYY-MM-DD")
    show.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table for people, csv or json for scripts (amounts exact)",
    )

    report = commands.add_parser("report", help="write the AR figures as one HTML page")
    report.add_argument("--db", default=DEFAULT_DB, type=Path)
    report.add_argument("--as-of", type=_as_of, default=None, metavar="YYYY-MM-DD")
    report.add_argument(
        "--out", default=Path("ar-report.html"), type=Path, help="default ar-report.html"
    )

    sandbox = commands.add_parser("sandbox", help="serve the vendor emulators until interrupted")
    sandbox.add_argument("--port", type=int, default=None, help="port (default 8765)")
    return parser


def _fail(message: str) -> int:
    print(f"invoice-sync: {message}", file=sys.stderr)
    return 1


def cmd_sync(args: argparse.Namespace) -> int:
    unknown = [name for name in args.sources if name not in VENDORS]
    if unknown:
        return _fail(f"unknown source {', '.join(unknown)}; choose from {', '.join(VENDORS)}")
    vendors = [VENDORS[name] for name in args.sources] or configured_vendors()
    if not vendors:
        return _fail(
            "no source is configured: set SOURCES__<NAME>__BASE_URL and its "
            "credentials (see README), or try `invoice-sync demo`"
        )
    results = sync(vendors, args.db, full_refresh=args.full_refresh)
    for result in results:
        if result.ok:
            print(result.describe())
        else:
            print(result.describe(), file=sys.stderr)
    return 0 if all(r.ok for r in results) else 1


def cmd_summary(args: argparse.Namespace) -> int:
    try:
        print(summary.render(args.db, args.as_of, args.format))
    except summary.SummaryError as err:
        return _fail(str(err))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipelines.report import ReportError, write_report

    try:
        print(write_report(args.db, args.out, args.as_of))
    except ReportError as err:
        _fail(str(err))
        return err.exit_status
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from pipelines.sandbox import DEFAULT_PORT, build_emulators, serve

    port = DEFAULT_PORT if args.port is None else args.port
    try:
        server = serve(build_emulators(), port=port)
    except OSError as err:
        return _fail(
            f"cannot listen on 127.0.0.1:{port} ({err.strerror}); try --port 0 for any free port"
        )
    for key, value in server.settings().items():
        print(f"{key}={value}")
    sys.stdout.flush()
    print(f"Sandbox serving {', '.join(VENDORS)} at {server.url}; Ctrl-C to stop.", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import DemoError, run_demo

    try:
        return 0 if run_demo(args.db) else 1
    except DemoError as err:
        return _fail(str(err))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"demo": cmd_demo, "sync": cmd_sync, "summary": cmd_summary, "sandbox": cmd_sandbox}
    handler["report"] = cmd_report
    try:
        return handler[args.command](args)
    except ViewBuildError as err:
        return _fail(f"{err}; the previous views were kept")
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
