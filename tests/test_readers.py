"""Readers and writers coexist (issue #33): real reader processes hold and open the published
warehouse while real sync processes write and publish it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from pipelines import cli
from pipelines.sandbox import environment
from pipelines.warehouse import Warehouse, sync_lock
from sources.common.sandbox.server import Faults
from sources.exsited import VENDOR as EXSITED
from sources.meteroid import VENDOR as METEROID
from tests.clock import TODAY
from tests.helpers import FIGURES, cli_env, figures_of, run_cli, start_cli, stderr_lines

# A reader that opens the warehouse anew, reads the figures and closes it, in a loop.
LOOPING_READER = f"""
import duckdb, json, sys, time
db, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < until:
    try:
        con = duckdb.connect(db, read_only=True)
        rows = con.execute({FIGURES!r}).fetchall()
        con.close()
        print(json.dumps(repr(rows)), flush=True)
    except Exception as error:
        print(json.dumps("ERROR " + repr(error)), flush=True)
"""

# A reader that holds one connection: reads, waits for a line on stdin, reads again.
HOLDING_READER = f"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps(repr(con.execute({FIGURES!r}).fetchall())), flush=True)
sys.stdin.readline()
print(json.dumps(repr(con.execute({FIGURES!r}).fetchall())), flush=True)
"""


# Meteroid's pages one at a time, five invoices each (dlt passes settings to source arguments)
SLOW_PAGES = {"SOURCES__METEROID__PER_PAGE": "5", "SOURCES__METEROID__PARALLEL_PAGES": "1"}


def _figures(db: Path) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return figures_of(con)


def _change(sb) -> None:
    ledger = sb.ledger
    ledger.pay(ledger.find("open")[0].id)
    ledger.create_invoices(4)


