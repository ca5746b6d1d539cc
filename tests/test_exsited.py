"""Exsited end to end: emulator over loopback HTTP, dlt source, DuckDB, staging, billing."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import requests

from pipelines.sync import pipeline_for
from sources.common.errors import BadRecordError
from sources.common.sandbox.server import Faults
from sources.exsited import VENDOR
from sources.exsited.emulator import CLIENT_ID, CLIENT_SECRET

TODAY = date.today()


def _loaded(sb: Any) -> dict[str, tuple]:
    rows = sb.query(
        "SELECT invoice_id, status, currency, total, amount_paid, amount_due, due_date"
        " FROM billing.invoices WHERE source = 'exsited'"
    )
    return {row[0]: row[1:] for row in rows}


def _truth(sb: Any) -> dict[str, tuple]:
    return {
        t.invoice_id: (t.status, t.currency, t.total, t.amount_paid, t.amount_due, t.due_date)
        for t in sb.emulator.truth()
    }


def _token(sb: Any) -> str:
    url = sb.server.base_url(sb.emulator) + "/api/v1/oauth2/token"
    body = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": "",
    }
    return requests.post(url, json=body, timeout=5).json()["access_token"]


@pytest.mark.parametrize("empty_link", ["", None])
def test_all_invoices_over_offset_pages(make_sandbox: Any, empty_link: str | None) -> None:
    sb = make_sandbox(VENDOR, invoices=60, empty_link=empty_link)
    sb.sync_ok(limit=7)
    assert _loaded(sb) == _truth(sb)
    assert sb.emulator.requests["list"] == math.ceil(60 / 7)
    assert sb.emulator.requests["token"] == 1
    assert sb.emulator.requests["unauthorized"] == 0
    # every line's subtotal adds up to its invoice's subtotal, taxes to its tax
    mismatched = sb.query(
        "SELECT i.invoice_id FROM billing.invoices i LEFT JOIN ("
        "  SELECT invoice_id, sum(amount) AS amount FROM billing.invoice_lines GROUP BY 1) l"
        "  USING (invoice_id) LEFT JOIN ("
        "  SELECT invoice_id, sum(tax_amount) AS tax FROM billing.invoice_taxes GROUP BY 1) t"
        "  USING (invoice_id)"
        " WHERE i.source = 'exsited' AND (l.amount <> i.subtotal OR t.tax <> i.tax)"
    )
    assert mismatched == []


def test_exact_money_from_strings(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    types = dict(
        sb.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'exsited' AND table_name = 'invoices'"
        )
    )
    for column in ("subtotal", "tax", "total", "paid", "due", "kpi_outstanding"):
        assert types[column].startswith("DECIMAL"), (column, types[column])
    by_id = {inv.number: inv for inv in sb.ledger.snapshot()}
    rows = sb.query(
        "SELECT invoice_id, currency, subtotal, tax, total FROM billing.invoices"
        " WHERE source = 'exsited'"
    )
    seen = set()
    for invoice_id, currency, subtotal, tax, total in rows:
        inv = by_id[invoice_id]
        assert (subtotal, tax, total) == tuple(
            inv.major(v) for v in (inv.subtotal, inv.tax, inv.total)
        )
        seen.add(currency)
    assert {"JPY", "KWD", "USD"} <= seen  # 0, 3 and 2 decimals all exact
    kwd = next(inv for inv in by_id.values() if inv.currency == "KWD" and inv.total % 10)
    [(total,)] = sb.query(
        "SELECT CAST(total AS VARCHAR) FROM billing.invoices WHERE invoice_id = ?", [kwd.number]
    )
    assert Decimal(total) == kwd.major(kwd.total)
    line_types = sb.query(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'billing'"
        " AND table_name = 'invoice_lines' AND column_name IN ('unit_price', 'tax_rate')"
    )
    assert all(t.startswith("DECIMAL") for (t,) in line_types)
    [(rate,)] = sb.query(
        "SELECT DISTINCT tax_rate FROM billing.invoice_lines l JOIN billing.invoices i"
        " USING (source, invoice_id) WHERE i.currency = 'EUR' AND tax_rate > 0"
    )
    assert rate == Decimal("0.19")


@pytest.mark.parametrize("kpis_as_numbers", [False, True])
def test_ar_matches_truth_and_vendor_kpis(make_sandbox: Any, kpis_as_numbers: bool) -> None:
    sb = make_sandbox(VENDOR, invoices=80, kpis_as_numbers=kpis_as_numbers)
    sb.sync_ok(limit=25)
    summary = sb.summary_rows(TODAY)
    assert summary == sb.truth_summary(TODAY)
    assert sb.aging_rows(TODAY) == sb.truth_aging(TODAY)
    kpis = sb.query(
        "SELECT currency, sum(vendor_outstanding), sum(vendor_overdue)"
        " FROM staging.exsited_invoices GROUP BY currency"
    )
    assert len(kpis) == len(summary)
    for currency, outstanding, overdue in kpis:
        assert outstanding == summary[("exsited", currency)]["outstanding"]
        assert overdue == summary[("exsited", currency)]["overdue"]


def test_token_running_out_mid_sync_is_refreshed(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=60, token_uses=3)
    sb.sync_ok(limit=5)
    assert _loaded(sb) == _truth(sb)
    assert sb.emulator.requests["unauthorized"] == 3  # pages 4, 7 and 10 were refused once
    assert sb.emulator.grants == {"client_credentials": 1, "refresh_token": 3}
    assert sb.emulator.requests["list"] == 12


def test_tokens_revoked_mid_sync_and_refresh_token_refused(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=40)
    emulator = sb.emulator

    def revoke_all(_: Any) -> None:
        emulator.expire_tokens()
        emulator._refresh_tokens.clear()  # the refresh token is dead too: start over

    emulator.after_requests(4, revoke_all)
    sb.sync_ok(limit=6)
    assert _loaded(sb) == _truth(sb)
    assert emulator.requests["unauthorized"] == 1
    assert emulator.grants == {"client_credentials": 2}


def test_expired_by_clock_refreshes_before_use(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=12, token_ttl=1, faults=Faults(latency=0.4))
    sb.sync_ok(limit=4)
    assert len(_loaded(sb)) == 12
    assert sb.emulator.grants["refresh_token"] >= 1


def test_changes_between_and_during_syncs(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=50)
    sb.sync_ok(limit=10)
    ledger = sb.ledger
    opened = ledger.find("open")
    ledger.pay(opened[0].id)
    ledger.pay(opened[1].id, 1)
    ledger.void(opened[2].id)
    ledger.random_changes(6)
    # new invoices arrive while the second sync is paging
    sb.emulator.after_requests(3, lambda led: led.create_invoices(4))
    sb.sync_ok(limit=10)
    assert _loaded(sb) == _truth(sb)
    assert len(_loaded(sb)) == len(ledger.snapshot())
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    before = sb.query("SELECT count(*) FROM exsited.invoices__lines")
    sb.sync_ok(limit=10)  # nothing changed: nothing doubled
    assert sb.query("SELECT count(*) FROM exsited.invoices__lines") == before
    assert sb.query(
        "SELECT count(*), count(DISTINCT invoice_id) FROM billing.invoices WHERE source='exsited'"
    ) == [(len(ledger.snapshot()), len(ledger.snapshot()))]


def test_custom_attributes_and_kpis_kept(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=10)
    sb.sync_ok()
    attributes = sb.query(
        "SELECT i.id, a.name, a.value FROM exsited.invoices__custom_attributes a"
        " JOIN exsited.invoices i ON a._dlt_parent_id = i._dlt_id ORDER BY 1, 2"
    )
    assert len(attributes) == 20
    assert {name for _, name, _ in attributes} == {"cost_centre", "region"}
    lines = sb.query("SELECT tax_code, tax_uuid, tax_amount FROM exsited.invoices__lines")
    assert all(code and uuid and amount is not None for code, uuid, amount in lines)


def test_malformed_amount_names_the_invoice(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=20)
    render = sb.emulator.render

    def broken(inv: Any, in_account: bool = False) -> dict:
        rendered = render(inv, in_account)
        if inv.number == "INV-00007":
            rendered["total"] = "1.234,50"
        return rendered

    sb.emulator.render = broken
    result = sb.sync(limit=5)
    assert isinstance(result.error, BadRecordError)
    line = result.error.one_line()
    assert "INV-00007" in line and "total" in line and "1.234,50" in line
    assert sb.query("SELECT count(*) FROM billing.invoices WHERE source = 'exsited'") == [(0,)]


def test_bad_credentials_give_one_clear_line(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=5)
    settings = sb.emulator.settings
    sb.emulator.settings = lambda base_url: {
        **settings(base_url),
        "SOURCES__EXSITED__CLIENT_SECRET": "the-real-secret",
    }
    result = sb.sync()
    assert result.error is not None
    line = result.error.one_line()
    assert "401" in line and "Invalid client credentials" in line
    assert "SOURCES__EXSITED__CLIENT_SECRET" in line
    assert "the-real-secret" not in line and "\n" not in line


def test_malformed_page_is_an_error(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=5)
    sb.emulator.list_invoices = lambda request: sb.emulator.error_body(200, "nope")
    sb.emulator._routes = [r for r in sb.emulator._routes if r[2] != "list"]
    sb.emulator.route("GET", "/api/v3/invoices", "list", sb.emulator.list_invoices)
    result = sb.sync()
    assert result.error is not None and "malformed page" in result.error.one_line()


def test_account_scoped_sync_keeps_per_account_state(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=60)
    accounts = ["cus_0001", "cus_0004"]
    sb.sync_ok(accounts=accounts, limit=3)
    wanted = {inv.number: inv for inv in sb.ledger.snapshot() if inv.customer.id in accounts}
    loaded = _loaded(sb)
    assert set(loaded) == set(wanted) and wanted
    assert {k: v for k, v in _truth(sb).items() if k in wanted} == loaded
    names = dict(sb.query("SELECT DISTINCT customer_id, customer_name FROM billing.invoices"))
    assert names == {c.id: c.name for c in sb.ledger.customers if c.id in accounts}
    assert sb.emulator.requests["list"] == 0
    state = pipeline_for("exsited", sb.db).state["sources"]["exsited"]["resources"]["invoices"]
    per_account = state["accounts"]
    assert set(per_account) == set(accounts)
    counts = defaultdict(int)
    for inv in wanted.values():
        counts[inv.customer.id] += 1
    assert {a: s["invoices"] for a, s in per_account.items()} == counts
    assert all(s["synced_at"] and s["last_updated_on"] for s in per_account.values())


def test_emulator_endpoints_and_error_body(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=8)
    base = sb.server.base_url(sb.emulator)
    auth = {"Authorization": f"Bearer {_token(sb)}"}
    inv = sb.ledger.snapshot()[0]

    def get(path: str, **params: Any) -> requests.Response:
        return requests.get(base + path, headers=auth, params=params, timeout=5)

    detail = get(f"/api/v3/invoices/{inv.number}").json()["invoice"]
    assert detail["id"] == inv.number and detail["currency"]["name"] == inv.currency
    assert isinstance(detail["total"], str) and "kpis" in detail and detail["lines"]
    info = get(f"/api/v2/invoices/{inv.number}/information").json()["invoice"]
    assert "lines" not in info and info["total"] == detail["total"]
    account = get(f"/api/v3/accounts/{inv.customer.id}/invoices").json()["account"]
    assert {"invoices", "pagination"} <= set(account)
    assert account["invoices"][0]["account_name"] == inv.customer.name
    order = get(f"/api/v3/orders/{detail['order_id']}/invoices").json()["order"]
    assert inv.number in {row["id"] for row in order["invoices"]}
    page = get("/api/v3/invoices", limit=3, offset=3, order_by="desc").json()["pagination"]
    assert page["records"] == 8 and "offset=6" in page["next_page"]
    assert "offset=0" in page["previous_page"]
    pdf = get(f"/api/v2/invoices/{inv.number}/pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    body = pdf.content
    assert body.startswith(b"%PDF-1.4") and body.rstrip().endswith(b"%%EOF")
    xref_at = int(re.search(rb"startxref\n(\d+)", body).group(1))
    assert body[xref_at:].startswith(b"xref")
    for number, offset in enumerate(re.findall(rb"(\d{10}) 00000 n", body), start=1):
        assert body[int(offset) :].startswith(b"%d 0 obj" % number)
    assert inv.number.encode() in body
    missing = get("/api/v3/invoices/INV-99999")
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"message": "Invoice INV-99999 not found"}]}
    refused = requests.get(base + "/api/v3/invoices", timeout=5)
    assert refused.status_code == 401 and refused.json()["errors"][0]["message"]
    form = requests.post(
        base + "/api/v1/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID},
        timeout=5,
    )
    assert form.status_code == 400
    assert get("/api/v3/invoices", order_by="amount").status_code == 400


def test_paging_stops_on_empty_next_page(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=12)
    page = sb.emulator._page

    def overstated(request: Any, invoices: list, path: str) -> tuple:
        rows, pagination = page(request, invoices, path)
        return rows, {**pagination, "records": pagination["records"] + 50}

    sb.emulator._page = overstated
    sb.sync_ok(limit=5)
    assert len(_loaded(sb)) == 12
    assert sb.emulator.requests["list"] == 3
