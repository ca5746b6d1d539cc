"""Exsited end to end: emulator over loopback HTTP, dlt source, DuckDB, staging, billing."""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import requests

from pipelines.sync import pipeline_for
from sources.common.errors import BadRecordError
from sources.common.sandbox.server import Faults
from sources.exsited import VENDOR
from sources.exsited.emulator import _NAMESPACE, CLIENT_ID, CLIENT_SECRET, _uuid
from sources.exsited.incremental import Page, ScopeSync
from tests.clock import TODAY


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


def test_the_emulator_makes_line_uuids_as_uuid5_does() -> None:
    for parts in [("INV-00001", "1"), ("INV-12345", "3", "2"), ("é", "")]:
        assert _uuid(*parts) == str(uuid.uuid5(_NAMESPACE, ":".join(parts))).upper()


@pytest.mark.parametrize("empty_link", ["", None])
def test_all_invoices_over_offset_pages(make_sandbox: Any, empty_link: str | None) -> None:
    sb = make_sandbox(VENDOR, invoices=60, empty_link=empty_link)
    sb.sync_ok(limit=7)
    assert _loaded(sb) == _truth(sb)
    # every page once, then the first page again: nothing changed while paging
    assert sb.emulator.requests["list"] == math.ceil(60 / 7) + 1
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
    # 12 pages and the first page again: requests 4, 7, 10 and 13 were refused once
    assert sb.emulator.requests["unauthorized"] == 4
    assert sb.emulator.grants == {"client_credentials": 1, "refresh_token": 4}
    assert sb.emulator.requests["list"] == 13


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
    assert sb.emulator.requests["list"] == 3 + 1  # and the first page again


def _state(sb: Any) -> dict[str, Any]:
    return pipeline_for("exsited", sb.db).state["sources"]["exsited"]["resources"]["invoices"]


def _raw_ids(sb: Any) -> tuple[int, int]:
    return sb.query("SELECT count(*), count(DISTINCT id) FROM exsited.invoices")[0]


def test_incremental_sync_reads_only_what_changed(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=120)
    sb.sync_ok(limit=10)
    assert sb.emulator.requests["list"] == 12 + 1
    tenant = _state(sb)["tenant"]
    assert tenant["ordered"] is True and tenant["invoices"] == 120
    newest = max(inv.updated_at for inv in sb.ledger.snapshot())
    assert tenant["last_updated_on"] == newest.replace(microsecond=0).isoformat()
    # changes to the oldest invoices: a created_on or offset cursor would never see them
    oldest = sorted(sb.ledger.find("open"), key=lambda inv: inv.created_at)
    sb.ledger.pay(oldest[0].id)
    sb.ledger.pay(oldest[1].id, 1)
    sb.ledger.void(oldest[2].id)
    sb.ledger.mark_uncollectible(oldest[3].id)
    sb.ledger.create_invoices(2)
    before = sb.emulator.requests["list"]
    sb.sync_ok(limit=10)
    # one page holds the six changed invoices, the next reaches the mark, then the check
    assert sb.emulator.requests["list"] - before <= 3
    assert _loaded(sb) == _truth(sb)
    assert _state(sb)["tenant"]["invoices"] == 122
    before = sb.emulator.requests["list"]
    sb.sync_ok(limit=10)  # nothing changed: one page down to the mark, then the check
    assert sb.emulator.requests["list"] - before <= 2
    assert _loaded(sb) == _truth(sb)
    assert _raw_ids(sb) == (122, 122)


