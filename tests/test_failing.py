"""A run that fails, fails well (issue #36): one line and a documented exit status for every
expected failure, a row in billing.sync_runs for every run, and progress that survives."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sources.common.sandbox.server import Faults
from sources.exsited import VENDOR as EXSITED
from sources.meteroid import VENDOR as METEROID
from sources.sequence import VENDOR as SEQUENCE
from tests.clock import TODAY
from tests.helpers import SCRIPT, cli_env, run_cli, start_cli, stderr_lines

SLOW_METEROID = {"SOURCES__METEROID__PER_PAGE": "5", "SOURCES__METEROID__PARALLEL_PAGES": "1"}
# dlt's retrying client as a user gets it, not the tests' fast one (tests/conftest.py)
REAL_RETRIES = {
    "RUNTIME__REQUEST_MAX_ATTEMPTS": "10",
    "RUNTIME__REQUEST_BACKOFF_FACTOR": "1",
    "RUNTIME__REQUEST_MAX_RETRY_DELAY": "60",
}


def _both_truths(*sandboxes) -> dict:
    return {key: row for sb in sandboxes for key, row in sb.truth_summary(TODAY).items()}


@pytest.mark.parametrize(
    ("signum", "status", "name"),
    [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_a_signal_stops_the_whole_run_and_the_next_sync_completes_it(
    make_sandbox, tmp_path, signum, status, name
) -> None:
    exsited = make_sandbox(EXSITED, invoices=40, faults=Faults(latency=0.3))
    meteroid = make_sandbox(METEROID, invoices=20)
    env = cli_env(**exsited.settings, **meteroid.settings, SOURCES__EXSITED__LIMIT="4")
    db = tmp_path / "w.duckdb"
    run = start_cli(["sync", "--db", str(db)], env, tmp_path)
    assert run.stdout.readline().strip() == "exsited: syncing"
    time.sleep(1.5)
    sent = time.monotonic()
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert run.returncode == status
    assert stderr_lines(err) == [
        f"invoice-sync: interrupted by {name} while syncing exsited; the next sync completes "
        "what this one started"
    ]
    assert "meteroid" not in out  # the whole run stopped, not just its current source
    exsited.db = meteroid.db = db
    assert exsited.query("SELECT source, status FROM billing.sync_runs") == [
        ("exsited", "interrupted")
    ]
    again = run_cli(["sync", "--db", str(db)], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert exsited.summary_rows(TODAY) == _both_truths(exsited, meteroid)


def test_a_signal_cuts_short_a_wait_between_retries(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=10)
    sb.emulator.faults.outage(120)
    run = start_cli(
        ["sync", "--db", str(tmp_path / "w.duckdb")],
        cli_env(**sb.settings, **REAL_RETRIES),
        tmp_path,
    )
    assert run.stdout.readline().strip() == "meteroid: syncing"
    time.sleep(4)  # in the back-off after the third attempt (1 s, 2 s, then 4 s)
    sent = time.monotonic()
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert time.monotonic() - sent < 3
    assert run.returncode == 143
    assert stderr_lines(err)[-1].startswith("invoice-sync: interrupted by SIGTERM")


def test_a_killed_sync_is_recorded_by_the_next(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=60, faults=Faults(latency=0.2))
    env = cli_env(**sb.settings, **SLOW_METEROID)
    run = start_cli(["sync", "--db", str(sb.db)], env, tmp_path)
    assert run.stdout.readline().strip() == "meteroid: syncing"
    time.sleep(1)
    run.kill()
    run.wait()
    again = run_cli(["sync", "--db", str(sb.db)], env, tmp_path)
    assert again.returncode == 0, again.stderr
    runs = sb.query("SELECT status, error FROM billing.sync_runs ORDER BY started_at")
    assert [status for status, _ in runs] == ["failed", "succeeded"]
    assert runs[0][1].startswith("meteroid: the sync stopped before it finished (killed,")
    assert f"(pid {run.pid})" in runs[0][1]
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


@pytest.mark.parametrize("case", ["directory", "missing folder", "not duckdb", "read-only"])
def test_a_db_it_cannot_use_is_one_line_and_status_2(case: str, tmp_path: Path) -> None:
    env = cli_env(SOURCES__METEROID__BASE_URL="http://127.0.0.1:9", SOURCES__METEROID__API_KEY="k")
    expected = {
        "directory": "is a directory; pass a file name",
        "missing folder": "does not exist; create it or pass another --db",
        "not duckdb": "exists and is not a DuckDB database",
        "read-only": "(permission denied); pass a --db in a folder you can write to",
    }[case]
    db = tmp_path / "w.duckdb"
    if case == "directory":
        db.mkdir()
    elif case == "missing folder":
        db = tmp_path / "nowhere" / "w.duckdb"
    elif case == "not duckdb":
        db.write_text("a spreadsheet, not a database\n" * 10)
    else:
        _read_only_folder(db.parent)
    try:
        run = run_cli(["sync", "meteroid", "--db", str(db)], env, tmp_path)
    finally:
        if case == "read-only":
            subprocess.run(["umount", str(db.parent)], check=False)
    assert run.returncode == 2
    [line] = stderr_lines(run.stderr)
    assert line.startswith("invoice-sync: --db ") and expected in line


def _read_only_folder(folder: Path) -> None:
    """A folder no one may write to, root included: a read-only file system."""
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)])
    if mounted.returncode != 0:
        pytest.fail("cannot mount a read-only tmpfs: these tests run as root (as CI does)")


def test_a_full_disk_is_one_line_and_the_next_sync_completes(make_sandbox, tmp_path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)]).returncode:
        pytest.fail("cannot mount a tmpfs: these tests run as root (as CI does)")
    try:
        sb = make_sandbox(METEROID, invoices=3000)
        sb.db = small / "w.duckdb"
        env = cli_env(**sb.settings)
        full = run_cli(["sync", "--db", str(sb.db)], env, tmp_path)
        assert full.returncode == 1
        lines = stderr_lines(full.stderr)
        assert lines and all("the disk is full" in line for line in lines), lines
        assert "Traceback" not in full.stderr
        subprocess.run(["mount", "-o", "remount,size=200m", str(small)], check=True)
        again = run_cli(["sync", "--db", str(sb.db)], env, tmp_path)
        assert again.returncode == 0, again.stderr
        assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
        statuses = sb.query("SELECT status FROM billing.sync_runs ORDER BY started_at")
        assert statuses == [("failed",), ("succeeded",)]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


@pytest.mark.parametrize(
    ("vendor", "path"), [(EXSITED, "/api/v3/invoices"), (METEROID, "/api/v1/invoices")]
)
def test_a_body_cut_short_names_the_request(make_sandbox, vendor, path) -> None:
    sb = make_sandbox(vendor, invoices=10)
    if vendor is EXSITED:  # after its token
        sb.emulator.after_requests(1, lambda _: sb.emulator.faults.inject("cut_json"))
    else:
        sb.emulator.faults.inject("cut_json")
    result = sb.sync()
    assert result.error is not None
    assert result.error.one_line().startswith(
        f"{vendor.name}: malformed response from {path}: not JSON ("
    ), result.error.one_line()


def test_retries_span_minutes_by_default(tmp_path: Path) -> None:
    """Outside the repository (no .dlt/config.toml) and without the tests' settings."""
    env = {k: v for k, v in cli_env().items() if not k.startswith("RUNTIME__")}
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dlt; from pipelines.tuning import register_defaults; register_defaults(); "
            "print(*(dlt.config[f'runtime.request_{k}'] for k in "
            "('max_attempts', 'backoff_factor', 'max_retry_delay')))",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    attempts, factor, ceiling = (float(v) for v in shown.stdout.split())
    waits = [min(factor * 2**n, ceiling) for n in range(int(attempts) - 1)]
    assert sum(waits) >= 180  # minutes, not the 15 s dlt's defaults give


