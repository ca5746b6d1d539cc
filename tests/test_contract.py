"""Pins the public contract: view names, columns and types, macros, CLI commands, config keys."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines import cli, contract
from pipelines.registry import VENDORS
from pipelines.views import ViewBuildError, build_views

CONTRACT_CONFIG_KEYS = {
    "press": ("base_url", "api_key", "api_secret", "team"),
    "sequence": ("base_url", "client_id", "client_secret"),
    "revolv3": ("base_url", "token"),
    "exsited": ("base_url", "client_id", "client_secret"),
    "meteroid": ("base_url", "api_key"),
}


@pytest.fixture
def empty_views(tmp_path: Path) -> Path:
    """Views built over a database no source has synced into yet."""
    db = tmp_path / "empty.duckdb"
    build_views(db, list(VENDORS))
    return db


def _describe(db: Path, relation: str) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        }
    finally:
        con.close()


@pytest.mark.parametrize("view", sorted(contract.VIEWS))
def test_every_view_has_the_contract_columns_and_types(empty_views: Path, view: str) -> None:
    assert _describe(empty_views, f"billing.{view}") == contract.VIEWS[view]


@pytest.mark.parametrize("macro", sorted(contract.MACROS))
def test_every_macro_has_the_contract_columns(empty_views: Path, macro: str) -> None:
    assert _describe(empty_views, f"billing.{macro}(DATE '2026-01-31')") == contract.MACROS[macro]


def test_contract_column_names_match_the_published_list() -> None:
    published = {
        "invoices": "source, invoice_id, invoice_number, customer_id, customer_name, status, "
        "vendor_status, vendor_payment_status, currency, issue_date, due_date, period_start, "
        "period_end, subtotal, tax, total, amount_paid, amount_due, created_at, updated_at",
        "invoice_lines": "source, invoice_id, line_id, parent_line_id, description, quantity, "
        "unit_price, amount, currency, tax_rate, period_start, period_end",
        "payments": "source, invoice_id, payment_id, kind, status, amount, currency, method, "
        "processed_at",
        "invoice_taxes": "source, invoice_id, name, rate, taxable_amount, tax_amount, exemption",
        "ar_summary": "source, currency, open_count, outstanding, overdue_count, overdue, "
        "paid_count, paid, draft_count, void_count",
        "ar_aging": "source, currency, aging_bucket, invoice_count, amount_due",
        "ar_trend": "source, currency, as_of, outstanding, overdue, open_count, overdue_count",
    }
    for view, names in published.items():
        assert list(contract.VIEWS[view]) == names.split(", ")
    for view in ("ar_outstanding", "ar_overdue", "ar_paid"):
        assert list(contract.VIEWS[view]) == [
            *published["invoices"].split(", "),
            "days_past_due",
            "aging_bucket",
        ]


def test_money_is_never_double(empty_views: Path) -> None:
    for view in contract.VIEWS:
        assert "DOUBLE" not in _describe(empty_views, f"billing.{view}").values()


def test_vendors_use_the_contract_config_keys() -> None:
    for name, vendor in VENDORS.items():
        assert vendor.config_keys == CONTRACT_CONFIG_KEYS[name]


def test_cli_commands_and_options() -> None:
    parser = cli._parser()
    for argv in (
        ["demo", "--db", "x"],
        ["sync", "--db", "x", "--full-refresh"],
        ["sync", "meteroid"],
        ["summary", "--db", "x", "--as-of", "2026-01-31"],
        ["sandbox", "--port", "0"],
        ["report", "--db", "x", "--as-of", "2026-01-31", "--out", "r.html"],
        ["sync", "--destination", "postgres", "--quiet"],
        ["summary", "--destination", "duckdb", "--db", "x"],
        ["report", "--destination", "motherduck"],
        ["query", "--destination", "postgres", "SELECT 1"],
    ):
        parser.parse_args(argv)


def test_a_broken_view_fails_the_build_and_keeps_the_old_views(
    empty_views: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pipelines.views as views

    broken = tmp_path / "sql"
    for path in views.SQL_DIR.rglob("*.sql"):
        target = broken / path.relative_to(views.SQL_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (broken / "30_ar" / "90_ar_summary.sql").write_text(
        "CREATE OR REPLACE VIEW billing.ar_summary AS SELECT nope FROM billing.invoices;"
    )
    monkeypatch.setattr(views, "SQL_DIR", broken)
    with pytest.raises(ViewBuildError, match="30_ar/90_ar_summary.sql"):
        build_views(empty_views, list(VENDORS))
    assert _describe(empty_views, "billing.ar_summary") == contract.AR_SUMMARY