@pytest.mark.parametrize(("first_sync", "after"), [(True, 3), (True, 9), (False, 2), (False, 3)])
def test_changes_while_paging_are_read_in_the_same_sync(
    make_sandbox: Any, first_sync: bool, after: int
) -> None:
    """A row that changes mid-pass jumps to the top, behind the reader: the first page read
    again shows the head moved, and another pass reads it. The sync ends exact."""
    sb = make_sandbox(VENDOR, invoices=40)
    if not first_sync:
        sb.sync_ok(limit=4)
    ledger = sb.ledger
    by_age = sorted(ledger.snapshot(), key=lambda inv: inv.updated_at)
    deep_open = next(inv for inv in by_age if inv.status == "open")
    newest_paid = next(inv for inv in reversed(by_age) if inv.status == "paid")

    def change(led: Any) -> None:
        led.pay(deep_open.id, 1)  # not read yet: moves behind the reader
        led.refund(newest_paid.id)  # already read: a stale copy and a fresh one in one load
        led.create_invoices(2)

    sb.emulator.after_requests(after, change)
    sb.sync_ok(limit=4)
    assert len(ledger.snapshot()) == 42  # the changes came while the sync was paging
    assert _loaded(sb) == _truth(sb)
    assert _raw_ids(sb) == (42, 42)
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_list_not_in_last_updated_order_is_read_in_full(make_sandbox: Any) -> None:
    """An API that ignores order_by=last_updated_on is detected, never trusted."""
    sb = make_sandbox(VENDOR, invoices=30)
    ordered = sb.emulator._ordered

    def ignores_order_by(invoices: list, order_by: str | None, direction: str | None) -> list:
        return ordered(invoices, "created_on", direction)

    sb.emulator._ordered = ignores_order_by
    sb.sync_ok(limit=5)
    assert _loaded(sb) == _truth(sb)
    assert _state(sb)["tenant"]["ordered"] is False
    sb.ledger.random_changes(8)
    sb.ledger.pay(sorted(sb.ledger.find("open"), key=lambda inv: inv.created_at)[0].id)
    before = sb.emulator.requests["list"]
    sb.sync_ok(limit=5)
    assert sb.emulator.requests["list"] - before >= len(sb.ledger.snapshot()) // 5
    assert _loaded(sb) == _truth(sb)
    assert _raw_ids(sb)[0] == _raw_ids(sb)[1]


def test_full_refresh_resets_state_and_replaces(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=30)
    sb.sync_ok(limit=5)
    sb.ledger.random_changes(5)
    sb.sync_ok(limit=5)
    sb.ledger.random_changes(5)
    # invoices change while the full refresh pages, one of them already read: still one
    # row each, all current
    newest = max(sb.ledger.find("paid"), key=lambda inv: inv.updated_at)

    def change(led: Any) -> None:
        led.refund(newest.id)
        led.random_changes(3)

    sb.emulator.after_requests(3, change)
    before = sb.emulator.requests["list"]
    result = sb.sync(full_refresh=True, limit=5)
    assert result.ok, result.describe()
    invoices = len(sb.ledger.snapshot())
    assert sb.emulator.requests["list"] - before >= invoices // 5 + 1
    assert _loaded(sb) == _truth(sb)
    assert sb.query("SELECT count(*), count(DISTINCT invoice_id) FROM billing.invoices") == [
        (invoices, invoices)
    ]
    tenant = _state(sb)["tenant"]
    assert tenant["ordered"] is True and tenant["invoices"] == invoices
    sb.ledger.random_changes(4)
    sb.sync_ok(limit=5)
    assert _loaded(sb) == _truth(sb)


def test_account_sync_is_incremental_per_account(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=80)
    accounts = ["cus_0001", "cus_0004"]
    sb.sync_ok(accounts=accounts, limit=3)
    first = {a: dict(s) for a, s in _state(sb)["accounts"].items()}
    mine = [inv for inv in sb.ledger.find("open") if inv.customer.id == "cus_0004"]
    other = [inv for inv in sb.ledger.find("open") if inv.customer.id not in accounts]
    sb.ledger.pay(mine[0].id)
    sb.ledger.pay(other[0].id)
    before = sb.emulator.requests["account_invoices"]
    sb.sync_ok(accounts=accounts, limit=3)
    assert sb.emulator.requests["account_invoices"] - before <= 2 * 3
    truth = {k: v for k, v in _truth(sb).items() if k in _loaded(sb)}
    assert _loaded(sb) == truth
    assert _loaded(sb)[mine[0].number][0] == "paid"
    assert other[0].number not in _loaded(sb)
    after = _state(sb)["accounts"]
    assert after["cus_0001"]["last_updated_on"] == first["cus_0001"]["last_updated_on"]
    assert after["cus_0004"]["last_updated_on"] > first["cus_0004"]["last_updated_on"]
    assert sb.emulator.requests["list"] == 0
    # a full refresh of one account replaces the table: no other account's mark survives
    assert sb.sync(full_refresh=True, accounts=["cus_0001"], limit=3).ok
    assert set(_state(sb)["accounts"]) == {"cus_0001"}
    assert {inv.customer.id for inv in sb.ledger.snapshot() if inv.number in _loaded(sb)} == {
        "cus_0001"
    }


