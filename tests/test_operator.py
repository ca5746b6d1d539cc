"""Running it every hour (issue #35): progress while it runs, quiet for cron, working files
that stay the size one sync leaves, and the demo's database kept apart from real accounts."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import time
from pathlib import Path

from pipelines.demo import prepare_database
from pipelines.progress import Progress
from pipelines.sandbox import environment
from pipelines.sync import sync
from pipelines.warehouse import Warehouse
from sources.common.sandbox.server import Faults
from sources.meteroid import VENDOR as METEROID
from sources.press import VENDOR as PRESS
from sources.sequence import VENDOR as SEQUENCE
from tests.clock import TODAY
from tests.helpers import SCRIPT, cli_env, run_cli, stderr_lines


def _progress_of(sb, progress: Progress, **options) -> list[str]:
    with environment(sb.settings):
        sync([sb.vendor], sb.db, source_options={sb.vendor.name: options}, progress=progress)
    return progress.stream.getvalue().splitlines()


def test_a_sync_says_how_far_it_has_got_while_it_runs(make_sandbox) -> None:
    # Sequence hands dlt each page of five invoices as it is read (eleven requests a page)
    sb = make_sandbox(SEQUENCE, invoices=40, faults=Faults(latency=0.05))
    lines = _progress_of(sb, Progress(io.StringIO(), live=False, period=0.3), limit=5)
    assert lines[0] == "sequence: syncing"
    reading = [line for line in lines if line.startswith("sequence: reading, ")]
    assert len(reading) >= 3
    counts = [int(line.split(", ")[1].split()[0].replace(",", "")) for line in reading]
    assert counts == sorted(counts) and len(set(counts)) >= 2  # invoices read so far, growing
    requests = [int(line.split(" requests, ")[0].rsplit(", ", 1)[1]) for line in reading]
    assert requests == sorted(requests) and requests[-1] > requests[0]
    assert lines[-1].startswith("sequence: synced in ") and "40 new" in lines[-1]


def test_progress_shows_what_a_retry_waits_for(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.5")
    sb = make_sandbox(METEROID, invoices=5)
    sb.emulator.faults.outage(1.2)
    lines = _progress_of(sb, Progress(io.StringIO(), live=False, period=0.2))
    waits = [line for line in lines if "failed: ConnectionError" in line]
    assert waits[0].endswith(
        "(attempt 1 failed: ConnectionError on GET /api/v1/invoices; retrying in 0.5s)"
    )
    assert lines[-1].startswith("meteroid: synced in ")


def test_on_a_terminal_progress_is_one_line_redrawn(make_sandbox) -> None:
    sb = make_sandbox(METEROID, invoices=30, faults=Faults(latency=0.1))
    stream = io.StringIO()
    _progress_of(sb, Progress(stream, live=True, period=0.1), per_page=5, parallel_pages=1)
    text = stream.getvalue()
    assert "\r\x1b[Kmeteroid: reading, " in text
    # the live line is cleared before the result is written on a line of its own
    assert text.rsplit("\r\x1b[K", 1)[1].startswith("meteroid: synced in ")
    assert text.endswith("\n") and text.count("\n") == 2  # "syncing" and the result


def test_quiet_prints_errors_only(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=10)
    quiet = run_cli(["sync", "--quiet", "--db", str(sb.db)], cli_env(**sb.settings), tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    wrong = cli_env(**{**sb.settings, "SOURCES__METEROID__API_KEY": "wrong"})
    failed = run_cli(["sync", "--quiet", "--db", str(sb.db)], wrong, tmp_path)
    assert (failed.returncode, failed.stdout) == (1, "")
    [line] = stderr_lines(failed.stderr)
    assert line.startswith("meteroid: the API refused our credentials (HTTP 401")


def test_a_full_refresh_prints_no_warnings(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=10)
    env = cli_env(**sb.settings)
    assert run_cli(["sync", "--db", str(sb.db)], env, tmp_path).returncode == 0
    refreshed = run_cli(["sync", "--full-refresh", "--db", str(sb.db)], env, tmp_path)
    assert (refreshed.returncode, refreshed.stderr) == (0, "")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_hourly_syncs_of_an_unchanged_account_leave_the_working_folder_as_one_does(
    make_sandbox,
) -> None:
    sb = make_sandbox(PRESS, invoices=40)  # a snapshot: every sync loads every invoice again
    sb.sync_ok()
    folder = Warehouse.at(sb.db).folder
    pipelines = folder / "invoice_sync_press"
    after_one = _size(pipelines)
    for _ in range(12):
        sb.sync_ok()
    assert not list((pipelines / "load" / "loaded").iterdir())  # no loaded package is kept
    assert _size(pipelines) <= after_one * 1.1
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_sync_refuses_to_load_real_accounts_into_the_demos_database(tmp_path) -> None:
    db = tmp_path / "demo.duckdb"
    prepare_database(db)
    real = cli_env(
        SOURCES__METEROID__BASE_URL="https://api.meteroid.example", SOURCES__METEROID__API_KEY="k"
    )
    refused = run_cli(["sync", "--db", str(db)], real, tmp_path)
    assert refused.returncode == 2
    [line] = stderr_lines(refused.stderr)
    assert line == (
        f"invoice-sync: {db} is the demo's database (sandbox invoices); refusing to load "
        "meteroid into it: pass --db with another file for real accounts"
    )


def test_query_reads_the_warehouse_after_the_install(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=30)
    sb.sync_ok()
    sql = "SELECT source, currency, outstanding FROM billing.ar_summary ORDER BY ALL"
    expected = sb.query(sql)
    shown = run_cli(["query", sql, "--db", str(sb.db), "--format", "csv"], cli_env(), tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "source,currency,outstanding"
    assert lines[1:] == [f"{s},{c},{o}" for s, c, o in expected]  # exact decimals
    doubled = run_cli(
        ["query", "SELECT 1 AS a, 2 AS a", "--db", str(sb.db), "--format", "json"],
        cli_env(),
        tmp_path,
    )
    assert json.loads(doubled.stdout) == [{"a": 1, "a_2": 2}]
    table = run_cli(["query", sql, "--db", str(sb.db)], cli_env(), tmp_path)
    assert table.stdout.splitlines()[-1] == f"({len(expected)} rows)"
    for statement, reason in [
        ("SELECT nope FROM billing.ar_summary", "Binder Error"),
        ("DELETE FROM billing.sync_runs", "read-only"),
        (f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'", "file system operations are disabled"),
        ("SELECT * FROM read_csv('/etc/hostname')", "file system operations are disabled"),
    ]:
        refused = run_cli(["query", statement, "--db", str(sb.db)], cli_env(), tmp_path)
        assert refused.returncode == 2
        [line] = stderr_lines(refused.stderr)
        assert line.startswith("invoice-sync: the query failed: ") and reason in line
    assert not (tmp_path / "out.csv").exists()
    for statement, said in [
        ("", 'no SQL given: e.g. "SELECT * FROM billing.ar_summary"'),
        ("  -- a comment", "one SQL statement at a time, not 0"),
        ("SELECT 1; SELECT 2", "one SQL statement at a time, not 2"),
    ]:
        refused = run_cli(["query", statement, "--db", str(sb.db)], cli_env(), tmp_path)
        assert (refused.returncode, stderr_lines(refused.stderr)) == (2, [f"invoice-sync: {said}"])


def test_a_reader_that_stops_reading_is_no_error(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=30)
    sb.sync_ok()
    piped = subprocess.run(
        f"{SCRIPT} query 'SELECT * FROM billing.invoices' --db {sb.db} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert piped.stdout.startswith("source ") and piped.stderr == ""


def test_a_partly_configured_source_says_what_is_missing(tmp_path) -> None:
    """A source with credentials but no base URL is not left out without a word (as when a
    deployment copies secrets.toml.example but not config.toml)."""
    env = cli_env(SOURCES__SEQUENCE__CLIENT_ID="id", SOURCES__SEQUENCE__CLIENT_SECRET="s")
    shown = run_cli(["sync", "--db", str(tmp_path / "w.duckdb")], env, tmp_path)
    assert shown.returncode == 1
    assert stderr_lines(shown.stderr) == [
        "sequence: not configured: SOURCES__SEQUENCE__BASE_URL not set (set it in "
        ".dlt/config.toml, .dlt/secrets.toml or the environment)"
    ]
    example = (Path(__file__).parents[1] / ".dlt" / "secrets.toml.example").read_text()
    for vendor in ("press", "sequence", "revolv3", "exsited", "meteroid"):
        section = example.split(f"[sources.{vendor}]")[1].split("[")[0]
        assert "base_url = " in section, vendor


def test_the_report_is_never_written_over_a_database(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=5)
    sb.sync_ok()
    before = sb.db.read_bytes()
    for out, what in [(sb.db, "a DuckDB database"), (tmp_path, "a folder")]:
        shown = run_cli(["report", "--db", str(sb.db), "--out", str(out)], cli_env(), tmp_path)
        assert (shown.returncode, stderr_lines(shown.stderr)) == (
            2,
            [
                f"invoice-sync: refusing to write the report over {out}: it is {what}; pass "
                "--out with an .html file's path"
            ],
        )
    assert sb.db.read_bytes() == before


def test_usage_errors_are_one_line_and_status_2(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=5)
    sb.sync_ok()
    for args, said in [
        (["summary", "--db", str(tmp_path)], "is a directory"),
        (["summary", "--db", str(tmp_path / "m.duckdb")], "no database at "),
        (["summary", "--db", "/etc/hostname"], "not a DuckDB database"),
        (["demo", "--db", str(tmp_path)], "is a directory"),
        (["sandbox", "--port", "99999"], "not a port number (0 to 65535): '99999'"),
        (["sync", "--wait", "-5"], "not a number of seconds, 0 or more: '-5'"),
    ]:
        shown = run_cli(args, cli_env(), tmp_path)
        assert shown.returncode == 2, (args, shown.stderr)
        line = stderr_lines(shown.stderr)[-1]  # argparse's own errors follow its usage
        assert said in line, (args, line)
    past = run_cli(["summary", "--db", str(sb.db), "--as-of", "1999-12-31"], cli_env(), tmp_path)
    assert past.returncode == 0
    assert past.stdout.splitlines()[0] == f"No invoices issued by 1999-12-31 in {sb.db}."


def test_ctrl_c_while_the_command_starts_is_one_line(make_sandbox, tmp_path) -> None:
    """Before the CLI runs, Python imports dlt, DuckDB and arrow for about a second."""
    process = subprocess.Popen(
        [SCRIPT, "--version"], stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=tmp_path
    )
    time.sleep(0.15)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stderr_lines(err) == ["invoice-sync: interrupted by SIGINT"]
