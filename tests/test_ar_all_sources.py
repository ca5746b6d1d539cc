"""All five vendors in one warehouse: the AR views equal the sandbox's ground truth."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipelines import cli, contract, views
from pipelines.registry import VENDORS
from pipelines.sandbox import build_emulators, environment, serve
from pipelines.sync import sync
from sources.common.sandbox.truth import ar_aging, ar_summary
from tests.clock import TODAY
from tests.conftest import Sandbox


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    """Every emulator on one server, synced once, changed, synced again."""
    db = tmp_path_factory.mktemp("all") / "all.duckdb"
    emulators = build_emulators(seed=11, invoices=50)
    server = serve(emulators)
    with environment(server.settings()):
        first = sync(VENDORS.values(), db)
        for emulator in emulators.values():
            emulator.sync_landed()
            emulator.ledger.random_changes(6)
        second = sync(VENDORS.values(), db)
        for emulator in emulators.values():
            emulator.sync_landed()
    server.stop()
    assert all(r.ok for r in first + second), [r.describe() for r in first + second]
    truth = [row for emulator in emulators.values() for row in emulator.truth()]
    any_vendor = next(iter(VENDORS.values()))
    reader = Sandbox(any_vendor, next(iter(emulators.values())), server, db)
    return reader, truth, emulators


@pytest.mark.parametrize("as_of", [TODAY, TODAY + timedelta(days=40), TODAY - timedelta(days=75)])
def test_summary_and_aging_equal_ground_truth(warehouse, as_of: date) -> None:
    reader, _, emulators = warehouse
    truth = [row for emulator in emulators.values() for row in emulator.truth(as_of)]
    assert reader.summary_rows(as_of) == ar_summary(truth, as_of)
    assert reader.aging_rows(as_of) == ar_aging(truth, as_of)
    overdue = reader.query(
        "SELECT count(*), coalesce(sum(amount_due), 0) FROM billing.ar_overdue_at(CAST(? AS DATE))",
        [as_of.isoformat()],
    )[0]
    expected = ar_summary(truth, as_of)
    assert overdue == (
        sum(row["overdue_count"] for row in expected.values()),
        sum(row["overdue"] for row in expected.values()),
    )


def test_every_source_is_present_and_statuses_are_the_contracts(warehouse) -> None:
    reader, truth, _ = warehouse
    sources = {row[0] for row in reader.query("SELECT DISTINCT source FROM billing.invoices")}
    assert sources == set(VENDORS)
    statuses = {row[0] for row in reader.query("SELECT DISTINCT status FROM billing.invoices")}
    assert statuses <= set(contract.STATUSES) and None not in statuses
    assert reader.query("SELECT count(*) FROM billing.invoices")[0][0] == len(truth)
    assert reader.query(
        "SELECT count(*) FROM billing.invoices WHERE amount_due < 0 "
        "OR (status IN ('draft', 'void') AND amount_due <> 0)"
    ) == [(0,)]


def test_no_data_check_fires_on_clean_sandbox_data(warehouse) -> None:
    reader, _, _ = warehouse
    assert reader.query("SELECT * FROM billing.data_checks") == []


def test_today_views_match_the_macros(warehouse) -> None:
    reader, _, _ = warehouse
    for view, macro in (
        ("ar_summary", "ar_summary_at"),
        ("ar_aging", "ar_aging_at"),
        ("ar_overdue", "ar_overdue_at"),
    ):
        assert sorted(reader.query(f"SELECT * FROM billing.{view}")) == sorted(
            reader.query(f"SELECT * FROM billing.{macro}(current_date)")
        )


def test_a_view_that_fails_to_build_fails_the_sync_in_one_line(
    make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    sb = make_sandbox(VENDORS["meteroid"], invoices=10)
    sb.sync_ok()
    broken = tmp_path / "sql"
    shutil.copytree(views.SQL_DIR, broken)
    (broken / "30_ar" / "40_ar_summary_at.sql").write_text(
        "CREATE MACRO billing.x() AS TABLE SELECT nope"
    )
    monkeypatch.setattr(views, "SQL_DIR", broken)
    with environment(sb.settings):
        code = cli.main(["sync", "meteroid", "--db", str(sb.db)])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code != 0 and len(err) == 1, err
    assert "30_ar/40_ar_summary_at.sql" in err[0] and "previous views were kept" in err[0]
    assert len(sb.query("SELECT * FROM billing.ar_summary")) > 0