def test_vendor_overdue_read_before_the_due_date_is_not_compared(make_sandbox: Any) -> None:
    """An incremental sync does not re-read an unchanged invoice that fell due since: its
    kpis.overdue (0 on the day it was read) is no figure to check ours against."""
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    overdue = [inv for inv in sb.ledger.find("open") if inv.due_date and inv.due_date < TODAY]
    stale, fresh = overdue[0].number, overdue[1].number
    read_on = datetime.combine(overdue[0].due_date - timedelta(days=1), time(12), UTC)
    con = duckdb.connect(str(sb.db))
    try:
        # as if read the day before it fell due, when Exsited reported nothing overdue
        con.execute(
            "UPDATE exsited.invoices SET _dlt_load_id = ?, kpi_overdue = 0 WHERE id = ?",
            [str(read_on.timestamp()), stale],
        )
        rows = dict(
            con.execute(
                "SELECT invoice_id, vendor_overdue FROM staging.exsited_invoices"
                " WHERE invoice_id IN (?, ?)",
                [stale, fresh],
            ).fetchall()
        )
        checks = con.execute(
            "SELECT count(*) FROM billing.data_checks WHERE source = 'exsited'"
        ).fetchone()
    finally:
        con.close()
    assert rows[stale] is None
    assert rows[fresh] == overdue[1].major(overdue[1].amount_due) > 0
    assert checks == (0,)


def _list_reader(invoices: dict[str, dict[str, Any]], per_page: int, after_page: Any) -> Any:
    """Offset pages of `invoices`, newest-changed first, re-sorted for every page as the API
    does; `after_page(n)` runs after the n-th page of a pass was served."""

    def read(order_by: str, direction: str, whole: bool) -> Iterator[Page]:
        offset = served = 0
        while True:
            ordered = sorted(
                invoices.values(), key=lambda r: (r["last_updated_on"], r["id"]), reverse=True
            )
            records = [dict(r) for r in ordered[offset : offset + per_page]]
            yield Page(records, len(ordered))
            served += 1
            after_page(served)
            if len(records) < per_page:
                return
            offset += per_page

    return read


def _sync_with_changes_mid_pass(remember: int) -> tuple[ScopeSync, dict, list]:
    """1,000 invoices read 10 a page; every 20th page, one not read yet changes (it jumps to
    the top, behind the reader, and the rows below shift down: repeats)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    invoices = {
        f"INV-{n:04d}": {"id": f"INV-{n:04d}", "last_updated_on": start + timedelta(minutes=n)}
        for n in range(1000)
    }
    for invoice in invoices.values():
        invoice["version"] = "1"
    oldest = iter(sorted(invoices))

    def change_one_behind_the_reader(served: int) -> None:
        if served % 20 == 0:
            changed = invoices[next(oldest)]
            changed.update(last_updated_on=start + timedelta(days=1, minutes=served), version="2")

    state: dict[str, Any] = {}
    sync = ScopeSync(
        _list_reader(invoices, 10, change_one_behind_the_reader),
        state,
        full=False,
        overlap=timedelta(0),
        max_passes=10,
        order=("last_updated_on", "desc"),
        fallback_order=("created_on", "asc"),
        remember=remember,
    )
    yielded = [(r["id"], r["version"]) for batch in sync.invoices() for r in batch]
    return sync, state, yielded


def test_incremental_reader_remembers_only_the_last_invoices_read() -> None:
    """Memory stays flat with the number of invoices: the order check and the repeat filter
    keep only the last `remember` ids. Rows shifted down by changes mid-pass are still
    recognised as repeats (no false disorder); only the previous pass's head, read again
    by the next pass, comes twice (the merge keeps one)."""
    everything, everything_state, all_remembered = _sync_with_changes_mid_pass(10_000)
    bounded, state, yielded = _sync_with_changes_mid_pass(25)
    assert state == everything_state
    assert state["ordered"] is True and state["invoices"] == 1000
    assert set(yielded) == set(all_remembered)
    assert len(set(all_remembered)) == len(all_remembered)
    assert {i for i, _ in yielded} == {f"INV-{n:04d}" for n in range(1000)}
    assert {i for i, version in yielded if version == "2"} == {f"INV-{n:04d}" for n in range(5)}
    again = Counter(yielded) - Counter(all_remembered)
    assert sorted(again) == [(f"INV-{n:04d}", "1") for n in range(995, 1000)]
    assert len(bounded.yielded) == 25 and len(everything.yielded) == 1000