def test_a_passing_outage_is_outlived_in_the_same_run(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "10")
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.1")
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_RETRY_DELAY", "1")  # retries span 6.5 s
    sb = make_sandbox(SEQUENCE, invoices=600)
    sb.emulator.after_requests(600, lambda _: sb.emulator.faults.outage(3))
    result = sb.sync_ok()
    assert sb.emulator.requests["fault_drop"] > 0
    assert sb.emulator.requests["detail"] == sb.emulator.requests["line_items"] == 600
    assert result.counts.new == 600
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_a_first_sync_that_loses_the_api_keeps_what_it_read(make_sandbox) -> None:
    """A first Sequence sync of 2,000 invoices loses the API halfway for longer than its
    retries last: it loads what it read, the next sync reads on, and reads again only the
    invoices every Sequence sync reads (those that can still change: sources/sequence)."""
    sb = make_sandbox(SEQUENCE, invoices=2000)
    sb.emulator.after_requests(2000, lambda _: sb.emulator.faults.outage(3))
    first = sb.sync()
    assert first.error is not None
    line = first.error.one_line()
    assert line.startswith("sequence: could not connect to ")
    kept = sb.query("SELECT count(*) FROM billing.invoices")[0][0]
    assert 900 <= kept <= 1100
    assert f"stopped part-way: the {kept} invoices read before it were loaded" in line
    assert line.endswith("(the next sync reads on from there)")
    changeable = (
        "SELECT count(*) FROM billing.invoices WHERE status IN ('draft', 'open', 'uncollectible')"
    )
    [(kept_changeable,)] = sb.query(changeable)
    time.sleep(3)
    second = sb.sync_ok()
    assert second.rows["invoices"] == 2000 - kept  # it read on from where the first stopped
    # every invoice's line items read once; a detail read again only for the invoices that
    # can still change, and for the one whose read the outage cut between its two requests
    assert sb.emulator.requests["line_items"] == 2000
    assert sb.emulator.requests["detail"] - 2000 - kept_changeable in (0, 1)
    detail = sb.emulator.requests["detail"]
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    # the state it left is whole: the next sync reads only what can still change
    [(all_changeable,)] = sb.query(changeable)
    third = sb.sync_ok()
    assert (third.counts.new, third.counts.changed) == (0, 0)
    assert sb.emulator.requests["detail"] == detail + all_changeable
    assert sb.emulator.requests["line_items"] == 2000


def test_the_version(tmp_path: Path) -> None:
    shown = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "invoice-sync 0.1.0"
