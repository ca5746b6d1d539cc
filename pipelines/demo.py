"""`invoice-sync demo`: the whole product against the built-in sandbox, no account needed."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from pipelines import summary
from pipelines.progress import Progress
from pipelines.registry import VENDORS
from pipelines.report import DEFAULT_OUT, ReportError, write_report
from pipelines.sandbox import build_emulators, environment, serve
from pipelines.sync import sync
from pipelines.warehouse import DEMO_MARKER, Warehouse, check_writable_location, made_by_demo
from sources.common.sandbox.server import Emulator
from sources.common.sandbox.truth import ar_summary


class DemoError(RuntimeError):
    pass


def prepare_database(db_path: Path) -> None:
    """Start from an empty warehouse marked as the demo's; refuse to touch one it did not make."""
    warehouse = Warehouse.at(db_path)
    check_writable_location(warehouse)  # a folder, or a file that is no database, said so
    exists = warehouse.published.exists() or warehouse.working.exists()
    if exists and not made_by_demo(warehouse):
        raise DemoError(
            f"{db_path} exists and was not made by the demo; "
            "pass --db with another file name (for example --db demo.duckdb)"
        )
    warehouse.published.unlink(missing_ok=True)
    shutil.rmtree(warehouse.folder, ignore_errors=True)
    warehouse.folder.mkdir()
    warehouse.demo_mark.touch()
    with duckdb.connect(str(warehouse.working)) as con:
        con.execute(f"CREATE SCHEMA {DEMO_MARKER}")  # published with it, for made_by_demo


def check_against_truth(db_path: Path, emulators: dict[str, Emulator]) -> str:
    """Compare billing.ar_summary with the sandbox's own figures; say how it went."""
    truth = ar_summary([row for emu in emulators.values() for row in emu.truth()], date.today())
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute(
            f"SELECT {', '.join(summary.SUMMARY_COLUMNS)} FROM billing.ar_summary"
        ).fetchall()
    finally:
        con.close()
    loaded = {
        (r[0], r[1]): dict(zip(summary.SUMMARY_COLUMNS[2:], r[2:], strict=True)) for r in rows
    }
    if loaded == truth:
        return (
            "Check: billing.ar_summary equals the sandbox's ground truth "
            f"({len(truth)} source/currency rows)."
        )
    differing = sorted(k for k in truth.keys() | loaded.keys() if truth.get(k) != loaded.get(k))
    return f"Check FAILED: billing.ar_summary differs from ground truth for {differing}"


def run_demo(db_path: Path, say: Callable[[str], None] = print) -> bool:
    prepare_database(db_path)
    progress = Progress(prefix="  ")
    emulators = build_emulators()
    server = serve(emulators)
    try:
        with environment(server.settings()):
            say(f"Sandbox serving {', '.join(VENDORS)} at {server.url}")
            say("First sync (everything):")
            ok = all(r.ok for r in sync(VENDORS.values(), db_path, progress=progress))

            say(
                "Changes in the sandbox: new invoices, payments, voids, finalised drafts; "
                "one page of new invoices arrives while the next sync is running."
            )
            for emulator in emulators.values():
                for change in emulator.ledger.random_changes(8):
                    say(f"  {emulator.name}: {change}")
                emulator.after_requests(1, lambda ledger: ledger.create_invoices(5))

            say("Second sync (incremental):")
            ok = all(r.ok for r in sync(VENDORS.values(), db_path, progress=progress)) and ok
    finally:
        server.stop()
    say("")
    say(summary.render(db_path))
    say("")
    say(check_against_truth(db_path, emulators))
    try:
        say(f"AR report: {write_report(db_path, db_path.parent / DEFAULT_OUT)}")
    except ReportError as err:
        raise DemoError(str(err)) from None
    return ok
