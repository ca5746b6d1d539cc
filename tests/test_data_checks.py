"""billing.data_checks: silent on clean data, and each check fires on data built to trip it."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines import cli, contract, views
from pipelines.registry import VENDORS
from pipelines.views import build_views
from sources.meteroid import VENDOR as METEROID


def _checks(sb) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for check, source, invoice_id, detail in sb.query("SELECT * FROM billing.data_checks"):
        found.setdefault(check, []).append((source, invoice_id, detail))
    return found


def _tamper(sb, *statements: str) -> None:
    """Change raw rows behind dlt's back, then rebuild the views as a sync would."""
    con = duckdb.connect(str(sb.db))
    for sql in statements:
        con.execute(sql)
    con.close()
    build_views(sb.db, list(VENDORS))


def test_clean_data_passes_every_check(make_sandbox) -> None:
    sb = make_sandbox(METEROID, invoices=80)
    sb.sync_ok()
    assert _checks(sb) == {}


def test_every_check_fires_on_data_built_to_trip_it(make_sandbox) -> None:
    sb = make_sandbox(METEROID, invoices=60)
    render = sb.emulator.render
    invoices = sb.ledger.snapshot()
    open_ids = [inv.id for inv in invoices if inv.status == "open"]
    lines_off, total_off, negative = open_ids[:3]

    def inconsistent(inv):
        body = render(inv)
        if inv.id == lines_off:
            body["line_items"][0]["amount_total"] += 1
        if inv.id == total_off:
            body["amount_due"] += 500
        if inv.id == negative:
            body["amount_due"] = -250
        return body

    sb.emulator.render = inconsistent
    sb.sync_ok()
    duplicate, unmapped = invoices[10].id, invoices[11].id
    _tamper(
        sb,
        "INSERT INTO meteroid.invoices SELECT * REPLACE (_dlt_id || 'x' AS _dlt_id) "
        f"FROM meteroid.invoices WHERE id = '{duplicate}'",
        f"UPDATE meteroid.invoices SET status = 'ARCHIVED' WHERE id = '{unmapped}'",
    )
    found = _checks(sb)
    assert [row[1] for row in found["lines_do_not_add_up"]] == [lines_off]
    assert "line items add up to" in found["lines_do_not_add_up"][0][2]
    # the clamped negative amount due also breaks paid + due = total
    assert {row[1] for row in found["paid_plus_due_not_total"]} == {total_off, negative}
    assert [row[1] for row in found["negative_amount_due"]] == [negative]
    assert [row[1] for row in found["unknown_status"]] == [unmapped]
    assert [row[1] for row in found["duplicate_invoice_id"]] == [duplicate]
    assert set(found) <= set(contract.CHECKS)
    negative_row = sb.query(
        "SELECT amount_due FROM billing.invoices WHERE invoice_id = ?", [negative]
    )
    assert negative_row == [(0,)]  # never negative in the contract view


def _sql_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of sql/ that the view builder reads instead of the real one."""
    copy = tmp_path / "sql"
    shutil.copytree(views.SQL_DIR, copy)
    monkeypatch.setattr(views, "SQL_DIR", copy)
    return copy


def test_vendor_figure_checks_fire(make_sandbox, tmp_path, monkeypatch) -> None:
    sb = make_sandbox(METEROID, invoices=40)
    sb.sync_ok()
    [(target, due)] = sb.query(
        "SELECT invoice_id, amount_due FROM billing.invoices "
        "WHERE status = 'open' AND amount_due > 0 ORDER BY invoice_id LIMIT 1"
    )
    sql = _sql_copy(tmp_path, monkeypatch)
    # Stand in a vendor that reports its own figures: one invoice off by 1 (outstanding and
    # overdue), and per-currency outstanding totals off by 2.
    staging = sql / "10_staging" / "meteroid" / "invoices.sql"
    staging.write_text(
        staging.read_text().replace(
            "CAST(NULL AS DECIMAL(18, 4)) AS vendor_outstanding,\n"
            "    CAST(NULL AS DECIMAL(18, 4)) AS vendor_overdue",
            f"CASE WHEN m.id = '{target}' THEN CAST(m.amount_due + 1 AS DECIMAL(18, 4)) END "
            "AS vendor_outstanding,\n"
            f"    CASE WHEN m.id = '{target}' THEN CAST(m.amount_due + 1 AS DECIMAL(18, 4)) END "
            "AS vendor_overdue",
        )
    )
    (sql / "10_staging" / "meteroid" / "vendor_figures.sql").write_text(
        "CREATE OR REPLACE VIEW staging.meteroid_vendor_figures AS "
        "SELECT 'meteroid' AS source, currency, "
        "CAST(sum(amount_due) + 2 AS DECIMAL(38, 4)) AS outstanding, "
        "CAST(0 AS DECIMAL(38, 4)) AS overdue "
        "FROM meteroid.invoices WHERE status = 'FINALIZED' AND payment_status <> 'PAID' "
        "GROUP BY currency"
    )
    build_views(sb.db, list(VENDORS))
    found = _checks(sb)
    assert [row[1] for row in found["vendor_outstanding_differs"]] == [target]
    assert Decimal(found["vendor_outstanding_differs"][0][2].split("we have ")[1]) == due
    assert [row[1] for row in found["vendor_overdue_differs"]] == [target]
    currencies = {row[0] for row in sb.query("SELECT currency FROM billing.ar_summary")}
    assert {row[0] for row in found["vendor_totals_differ"]} == {"meteroid"}
    assert len(found["vendor_totals_differ"]) == len(currencies)


def test_summary_reports_data_checks(make_sandbox, capsys) -> None:
    sb = make_sandbox(METEROID, invoices=20)
    sb.sync_ok()
    _tamper(
        sb, "UPDATE meteroid.invoices SET status = 'ARCHIVED' WHERE invoice_number = 'INV-00002'"
    )
    assert cli.main(["summary", "--db", str(sb.db)]) == 0
    out = capsys.readouterr().out
    assert "Data checks: 1 problem" in out and "unknown_status" in out