def test_a_reader_holding_the_warehouse_never_blocks_a_sync(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=40)
    sb.sync_ok()
    before = _figures(sb.db)
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLDING_READER, str(sb.db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(reader.stdout.readline()) == before
        _change(sb)
        synced = run_cli(["sync", "meteroid", "--db", str(sb.db)], cli_env(**sb.settings), tmp_path)
        assert synced.returncode == 0, synced.stderr
        assert synced.stderr == ""
        after = _figures(sb.db)  # a new reader sees the new data
        assert after != before
        assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
        reader.stdin.write("\n")
        reader.stdin.flush()
        # the reader that held the file keeps its whole, consistent snapshot
        assert json.loads(reader.stdout.readline()) == before
    finally:
        reader.kill()
        reader.wait()


def test_readers_opening_during_a_sync_see_the_old_or_the_new_figures_whole(
    make_sandbox, tmp_path
) -> None:
    sb = make_sandbox(METEROID, invoices=60, faults=Faults(latency=0.05))
    sb.sync_ok(per_page=10)
    before = _figures(sb.db)
    _change(sb)
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", LOOPING_READER, str(sb.db), "12"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(1)
    env = cli_env(**sb.settings, **SLOW_PAGES)
    synced = run_cli(["sync", "meteroid", "--db", str(sb.db)], env, tmp_path)
    assert synced.returncode == 0, synced.stderr
    after = _figures(sb.db)
    assert after != before
    seen = [json.loads(line) for reader in readers for line in reader.communicate()[0].splitlines()]
    assert not [s for s in seen if s.startswith("ERROR")], seen[:3]
    assert set(seen) == {before, after}  # each read whole, old or new, and both were read


def test_syncs_started_together_run_one_after_the_other(make_sandbox, tmp_path) -> None:
    for existing in (False, True):
        sb = make_sandbox(METEROID, invoices=50, faults=Faults(latency=0.05))
        if existing:
            sb.sync_ok()
            _change(sb)
        env = cli_env(**sb.settings, **SLOW_PAGES)
        both = [start_cli(["sync", "--db", str(sb.db)], env, tmp_path) for _ in range(2)]
        outputs = [process.communicate(timeout=300) for process in both]
        assert [process.returncode for process in both] == [0, 0], outputs
        assert any("waiting for another sync" in out for out, _ in outputs), outputs
        assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
        runs = sb.query("SELECT status FROM billing.sync_runs WHERE source = 'meteroid'")
        assert runs == [("succeeded",)] * (3 if existing else 2)


def test_a_sync_that_cannot_wait_says_who_holds_the_lock(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=60, faults=Faults(latency=0.3))
    env = cli_env(**sb.settings, **SLOW_PAGES)
    first = start_cli(["sync", "--db", str(sb.db)], env, tmp_path)
    try:
        assert first.stdout.readline().strip() == "meteroid: syncing"
        second = run_cli(["sync", "--db", str(sb.db), "--wait", "0"], env, tmp_path)
        assert second.returncode == 75
        [line] = stderr_lines(second.stderr)
        assert line.startswith(
            f"invoice-sync: another invoice-sync sync of {sb.db.name} has been running since "
        )
        assert f"(pid {first.pid})" in line
    finally:
        first.communicate(timeout=300)
    assert first.returncode == 0
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


# Kills its own process the moment the sync renames its copy over the published file.
KILLED_WHILE_PUBLISHING = """
import os, signal, sys
from pipelines import cli
replace = os.replace
def killing_replace(source, target):
    if str(target) == sys.argv[1]:
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(source, target)
os.replace = killing_replace
cli.main(["sync", "--db", sys.argv[1]])
"""


def test_a_sync_killed_while_publishing_is_completed_by_the_next(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=40)
    sb.sync_ok()
    before = _figures(sb.db)
    _change(sb)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_PUBLISHING, str(sb.db)],
        env=cli_env(**sb.settings),
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert killed.returncode == -9
    assert _figures(sb.db) == before  # the published file is the old one, whole
    assert Warehouse.at(sb.db).staged_copy.exists()  # the copy it was about to rename
    sb.sync_ok()
    assert not Warehouse.at(sb.db).staged_copy.exists()
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_a_warehouse_of_an_earlier_version_is_adopted_without_reading_again(
    make_sandbox, tmp_path
) -> None:
    sb = make_sandbox(EXSITED, invoices=400)
    first = sb.sync_ok()
    # as an earlier version left it: the database written in place at --db, dlt's pipelines
    # in the working folder beside it
    os.replace(sb.working_db, sb.db)
    sb.ledger.pay(sb.ledger.find("open")[0].id)
    synced = run_cli(["sync", "exsited", "--db", str(sb.db)], cli_env(**sb.settings), tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert f"{sb.db.name}: adopted as the working warehouse" in synced.stdout
    assert sb.working_db.exists()
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    [(requests, new, changed)] = sb.query(
        "SELECT requests, invoices_new, invoices_changed FROM billing.sync_runs "
        "ORDER BY started_at DESC LIMIT 1"
    )
    # incremental, from the state the adopted warehouse holds: nothing is new again
    assert (new, changed) == (0, 1)
    assert requests < first.requests


def test_a_damaged_load_package_is_set_aside_and_read_again(make_sandbox, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=30)
    sb.sync_ok()
    pipeline = Warehouse.at(sb.db).folder / "invoice_sync_meteroid"
    damaged = pipeline / "load" / "normalized" / "1765000000.123456"
    damaged.mkdir(parents=True)
    (damaged / "schema_updates.json").write_text("[]")  # as two overlapping syncs left it
    _change(sb)
    synced = run_cli(["sync", "meteroid", "--db", str(sb.db)], cli_env(**sb.settings), tmp_path)
    assert synced.returncode == 0, synced.stderr
    [note] = [line for line in synced.stdout.splitlines() if "set aside" in line]
    assert note.startswith("meteroid: set aside a damaged load package (load/normalized/")
    assert list((Warehouse.at(sb.db).folder / "set-aside").iterdir())
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    again = run_cli(["sync", "meteroid", "--db", str(sb.db)], cli_env(**sb.settings), tmp_path)
    assert again.returncode == 0 and "set aside" not in again.stdout


def test_reading_a_warehouse_an_earlier_version_holds_for_writing_is_one_line(
    make_sandbox, tmp_path
) -> None:
    sb = make_sandbox(METEROID, invoices=10)
    sb.sync_ok()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb,sys; c=duckdb.connect(sys.argv[1]); input()",
            str(sb.db),
        ],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        shown = run_cli(["summary", "--db", str(sb.db)], cli_env(), tmp_path)
        assert shown.returncode == 2  # a --db that cannot be used, as for report and query
        [line] = stderr_lines(shown.stderr)
        assert line.startswith(f"invoice-sync: cannot open {sb.db}: ")
        # and the sync, which writes its own working warehouse, still runs and publishes
        synced = run_cli(["sync", "meteroid", "--db", str(sb.db)], cli_env(**sb.settings), tmp_path)
        assert synced.returncode == 0, synced.stderr
    finally:
        writer.kill()
        writer.wait()
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_a_sync_waiting_for_the_lock_never_opens_the_working_warehouse(
    make_sandbox, monkeypatch
) -> None:
    """Before a sync holds the lock it must not open the working warehouse, even read-only and
    briefly: the running sync's next open for writing would fail (CI found it: of two syncs
    started together, the one syncing failed, the one waiting went on to sync)."""
    sb = make_sandbox(METEROID, invoices=5)
    sb.sync_ok()
    warehouse = Warehouse.at(sb.db)
    opened: list[Path] = []
    connect = duckdb.connect

    def recorded(database: str = ":memory:", *args, **kwargs):
        opened.append(Path(database))
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", recorded)
    with environment(sb.settings), sync_lock(warehouse, 0):
        assert cli.main(["sync", "--db", str(sb.db), "--wait", "0"]) == 75
    assert warehouse.working not in opened
    assert opened  # the published file, which anyone may open, was asked if it is the demo's
