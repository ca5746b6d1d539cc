"""PostgreSQL as the warehouse (issue #39): the same sync, views, counts and commands as on
DuckDB, against a real server that the tests start (tests/postgres.py).

The oracle for the views is twofold: the sandbox's ground truth, and a DuckDB warehouse synced
from the same emulators at the same moments, whose every view and macro must read the same.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from pipelines import contract, views
from pipelines.destinations import (
    SYNC_LOCK_KEY,
    DatabaseError,
    DuckDBDestination,
    MissingObject,
    MotherDuckDestination,
    PostgresDestination,
    pyformat,
    resolve,
    working_folder,
)
from pipelines.dialects import Function, RenderError, render
from pipelines.registry import VENDORS
from pipelines.runs import InvoiceCounts
from pipelines.sandbox import build_emulators, environment, serve
from pipelines.sync import sync
from pipelines.views import ViewBuildError, build_views
from pipelines.warehouse import WarehouseError
from sources.common.sandbox.ledger import DRAFT, OPEN
from sources.common.sandbox.server import Faults
from sources.common.sandbox.truth import ar_aging, ar_summary
from sources.meteroid import VENDOR as METEROID
from sources.press import VENDOR as PRESS
from tests.clock import TODAY
from tests.conftest import Sandbox
from tests.helpers import cli_env, run_cli, start_cli, stderr_lines
from tests.postgres import PASSWORD, PostgresServer

AS_OF = [TODAY, TODAY + timedelta(days=40), TODAY - timedelta(days=75)]


# -- all five vendors, in PostgreSQL and in DuckDB ---------------------------------------------


@pytest.fixture(scope="module")
def warehouses(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory):
    """Every emulator on one server, synced into PostgreSQL and into DuckDB, changed, synced
    again into both."""
    folder = tmp_path_factory.mktemp("postgres-all")
    pg = PostgresDestination.from_url(postgres_server.create_database(), working_dir=folder / "pg")
    db = folder / "all.duckdb"
    emulators = build_emulators(seed=11, invoices=50)
    server = serve(emulators)
    with environment(server.settings()):
        results = sync(VENDORS.values(), pg) + sync(VENDORS.values(), db)
        for emulator in emulators.values():
            emulator.sync_landed()  # both warehouses were served the same
            emulator.ledger.random_changes(6)
        results += sync(VENDORS.values(), pg) + sync(VENDORS.values(), db)
        for emulator in emulators.values():
            emulator.sync_landed()
    server.stop()
    assert all(r.ok for r in results), [r.describe() for r in results]
    truth = [row for emulator in emulators.values() for row in emulator.truth()]
    any_vendor = next(iter(VENDORS.values()))
    reader = Sandbox(any_vendor, next(iter(emulators.values())), server, pg)
    duck = Sandbox(any_vendor, reader.emulator, server, db)
    return reader, duck, truth, results, emulators


@pytest.mark.parametrize("as_of", AS_OF)
def test_summary_and_aging_equal_ground_truth(warehouses, as_of: date) -> None:
    pg, *_, emulators = warehouses
    truth = [row for emulator in emulators.values() for row in emulator.truth(as_of)]
    assert pg.summary_rows(as_of) == ar_summary(truth, as_of)
    assert pg.aging_rows(as_of) == ar_aging(truth, as_of)
    expected = ar_summary(truth, as_of)
    assert pg.query(
        "SELECT count(*), coalesce(sum(amount_due), 0) FROM billing.ar_overdue_at(CAST(? AS DATE))",
        [as_of.isoformat()],
    ) == [
        (
            sum(row["overdue_count"] for row in expected.values()),
            sum(row["overdue"] for row in expected.values()),
        )
    ]


def _sortable(row: tuple) -> tuple:
    return tuple((value is None, str(value)) for value in row)


def _rows(sb: Sandbox, sql: str) -> list[tuple]:
    return sorted(sb.query(sql), key=_sortable)


@pytest.mark.parametrize(
    "relation",
    [f"billing.{view}" for view in sorted(contract.VIEWS)]
    + [
        f"billing.{macro}(DATE '{TODAY - timedelta(days=75)}')" for macro in sorted(contract.MACROS)
    ],
)
def test_every_view_and_macro_reads_as_on_duckdb(warehouses, relation: str) -> None:
    """One SQL source, two dialects: the same rows, value for value (money exact)."""
    pg, duck, *_ = warehouses
    on_postgres = _rows(pg, f"SELECT * FROM {relation}")
    assert on_postgres == _rows(duck, f"SELECT * FROM {relation}")
    assert on_postgres or relation.startswith("billing.data_checks")


def test_money_is_numeric_and_the_macros_are_functions_with_the_contracts_columns(
    warehouses,
) -> None:
    pg, *_ = warehouses
    families = {
        "VARCHAR": {"text", "character varying"},
        "DATE": {"date"},
        "BIGINT": {"bigint"},
        "INTEGER": {"integer"},
        "TIMESTAMP WITH TIME ZONE": {"timestamp with time zone"},
    }

    def family(kind: str) -> set[str]:
        return {"numeric"} if kind.startswith("DECIMAL") else families[kind]

    relations = {
        **contract.VIEWS,
        **{f"{m}(DATE '2026-01-31')": c for m, c in contract.MACROS.items()},
    }
    for relation, columns in relations.items():
        cursor = pg.db.connect_read_only().execute(f"SELECT * FROM billing.{relation} LIMIT 0")
        names = [d.name for d in cursor.description]
        assert names == list(columns), relation
        for name, type_code in zip(names, [d.type_code for d in cursor.description], strict=True):
            [(kind,)] = pg.query("SELECT format_type(CAST(? AS oid), NULL)", [type_code])
            assert kind.split("(")[0] in family(columns[name]), (relation, name, kind)
    [(kind,)] = pg.query("SELECT prokind FROM pg_proc WHERE proname = 'ar_summary_at'")
    assert kind == "f"
    amounts = pg.query("SELECT amount_due FROM billing.invoices WHERE amount_due > 0 LIMIT 5")
    assert all(
        isinstance(value, Decimal) and value.as_tuple().exponent == -4 for (value,) in amounts
    )


def test_runs_and_change_counts_are_recorded(warehouses) -> None:
    pg, _, _, results, _ = warehouses
    recorded = pg.query(
        "SELECT source, status, invoices_new, invoices_changed, invoices_unchanged "
        "FROM billing.sync_runs ORDER BY started_at"
    )
    on_postgres = results[:5] + results[10:15]
    assert recorded == [
        (r.vendor, "succeeded", r.counts.new, r.counts.changed, r.counts.unchanged)
        for r in on_postgres
    ]
    assert sum(r.counts.changed + r.counts.new for r in results[10:15]) > 0
    # the counts are the same as the DuckDB warehouse's, from the same changes
    assert [r.counts for r in results[10:15]] == [r.counts for r in results[15:]]


# -- change counts, as tests/test_runs.py has them ---------------------------------------------


def _invoices(sb: Sandbox) -> dict[str, tuple]:
    rows = sb.query("SELECT * FROM billing.invoices WHERE source = ?", [sb.vendor.name])
    return {row[1]: row for row in rows}


@pytest.mark.parametrize("vendor", [METEROID, PRESS], ids=["meteroid", "press"])
def test_counts_match_a_comparison_of_every_invoice(make_sandbox, postgres, vendor) -> None:
    sb = make_sandbox(vendor, invoices=30, warehouse=postgres)
    first = sb.sync_ok()
    before = _invoices(sb)
    assert first.counts == InvoiceCounts(len(before), 0, 0, len(before))
    sb.ledger.pay(sorted(sb.ledger.find(OPEN), key=lambda inv: inv.id)[0].id)
    sb.ledger.void(sorted(sb.ledger.find(DRAFT, OPEN), key=lambda inv: inv.id)[-1].id)
    sb.ledger.create_invoices(3, status=OPEN)
    second = sb.sync_ok()
    after = _invoices(sb)
    changed = sum(1 for key, row in after.items() if key in before and before[key] != row)
    assert second.counts == InvoiceCounts(3, changed, len(after) - 3 - changed, len(after))
    assert changed >= 1
    third = sb.sync_ok()
    assert third.counts == InvoiceCounts(0, 0, len(after), len(after))
    refreshed = sb.sync(full_refresh=True)
    assert refreshed.ok and refreshed.counts == InvoiceCounts(0, 0, len(after), len(after))
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


# -- the views ---------------------------------------------------------------------------------


def test_a_rebuild_with_nothing_new_is_skipped_and_a_failed_one_keeps_the_views(
    make_sandbox, postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = make_sandbox(METEROID, invoices=10, warehouse=postgres)
    sb.sync_ok()
    assert build_views(postgres, list(VENDORS)) == 0  # the same statements: nothing to do
    summary = sb.query("SELECT * FROM billing.ar_summary")
    broken = tmp_path / "sql"
    shutil.copytree(views.SQL_DIR, broken)
    (broken / "30_ar" / "40_ar_summary_at.sql").write_text(
        "CREATE MACRO billing.ar_summary_at(as_of) AS TABLE SELECT nope"
    )
    monkeypatch.setattr(views, "SQL_DIR", broken)
    with pytest.raises(ViewBuildError, match=r"30_ar/40_ar_summary_at\.sql: column \"nope\""):
        build_views(postgres, list(VENDORS))
    assert sb.query("SELECT * FROM billing.ar_summary") == summary  # rolled back whole
    monkeypatch.undo()
    (broken / "30_ar" / "40_ar_summary_at.sql").write_text(
        (views.SQL_DIR / "30_ar" / "40_ar_summary_at.sql").read_text() + "\n-- changed\n"
    )
    monkeypatch.setattr(views, "SQL_DIR", broken)
    assert build_views(postgres, list(VENDORS)) > 0  # changed: built
    assert sb.query("SELECT * FROM billing.ar_summary") == summary


def test_readers_are_not_held_up_by_a_rebuild_and_a_view_built_on_ours_is_kept(
    make_sandbox, postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = make_sandbox(METEROID, invoices=10, warehouse=postgres)
    sb.sync_ok()
    changed = tmp_path / "sql"
    shutil.copytree(views.SQL_DIR, changed)
    aging = changed / "30_ar" / "95_ar_aging.sql"
    aging.write_text(aging.read_text() + "\n-- changed\n")
    monkeypatch.setattr(views, "SQL_DIR", changed)
    monkeypatch.setattr(views, "LOCK_TIMEOUT", "100ms")
    monkeypatch.setattr(views, "REBUILD_ATTEMPTS", 2)
    monkeypatch.setattr(views, "REBUILD_PAUSE", 0.1)
    reader = postgres.connect_read_only()
    reader.execute("BEGIN")
    figures = reader.execute("SELECT * FROM billing.ar_aging").fetchall()
    started = time.monotonic()
    with pytest.raises(ViewBuildError, match="readers' queries held the views through 2 attempts"):
        build_views(postgres, list(VENDORS))
    assert time.monotonic() - started < 5
    assert reader.execute("SELECT * FROM billing.ar_aging").fetchall() == figures
    reader.execute("COMMIT")
    reader.close()
    assert build_views(postgres, list(VENDORS)) > 0  # the reader is done: it goes through
    # an analyst's view on ours makes a build fail, naming it, and is never dropped
    with postgres.connect() as con:
        con.execute("CREATE VIEW public.my_aging AS SELECT * FROM billing.ar_aging")
    aging.write_text(aging.read_text() + "\n-- changed again\n")
    with pytest.raises(
        ViewBuildError, match=r"view my_aging depends on view billing\.ar_aging\); drop"
    ):
        build_views(postgres, list(VENDORS))
    assert sorted(sb.query("SELECT * FROM public.my_aging")) == sorted(figures)


# -- the rendering, without a server ------------------------------------------------------------


def test_try_cast_to_an_integer_is_null_where_it_does_not_parse() -> None:
    [statement] = render("SELECT TRY_CAST(v AS BIGINT) AS n FROM t", "postgres")
    assert statement.sql == (
        "SELECT CASE WHEN CAST((v) AS TEXT) ~ '^\\s*[-+]?[0-9]{1,18}\\s*$' "
        "THEN CAST((v) AS BIGINT) END AS n FROM t"
    )
    with pytest.raises(RenderError, match=r"TRY_CAST\(\.\.\. AS DATE\)"):
        render("SELECT TRY_CAST(v AS DATE) FROM t", "postgres")
    with pytest.raises(RenderError, match="sqlglot cannot render it: "):
        render("SELECT x FROM WHERE (", "postgres")


def test_subqueries_get_aliases_and_qualify_becomes_a_filter() -> None:
    [statement] = render(
        "CREATE VIEW s.v AS SELECT * FROM (SELECT * FROM t QUALIFY row_number() OVER () = 1)",
        "postgres",
    )
    assert statement.kind == "view" and statement.name == "s.v"
    assert "QUALIFY" not in statement.sql and "AS _subquery" in statement.sql


def test_a_table_macro_becomes_a_function_with_the_contracts_types() -> None:
    [function] = render(
        "CREATE OR REPLACE MACRO billing.ar_aging_at(as_of) AS TABLE SELECT source, currency, "
        "'current' AS aging_bucket, count(*) AS invoice_count, sum(amount_due) AS amount_due "
        "FROM billing.invoices WHERE due_date < CAST(as_of AS DATE) GROUP BY source, currency",
        "postgres",
    )
    assert isinstance(function, Function)
    assert function.signature == "billing.ar_aging_at(date)"
    assert "CAST($1 AS DATE)" in function.body and "CAST(NULL AS DATE)" in function.probe
    probed = [("source", "text"), ("currency", "text"), ("aging_bucket", "text")]
    probed += [("invoice_count", "bigint"), ("amount_due", "numeric"), ("extra", "integer")]
    sql = function.create_sql(probed)
    assert sql.startswith(
        'CREATE FUNCTION billing.ar_aging_at(as_of date) RETURNS TABLE ("source" TEXT, '
        '"currency" TEXT, "aging_bucket" TEXT, "invoice_count" BIGINT, "amount_due" '
        'DECIMAL(38, 4), "extra" integer) LANGUAGE sql STABLE AS $invoice_sync$'
    )
    assert 'CAST("amount_due" AS DECIMAL(38, 4)) AS "amount_due"' in sql


def test_placeholders_become_psycopg2_ones_and_quoted_text_is_left_alone() -> None:
    assert pyformat("SELECT ?, '?%', \"a?\" WHERE x LIKE 'a%' AND y % 2 = ?", [1, 2]) == (
        "SELECT %s, '?%%', \"a?\" WHERE x LIKE 'a%%' AND y %% 2 = %s",
        [1, 2],
    )
    assert pyformat("SELECT $1, $1 + $2", ["a", "b"]) == (
        "SELECT %(1)s, %(1)s + %(2)s",
        {"1": "a", "2": "b"},
    )


def test_the_working_folder_is_derived_from_the_server_or_configured(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert working_folder("postgres", "db.example.com", 5432, "ar") == (
        tmp_path / "state" / "invoice-sync" / "postgres" / "db.example.com-5432" / "ar"
    )
    monkeypatch.setenv("INVOICE_SYNC__WORKING_DIR", str(tmp_path / "mine"))
    assert working_folder("postgres", "db.example.com", 5432, "ar") == tmp_path / "mine"


# -- the commands, as real processes ------------------------------------------------------------


def _pg_env(sb: Sandbox, postgres: PostgresDestination, **extra: str) -> dict[str, str]:
    settings = {
        "DESTINATION__POSTGRES__CREDENTIALS": postgres.credentials.to_native_representation(),
        "INVOICE_SYNC__WORKING_DIR": str(postgres.folder),
    }
    return cli_env(**{**sb.settings, **settings, **extra})


def test_sync_summary_report_and_query_with_destination_postgres(
    make_sandbox, postgres, tmp_path: Path
) -> None:
    sb = make_sandbox(METEROID, invoices=30, warehouse=postgres)
    env = _pg_env(sb, postgres)
    synced = run_cli(["sync", "meteroid", "--destination", "postgres"], env, tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert synced.stderr == "" and "30 new" in synced.stdout
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    shown = run_cli(
        ["summary", "--destination", "postgres", "--format", "json", "--as-of", str(TODAY)],
        env,
        tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    truth = sb.truth_summary(TODAY)
    assert {
        (r["source"], r["currency"]): Decimal(r["outstanding"]) for r in summary["summary"]
    } == {key: row["outstanding"] for key, row in truth.items()}
    assert summary["sync_runs"][0]["last_status"] == "succeeded"
    # the destination from the configuration: invoice_sync.destination
    config = {"INVOICE_SYNC__DESTINATION": "postgres"}
    report = run_cli(["report", "--out", str(tmp_path / "r.html")], {**env, **config}, tmp_path)
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert "postgresql://invoice_sync@127.0.0.1:" in page and PASSWORD not in page
    queried = run_cli(
        [
            "query",
            "--destination",
            "postgres",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM billing.ar_summary_at(DATE '2026-06-30')",
        ],
        env,
        tmp_path,
    )
    assert queried.returncode == 0, queried.stderr
    assert queried.stdout.splitlines()[0] == "n"
    written = run_cli(
        ["query", "--destination", "postgres", "DELETE FROM billing.sync_runs"], env, tmp_path
    )
    assert written.returncode == 2 and "read-only transaction" in written.stderr
    assert sb.query("SELECT count(*) FROM billing.sync_runs") == [(1,)]
    for output in (synced, shown, report, queried, written):
        assert PASSWORD not in output.stdout + output.stderr


def test_bad_settings_are_one_line_without_the_password(make_sandbox, postgres, tmp_path) -> None:
    sb = make_sandbox(METEROID, invoices=5, warehouse=postgres)
    url = postgres.credentials.to_native_representation()
    cases = {
        "wrong password": url.replace(PASSWORD, "not-it"),
        "nothing listens": url.replace(f":{postgres.credentials.port}/", ":1/"),
    }
    for case, credentials in cases.items():
        env = _pg_env(sb, postgres, DESTINATION__POSTGRES__CREDENTIALS=credentials)
        # as for a bad --db: 2, configuration, for sync, summary and report alike
        for command, status in ((["sync", "meteroid"], 2), (["summary"], 2), (["report"], 2)):
            ran = run_cli([*command, "--destination", "postgres"], env, tmp_path)
            [line] = stderr_lines(ran.stderr)
            assert ran.returncode == status, (case, ran.stderr)
            assert line.startswith("invoice-sync: cannot connect to postgresql://invoice_sync@")
            assert "not-it" not in line and PASSWORD not in line
    env = cli_env(**sb.settings)
    missing = run_cli(["summary", "--destination", "postgres"], env, tmp_path)
    assert missing.returncode == 2
    assert "set DESTINATION__POSTGRES__CREDENTIALS=" in stderr_lines(missing.stderr)[0]
    both = run_cli(["summary", "--destination", "postgres", "--db", "x.duckdb"], env, tmp_path)
    assert both.returncode == 2 and "--db names a DuckDB file" in both.stderr


def test_a_sync_waits_for_one_running_elsewhere_and_says_who_holds_it(
    make_sandbox, postgres, tmp_path
) -> None:
    """Syncs from other machines serialise too: the lock is the server's (an advisory lock)."""
    sb = make_sandbox(METEROID, invoices=10, warehouse=postgres)
    env = _pg_env(sb, postgres)
    holder = psycopg2.connect(
        postgres.credentials.to_native_representation(), application_name="the other machine"
    )
    holder.autocommit = True
    holder.cursor().execute("SELECT pg_advisory_lock(%s)", [SYNC_LOCK_KEY])
    try:
        busy = run_cli(["sync", "--destination", "postgres", "--wait", "0"], env, tmp_path)
        assert busy.returncode == 75
        [line] = stderr_lines(busy.stderr)
        assert line.startswith(
            "invoice-sync: another invoice-sync sync of postgresql://invoice_sync@127.0.0.1:"
        )
        assert "(the other machine)" in line
        waiting = start_cli(["sync", "--destination", "postgres", "--wait", "60"], env, tmp_path)
        threading.Timer(2, holder.close).start()
        out, err = waiting.communicate(timeout=120)
    finally:
        holder.close()
    assert waiting.returncode == 0, err
    assert "waiting for another sync of postgresql://" in out
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_a_sync_stopped_or_killed_part_way_is_completed_and_recorded_by_the_next(
    make_sandbox, postgres, tmp_path
) -> None:
    sb = make_sandbox(METEROID, invoices=60, faults=Faults(latency=0.2), warehouse=postgres)
    env = _pg_env(
        sb, postgres, SOURCES__METEROID__PER_PAGE="5", SOURCES__METEROID__PARALLEL_PAGES="1"
    )
    for stop in (signal.SIGTERM, signal.SIGKILL):
        running = start_cli(["sync", "--destination", "postgres"], env, tmp_path)
        assert running.stdout.readline().strip() == "meteroid: syncing"
        time.sleep(1.0)
        running.send_signal(stop)
        running.communicate(timeout=120)
        assert running.returncode == (143 if stop == signal.SIGTERM else -9)
        sb.ledger.create_invoices(2)
    finished = run_cli(["sync", "--destination", "postgres"], env, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    assert sb.aging_rows(TODAY) == sb.truth_aging(TODAY)
    runs = sb.query("SELECT status, error FROM billing.sync_runs ORDER BY started_at")
    assert [status for status, _ in runs] == ["interrupted", "failed", "succeeded"]
    assert "could not record this run" in runs[1][1]  # the journal, in the working folder
    [(invoices,)] = sb.query("SELECT count(*) FROM billing.invoices")
    assert invoices == len(sb.emulator.truth())


def test_the_duckdb_tunings_stay_with_duckdb(make_sandbox, postgres, monkeypatch) -> None:
    import pipelines.sync

    loads: list[Any] = []
    monkeypatch.setattr(pipelines.sync, "load_with_memory_headroom", loads.append)
    monkeypatch.setattr(pipelines.sync, "use_duckdb_merge_jobs", lambda: loads.append("merge"))
    sb = make_sandbox(METEROID, invoices=5, warehouse=postgres)
    sb.sync_ok()
    assert loads == []
    assert sb.query("SELECT count(*) FROM billing.invoices") == [(5,)]


def test_a_failed_statement_is_one_line_and_a_missing_view_is_told_apart(postgres) -> None:
    with postgres.connect() as con:
        with pytest.raises(DatabaseError, match="^division by zero$"):
            con.execute("SELECT 1 / 0")
        with pytest.raises(MissingObject, match='relation "billing.ar_summary" does not exist'):
            con.execute("SELECT * FROM billing.ar_summary")


def test_the_destination_comes_from_the_flag_or_the_configuration(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("INVOICE_SYNC__DESTINATION", raising=False)
    assert resolve(None, None, tmp_path / "x.duckdb").label == str(tmp_path / "x.duckdb")
    monkeypatch.setenv("INVOICE_SYNC__DESTINATION", "motherduck")
    monkeypatch.delenv("DESTINATION__MOTHERDUCK__CREDENTIALS", raising=False)
    monkeypatch.delenv("MOTHERDUCK_TOKEN", raising=False)
    with pytest.raises(WarehouseError, match="set DESTINATION__MOTHERDUCK__CREDENTIALS=md:"):
        resolve(None, None, "x.duckdb")
    monkeypatch.setenv("DESTINATION__MOTHERDUCK__CREDENTIALS", "md:ar?motherduck_token=tok3n")
    motherduck = resolve(None, None, "x.duckdb")
    assert isinstance(motherduck, MotherDuckDestination)
    assert (motherduck.label, motherduck.dialect) == ("md:ar", "duckdb")
    assert "tok3n" not in repr(motherduck) + motherduck.label + str(motherduck.folder)
    assert isinstance(resolve("duckdb", None, "x.duckdb"), DuckDBDestination)  # the flag wins
    monkeypatch.setenv("INVOICE_SYNC__DESTINATION", "oracle")
    with pytest.raises(WarehouseError, match="unknown destination 'oracle'"):
        resolve(None, None, "x.duckdb")


def test_a_warehouse_that_goes_away_mid_sync_is_one_line_for_the_source() -> None:
    from pipelines.sync import explain

    try:
        try:
            raise psycopg2.OperationalError("server closed the connection unexpectedly\nmore")
        except psycopg2.OperationalError as lost:
            raise RuntimeError("dlt's load step failed") from lost
    except RuntimeError as failure:
        error = explain(METEROID, failure)
    assert error.one_line() == (
        "meteroid: the warehouse failed: server closed the connection unexpectedly (check that "
        "the database server is up and reachable; the next sync completes this one)"
    )
