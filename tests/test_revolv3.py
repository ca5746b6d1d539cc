"""Revolv3 end to end: the emulator over real HTTP, dlt into a real DuckDB file, the views."""

from __future__ import annotations

import json
import math
import re
import time
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest
import requests

from pipelines import cli
from pipelines.sandbox import environment
from sources.common.fields import FieldError
from sources.common.sandbox.ledger import DRAFT, OPEN, PAID, VOID
from sources.common.sandbox.server import Faults
from sources.revolv3 import VENDOR, settings
from sources.revolv3 import emulator as emulator_module
from sources.revolv3.emulator import CREDIT_LINE, STATUS_ENUM, TOKEN
from sources.revolv3.helpers import line_items, parse_billing_date
from tests.clock import TODAY
from tests.scenarios import run_scenario


def decode_json(text: str):
    """The emulator's body with money as Decimal, as the source reads it."""
    return json.loads(text, parse_float=Decimal)


def _get(sb, path: str, token: str = TOKEN, **params) -> requests.Response:
    return requests.get(
        sb.server.url + path, params=params, headers={"x-revolv3-token": token}, timeout=10
    )


def _served(sb) -> list:
    return [inv for inv in sb.ledger.snapshot() if inv.status != DRAFT]


def _number(inv) -> str:
    return str(int(inv.id.rsplit("_", 1)[-1]))


def _v1(sb, **params) -> list[dict]:
    response = _get(sb, "/api/Invoices/v1", **params)
    assert response.status_code == 200, response.text
    return decode_json(response.text)


def _matches_truth(sb) -> bool:
    """Invoice by invoice: the warehouse equals the emulator's ground truth."""
    rows = sb.query(
        "SELECT invoice_id, status, currency, total, amount_paid, amount_due, due_date "
        "FROM billing.invoices WHERE source = 'revolv3'"
    )
    truth = {
        t.invoice_id: (t.status, t.currency, t.total, t.amount_paid, t.amount_due, t.due_date)
        for t in sb.emulator.truth()
    }
    return {r[0]: tuple(r[1:]) for r in rows} == truth


def _orders_asked(sb) -> list[str | None]:
    """The `orderBy` of every v1 list request from now on, in order."""
    asked: list[str | None] = []
    for n, (method, pattern, name, handler) in enumerate(sb.emulator._routes):
        if name == "list_v1":

            def spy(request, handler=handler):
                asked.append(request.arg("orderBy"))
                return handler(request)

            sb.emulator._routes[n] = (method, pattern, name, spy)
    return asked


# -- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12-15-2024", date(2024, 12, 15)),
        ("03-04-2024", date(2024, 3, 4)),  # month first, as the seed documents
        ("9/17/2024", date(2024, 9, 17)),
        ("22-May-26", date(2026, 5, 22)),
        ("08-Aug-25", date(2025, 8, 8)),
        ("2024-12-15", date(2024, 12, 15)),
    ],
)
def test_billing_date_formats(text: str, expected: date) -> None:
    assert parse_billing_date(text) == expected


@pytest.mark.parametrize(
    "text", ["15-12-2024", "02-30-2024", "2024/12/15", "12-15-24", "22-Mai-26", "", None, 20241215]
)
def test_impossible_or_unknown_billing_dates_are_refused(text) -> None:
    with pytest.raises(FieldError):
        parse_billing_date(text)


# -- the emulator ----------------------------------------------------------------------------


def test_emulator_speaks_like_the_vendor(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40)
    served = _served(sb)
    first = _get(sb, "/api/Invoices", pageSize=7)
    assert first.status_code == 200
    assert re.search(r'"total":\d+\.\d{4}[,}]', first.text)  # a JSON number, 4 places
    rows = decode_json(first.text)
    assert isinstance(rows, list) and len(rows) == 7
    assert all(isinstance(row["total"], Decimal) for row in rows)
    assert all(row["total"].as_tuple().exponent == -4 for row in rows)
    everything = decode_json(_get(sb, "/api/Invoices", pageSize=100).text)
    assert len(everything) == len(served)
    keys = [(parse_billing_date(r["billingDate"]), r["invoiceId"]) for r in everything]
    assert keys == sorted(keys, key=lambda k: (-k[0].toordinal(), k[1]))
    assert _get(sb, "/api/Invoices", pageSize=7, page=1).json() == first.json()
    assert _get(sb, "/api/Invoices", pageSize=100, page=2).json() == []
    assert _get(sb, "/api/Invoices", page=0).status_code == 400
    assert decode_json(_get(sb, "/api/Invoices", page_size=5).text) == everything  # ignored
    cutoff = TODAY - timedelta(days=60)
    recent = _get(sb, "/api/Invoices", pageSize=100, startDate=cutoff.isoformat()).json()
    assert len(recent) == sum(1 for inv in served if inv.issue_date >= cutoff)
    older = _get(sb, "/api/Invoices", pageSize=100, endDate=cutoff.strftime("%m-%d-%Y")).json()
    assert len(older) == sum(1 for inv in served if inv.issue_date <= cutoff)
    detail = decode_json(_get(sb, f"/api/Invoices/{everything[0]['invoiceId']}").text)
    assert detail["invoiceId"] == everything[0]["invoiceId"]
    assert detail["invoiceAttempts"] is None or isinstance(detail["invoiceAttempts"], list)
    refused = _get(sb, "/api/Invoices", token="wrong")
    assert refused.status_code == 401 and refused.json()["error"] == "Unauthorized"
    assert _get(sb, "/api/Invoices/999999").status_code == 404


def test_emulator_v1_rows_carry_attempts_line_items_and_v1_fields(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=80)
    rows = {row["invoiceId"]: row for row in _v1(sb)}
    served = {int(_number(inv)): inv for inv in _served(sb)}
    assert set(rows) == set(served)
    for number, inv in served.items():
        row = rows[number]
        detail = decode_json(_get(sb, f"/api/Invoices/{number}").text)
        assert row["invoiceAttempts"] == (detail["invoiceAttempts"] or [])
        assert len(row["invoiceAttempts"]) == len(sb.emulator._attempts(inv))
        assert row["invoiceLineItems"] == detail["invoiceLineItems"]
        values = {
            None: Decimal(1),
            "Standard": Decimal(1),
            "Discount": Decimal(-1),
        }
        lines = sum(values[li["valueType"]] * li["value"] for li in row["invoiceLineItems"])
        assert lines == row["subtotal"]  # the lines add up to the subtotal served
        assert len(row["invoiceLineItems"]) == len(inv.lines) + (1 if inv.credits else 0)
        assert row["parentInvoiceId"] is None and row["installmentId"] is None
        assert row["currency"] == (None if number % 5 == 0 else "USD")
        assert row["invoiceStatusEnum"] == STATUS_ENUM[row["invoiceStatus"]]
        assert ("lastUpdateDate" in row) == bool(number % 3)  # "mixed": not every third
    credited = [r for r in rows.values() if r["invoiceLineItems"][-1]["name"] == CREDIT_LINE]
    assert credited and all(r["invoiceLineItems"][-1]["valueType"] == "Discount" for r in credited)
    assert {li["valueType"] for r in rows.values() for li in r["invoiceLineItems"]} == {
        None,
        "Standard",
        "Discount",
    }
    last_only = {row["invoiceId"]: row for row in _v1(sb, lastAttemptOnly="true")}
    assert all(last_only[n]["invoiceAttempts"] == rows[n]["invoiceAttempts"][-1:] for n in rows)
    assert any(len(row["invoiceAttempts"]) > 1 for row in rows.values())
    assert all("lastUpdateDate" in r for r in _v1(make_sandbox(VENDOR, 9, last_update_date="all")))
    assert not any(
        "lastUpdateDate" in r for r in _v1(make_sandbox(VENDOR, 9, last_update_date="none"))
    )


def test_emulator_v1_rows_without_attempts_have_them_in_their_detail(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40, null_attempts=4)
    for row in _v1(sb):
        if row["invoiceId"] % 4 == 0:
            assert row["invoiceAttempts"] is None
            detail = decode_json(_get(sb, f"/api/Invoices/{row['invoiceId']}").text)
            inv = sb.ledger.get(f"inv_{row['invoiceId']:05d}")
            assert len(detail["invoiceAttempts"] or []) == len(sb.emulator._attempts(inv))
        else:
            assert isinstance(row["invoiceAttempts"], list)


def test_emulator_v1_filters_on_last_update_and_billing_date_and_caps_pages(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=30, last_update_date="all")
    assert len(_v1(sb, pageSize=100)) == len(_served(sb))
    touched = sb.ledger.pay(sb.ledger.find(OPEN)[0].id)
    changed = _v1(sb, pageSize=100, lastUpdateStartDate=TODAY.isoformat())
    assert _number(touched) in {str(row["invoiceId"]) for row in changed}
    assert all(row["lastUpdateDate"] >= TODAY.isoformat() for row in changed)
    cutoff = TODAY - timedelta(days=60)
    older = _v1(sb, billingEndDate=cutoff.isoformat())
    assert len(older) == sum(1 for inv in _served(sb) if inv.issue_date <= cutoff)
    newer = _v1(sb, billingStartDate=cutoff.strftime("%m-%d-%Y"))
    assert len(newer) == sum(1 for inv in _served(sb) if inv.issue_date >= cutoff)
    assert len(_v1(sb, endDate=cutoff.isoformat())) == len(_served(sb))  # not v1's: ignored
    assert _get(sb, "/api/Invoices/v1", page=1000).status_code == 200
    assert _get(sb, "/api/Invoices/v1", page=1001).status_code == 400


def test_emulator_v1_orders_by_the_enums_numbers_and_names(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40, last_update_date="all")
    by_billing = [r["invoiceId"] for r in _v1(sb)]
    keys = [(parse_billing_date(r["billingDate"]), r["invoiceId"]) for r in _v1(sb)]
    assert keys == sorted(keys, key=lambda k: (-k[0].toordinal(), k[1]))
    for value in ("1", "BillingDate", "billingdate"):
        assert [r["invoiceId"] for r in _v1(sb, orderBy=value)] == by_billing
    for value in ("3", "InvoiceId", "INVOICEID"):
        assert [r["invoiceId"] for r in _v1(sb, orderBy=value)] == sorted(by_billing)
    stamps = [r["lastUpdateDate"] for r in _v1(sb, orderBy="2")]
    assert stamps == sorted(stamps) and _v1(sb, orderBy="LastUpdateDate") == _v1(sb, orderBy=2)
    for value in ("4", "0", "Total", "-1"):
        refused = _get(sb, "/api/Invoices/v1", orderBy=value)
        assert refused.status_code == 400 and refused.json()["error"] == "Bad Request"


def test_emulator_rate_limit_answers_the_vendors_429(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=5, faults=Faults(rate_limit=2))
    answers = [_get(sb, "/api/Invoices") for _ in range(4)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited
    assert limited[0].headers["Retry-After"] == "1"
    assert limited[0].json()["error"] == "Too Many Requests"
    assert limited[0].json()["message"]


def test_emulator_budget_answers_429_until_its_window_has_room(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=5, faults=Faults(budget=(3, 1.5)))
    answers = [_get(sb, "/api/Invoices/v1").status_code for _ in range(3)]
    refused = _get(sb, "/api/Invoices/v1")
    assert answers == [200, 200, 200] and refused.status_code == 429
    assert refused.headers["Retry-After"] in ("1", "2")
    assert refused.json() == {"error": "Too Many Requests", "message": refused.json()["message"]}
    time.sleep(1.6)
    assert _get(sb, "/api/Invoices/v1").status_code == 200


# -- the sync --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "source_options", "served_size", "honoured"),
    [
        ({}, {}, 100, True),  # pageSize honoured
        ({}, {"page_size": 9}, 9, True),
        ({"page_size_param": "page_size", "default_page_size": 25}, {}, 25, False),  # the seed's
        ({"page_size_param": "page_size", "default_page_size": 100}, {"page_size": 9}, 100, False),
    ],
)
def test_every_invoice_arrives_whatever_page_size_the_server_uses(
    make_sandbox, options, source_options, served_size, honoured
) -> None:
    sb = make_sandbox(VENDOR, invoices=45, **options)
    asked = _orders_asked(sb)
    result = sb.sync_ok(**source_options)
    served = len(_served(sb))
    loaded = {r[0] for r in sb.query("SELECT invoice_id FROM billing.invoices")}
    assert loaded == {_number(inv) for inv in _served(sb)}
    # A short page ends the list only once a full page showed our size is honoured; else the
    # list ends on an empty page. Then one catch-up read of page 1.
    short_ends = honoured and served >= served_size and served % served_size
    pages = math.ceil(served / served_size) + (0 if short_ends else 1)
    assert sb.emulator.requests["list_v1"] == pages + 1
    assert result.requests == pages + 1  # no detail, no classic list
    assert set(asked) == {"1"}  # by billing date, the enum's number
    assert _matches_truth(sb)


def test_a_first_sync_costs_a_request_per_hundred_invoices(make_sandbox) -> None:
    """250 invoices (drafts are not served): 3 pages and a catch-up read, no detail."""
    sb = make_sandbox(VENDOR, invoices=250)
    assert 200 < len(_served(sb)) < 300
    result = sb.sync_ok()
    assert dict(sb.emulator.requests) == {"list_v1": 4}
    assert result.requests == 4
    assert _matches_truth(sb)


def test_a_row_without_attempts_costs_one_detail_request(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=250, null_attempts=7)
    result = sb.sync_ok()
    withheld = [inv for inv in _served(sb) if int(_number(inv)) % 7 == 0]
    assert sb.emulator.requests["detail"] == len(withheld) > 20
    assert result.requests == 4 + len(withheld)
    payments = sb.query(
        "SELECT invoice_id, payment_id, amount FROM billing.payments WHERE source = 'revolv3'"
    )
    expected = [
        (_number(inv), str(int(txn.id.rsplit("_", 1)[-1])), inv.major(txn.amount))
        for inv in _served(sb)
        for txn in sb.emulator._attempts(inv)
    ]
    assert sorted(payments) == sorted(expected)
    assert _matches_truth(sb)


def test_money_is_exact_and_attempts_are_payments(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    rows = {
        r[0]: r[1:]
        for r in sb.query("SELECT invoice_id, subtotal, tax, total, currency FROM billing.invoices")
    }
    for inv in _served(sb):
        subtotal, tax, total, currency = rows[_number(inv)]
        assert currency == "USD"
        assert total == inv.major(inv.total - inv.credits) and isinstance(total, Decimal)
        assert tax == inv.major(inv.tax)
        assert subtotal + tax == total
    types = dict(
        sb.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'billing' AND table_name = 'invoices'"
        )
    )
    assert types["total"] == "DECIMAL(18,4)"
    payments = sb.query(
        "SELECT invoice_id, kind, status, amount FROM billing.payments WHERE source = 'revolv3'"
    )
    expected = []
    for inv in _served(sb):
        for txn in sb.emulator._attempts(inv):
            expected.append((_number(inv), txn.kind, txn.status, inv.major(txn.amount)))
    assert sorted(payments) == sorted(expected)
    assert {"payment", "refund"} <= {p[1] for p in payments}
    assert {"settled", "failed"} <= {p[2] for p in payments}


def test_ar_figures_equal_ground_truth(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    for as_of in (TODAY, TODAY + timedelta(days=45), TODAY - timedelta(days=60)):
        assert sb.summary_rows(as_of) == sb.truth_summary(as_of), as_of
        assert sb.aging_rows(as_of) == sb.truth_aging(as_of), as_of
    for view in (
        "invoices",
        "invoice_lines",
        "payments",
        "invoice_taxes",
        "ar_outstanding",
        "ar_paid",
    ):
        count = sb.query(f"SELECT count(*) FROM billing.{view} WHERE source = 'revolv3'")[0][0]
        assert count > 0, view
    assert sb.query("SELECT * FROM billing.data_checks") == []


def test_line_items_reach_invoice_lines_exactly(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=80)
    sb.sync_ok()
    rows = sb.query(
        "SELECT invoice_id, line_id, parent_line_id, description, amount, currency, quantity, "
        "value_type FROM staging.revolv3_invoice_lines"
    )
    expected = []
    for inv in _served(sb):
        number = int(_number(inv))
        kind = "Standard"
        for n, line in enumerate(inv.lines, start=1):
            amount = inv.major(line.amount)
            expected.append((str(number), str(number * 100 + n), line.description, amount, kind))
        if inv.credits:
            credit = -inv.major(inv.credits)
            expected.append(
                (
                    str(number),
                    str(number * 100 + 99),
                    "Applied from the customer's balance",
                    credit,
                    "Discount",
                )
            )
    got = [(r[0], r[1], r[3], r[4], r[7]) for r in rows]
    assert sorted(got) == sorted(expected)
    assert all(isinstance(r[4], Decimal) for r in rows)
    assert {(r[2], r[5], r[6]) for r in rows} == {(None, "USD", None)}  # no sub-lines
    assert any(amount < 0 for *_, amount, _ in got)  # credits are lines taken off
    sums = sb.query(
        "SELECT i.invoice_id, i.subtotal, sum(l.amount) FROM billing.invoices i "
        "JOIN billing.invoice_lines l USING (source, invoice_id) "
        "WHERE i.source = 'revolv3' GROUP BY ALL"
    )
    assert len(sums) == len(_served(sb))
    assert all(subtotal == lines for _, subtotal, lines in sums)
    assert sb.query("SELECT * FROM billing.data_checks") == []


def test_line_item_amounts_follow_their_value_type() -> None:
    raw = [
        {"invoiceLineItemId": 1, "name": "A", "value": Decimal("0.60"), "valueType": None},
        {"invoiceLineItemId": 2, "name": "B", "value": Decimal("0.49"), "valueType": "Standard"},
        {"invoiceLineItemId": 3, "name": "C", "value": Decimal("0.19"), "valueType": "Discount"},
        {"invoiceLineItemId": 4, "name": "D", "value": 19, "valueType": "DiscountPercentage"},
        {
            "invoiceLineItemId": 5,
            "name": "E",
            "value": Decimal("0.05"),
            "valueType": "FinalDiscount",
        },
        {"invoiceLineItemId": 6, "name": "F", "value": 2, "valueType": "PriceOverride"},
    ]
    amounts = [line["amount"] for line in line_items(raw, "USD")]
    # 19% of the charges (0.60 + 0.49 + 2 = 3.09) is 0.5871: 0.59, rounded half up to cents
    assert amounts == [
        Decimal("0.60"),
        Decimal("0.49"),
        Decimal("-0.19"),
        Decimal("-0.59"),
        Decimal("-0.05"),
        Decimal(2),
    ]
    vendor_example = [  # the vendor's checkout example: 19% off 1.09 is 0.21
        {"invoiceLineItemId": 1, "value": Decimal("1.09"), "valueType": "Standard"},
        {"invoiceLineItemId": 2, "value": 19, "valueType": "DiscountPercentage"},
    ]
    assert sum(line["amount"] for line in line_items(vendor_example, "USD")) == Decimal("0.88")
    with pytest.raises(FieldError, match="unknown line item valueType 'Surcharge'"):
        line_items([{"invoiceLineItemId": 1, "value": 1, "valueType": "Surcharge"}], "USD")
    with pytest.raises(FieldError, match="without an id"):
        line_items([{"value": 1}], "USD")


def test_parent_invoice_id_is_mapped(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=20)
    detailed = sb.emulator._detailed
    refund, original = (int(_number(inv)) for inv in _served(sb)[:2])

    def with_parent(inv):
        body = detailed(inv)
        if body["invoiceId"] == refund:
            body["parentInvoiceId"] = original
        return body

    sb.emulator._detailed = with_parent
    sb.sync_ok()
    parents = dict(sb.query("SELECT invoice_id, parent_invoice_id FROM staging.revolv3_invoices"))
    assert parents[str(refund)] == str(original)
    assert sum(1 for parent in parents.values() if parent is not None) == 1


@pytest.mark.parametrize("date_format", sorted(emulator_module.DATE_FORMATS))
def test_each_billing_date_format_loads_the_right_day(make_sandbox, date_format: str) -> None:
    sb = make_sandbox(VENDOR, invoices=30, date_format=date_format)
    sb.sync_ok()
    loaded = dict(sb.query("SELECT invoice_id, issue_date FROM billing.invoices"))
    assert loaded == {_number(inv): inv.issue_date for inv in _served(sb)}
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_all_seventeen_statuses_map_onto_the_contract(make_sandbox, monkeypatch) -> None:
    statuses = sorted(settings.STATUS_MAP)
    assert len(statuses) == 17
    monkeypatch.setattr(
        emulator_module, "revolv3_status", lambda inv: statuses[int(_number(inv)) % 17]
    )
    sb = make_sandbox(VENDOR, invoices=60)
    sb.sync_ok()
    rows = sb.query("SELECT vendor_status, status, amount_due FROM billing.invoices")
    assert {r[0] for r in rows} == set(statuses)
    for vendor_status, status, amount_due in rows:
        assert status == settings.STATUS_MAP[vendor_status]
        assert amount_due >= 0 and (status == "open" or amount_due == 0)


def test_a_query_past_the_page_cap_continues_in_an_older_window(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=60, max_page=2)
    result = sb.sync_ok(page_size=10, max_pages=2)
    loaded = {r[0] for r in sb.query("SELECT invoice_id FROM billing.invoices")}
    assert loaded == {_number(inv) for inv in _served(sb)}
    assert result.rows["invoices"] == len(_served(sb))  # overlaps are not loaded twice
    assert sb.emulator.requests["list_v1"] >= 2 * math.ceil(len(_served(sb)) / 20)  # windows
    assert _matches_truth(sb)


def test_one_billing_date_past_the_cap_is_a_clear_error(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=5, max_page=1)
    sb.ledger.create_invoices(3, status=OPEN)
    result = sb.sync(page_size=2, max_pages=1)
    assert not result.ok
    assert result.describe().startswith(f"revolv3: more invoices billed on {TODAY.isoformat()}")


def test_second_sync_of_unchanged_data_changes_nothing(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=25)
    sb.sync_ok()
    views = ("invoices", "invoice_lines", "payments", "invoice_taxes")
    before = {v: sb.query(f"SELECT * FROM billing.{v} ORDER BY ALL") for v in views}
    sb.sync_ok()
    assert {v: sb.query(f"SELECT * FROM billing.{v} ORDER BY ALL") for v in views} == before


def test_payment_void_and_new_invoices_show_after_next_sync(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=40)
    sb.sync_ok()
    to_pay, to_void = sb.ledger.find(OPEN)[:2]
    sb.ledger.pay(to_pay.id)
    sb.ledger.void(to_void.id)
    sb.emulator.after_requests(2, lambda ledger: ledger.create_invoices(4, status=OPEN))
    sb.sync_ok(page_size=10)
    rows = {
        r[0]: r[1:]
        for r in sb.query(
            "SELECT invoice_id, status, amount_due, amount_paid FROM billing.invoices"
        )
    }
    assert rows[_number(to_pay)] == (PAID, Decimal(0), to_pay.major(to_pay.amount_paid))
    assert rows[_number(to_void)][:2] == (VOID, Decimal(0))
    assert len(rows) == len(_served(sb))
    attempts = sb.query(
        "SELECT count(*) FROM billing.payments WHERE invoice_id = ?", [_number(to_pay)]
    )[0][0]
    assert attempts == len(sb.emulator._attempts(to_pay))
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_429s_and_faults_are_retried(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "6")
    sb = make_sandbox(VENDOR, invoices=30)
    sb.emulator.faults.inject("429", "429", "503", "drop")
    sb.sync_ok(page_size=10)
    assert sb.emulator.requests["fault_429"] == 2
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_rate_limit_is_honoured(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=30, faults=Faults(rate_limit=8))
    sb.sync_ok(page_size=2)  # paced at Revolv3's 20/s: faster than this API's 8/s
    assert sb.emulator.requests["rate_limited"] > 0
    assert _matches_truth(sb)


def test_paced_sync_keeps_within_both_limits(make_sandbox) -> None:
    """Revolv3's limits scaled down: the API allows 8 a second and 6 in any 2 seconds; the
    source is set a little below (as a user would, leaving the network its own delays)."""
    sb = make_sandbox(VENDOR, invoices=30, faults=Faults(rate_limit=8, budget=(6, 2.0)))
    started = time.monotonic()
    result = sb.sync_ok(
        page_size=5, max_requests_per_second=7, request_budget=6, request_budget_seconds=2.2
    )
    elapsed = time.monotonic() - started
    assert sb.emulator.requests["rate_limited"] == 0
    assert result.requests == 7  # 6 pages (the last one short), a catch-up read
    assert elapsed >= 2.2  # the 7th request waited for the budget's window
    admitted = sb.emulator.admitted_at
    assert all(b - a >= 2.0 for a, b in zip(admitted, admitted[6:], strict=False))
    assert _matches_truth(sb)


def test_a_spent_budget_is_waited_out_as_retry_after_says(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "6")
    sb = make_sandbox(VENDOR, invoices=30, faults=Faults(budget=(4, 1.0)))
    result = sb.sync_ok(page_size=5, max_requests_per_second=0, request_budget=0)
    assert sb.emulator.requests["rate_limited"] > 0  # not paced: the API said wait
    assert result.requests == 7 + sb.emulator.requests["rate_limited"]
    assert _matches_truth(sb)


def test_full_refresh_replaces_everything(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=20)
    sb.sync_ok()
    before = sb.query("SELECT * FROM billing.invoices ORDER BY ALL")
    assert sb.sync(full_refresh=True).ok
    assert sb.query("SELECT * FROM billing.invoices ORDER BY ALL") == before


# -- errors ----------------------------------------------------------------------------------


def _run_cli(args: list[str], settings_env: dict[str, str], capsys) -> tuple[int, list[str]]:
    with environment(settings_env):
        code = cli.main(args)
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()]


def test_wrong_token_exits_non_zero_with_one_line(make_sandbox, capsys, tmp_path) -> None:
    sb = make_sandbox(VENDOR, invoices=5)
    env = {**sb.settings, "SOURCES__REVOLV3__TOKEN": "tok_wrong_secret_value"}
    code, err = _run_cli(["sync", "revolv3", "--db", str(tmp_path / "x.duckdb")], env, capsys)
    assert code != 0 and len(err) == 1, err
    assert err[0].startswith("revolv3: the API refused our credentials (HTTP 401")
    assert "SOURCES__REVOLV3__TOKEN" in err[0] and "tok_wrong_secret_value" not in err[0]


def test_persistent_429_is_one_line_with_the_vendors_words(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "2")
    sb = make_sandbox(VENDOR, invoices=5)
    sb.emulator.faults.inject(*["429"] * 5)
    result = sb.sync()
    assert not result.ok
    assert "HTTP 429" in result.describe() and "Too Many Requests" in result.describe()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("invoiceStatus", "Archived", "unknown status 'Archived'"),
        ("billingDate", "15-12-2024", "not a real date"),  # day first: not the vendor's format
        ("billingDate", "2024/12/15", "fits none of the documented formats"),
        ("currency", "XYZ", "currency: "),
        ("lastUpdateDate", "yesterday", "lastUpdateDate: not an ISO 8601 timestamp"),
        ("invoiceLineItems", [{"invoiceLineItemId": 1, "value": 1, "valueType": "Tip"}], "Tip"),
        (
            "invoiceAttempts",
            [{"invoiceAttemptId": 30.5, "invoiceAttemptStatus": "Success"}],
            "not a whole number",
        ),
    ],
)
def test_bad_records_name_the_invoice(make_sandbox, field: str, value, words: str) -> None:
    sb = make_sandbox(VENDOR, invoices=10)
    render = sb.emulator.render_v1
    victim = _number(_served(sb)[3])

    def broken(inv, *args):
        body = render(inv, *args)
        if str(body["invoiceId"]) == victim:
            body[field] = value
        return body

    sb.emulator.render_v1 = broken
    result = sb.sync()
    assert not result.ok
    assert result.describe().startswith(f"revolv3: record {int(victim)!r}")
    assert words in result.describe()


def test_a_page_that_is_not_an_array_is_a_clear_error(make_sandbox) -> None:
    from sources.common.sandbox.server import Response

    sb = make_sandbox(VENDOR, invoices=10)
    body = Response.json(200, {"data": []})
    sb.emulator.route("GET", "/api/Invoices/v1", "list_v1", lambda r: body)
    sb.emulator._routes.insert(0, sb.emulator._routes.pop())
    result = sb.sync()
    assert not result.ok
    assert "malformed response from /api/Invoices/v1: expected a JSON array" in result.describe()


# -- incremental sync ------------------------------------------------------------------------


def _state(sb) -> dict:
    from pipelines.sync import pipeline_for

    pipeline = pipeline_for("revolv3", sb.db)
    return pipeline.state["sources"]["revolv3"]["resources"]["invoices"]


def _v1_stamp(sb, inv) -> str:
    rows = _get(sb, "/api/Invoices/v1", pageSize=100, orderBy="InvoiceId").json()
    return next(r["lastUpdateDate"] for r in rows if str(r["invoiceId"]) == _number(inv))


def _window_rows(sb, start: str) -> int:
    """How many v1 rows the incremental window starting on `start` holds now."""
    return len(_get(sb, "/api/Invoices/v1", pageSize=100, lastUpdateStartDate=start).json())


@pytest.mark.parametrize(
    "change", ["pay", "partial", "fail", "void", "uncollectible", "refund", "finalize"]
)
def test_emulator_last_update_moves_on_every_change(make_sandbox, change: str) -> None:
    sb = make_sandbox(VENDOR, invoices=60, last_update_date="all")
    ledger = sb.ledger
    status = {"refund": PAID, "finalize": DRAFT}.get(change, OPEN)
    inv = sorted(ledger.find(status), key=lambda i: i.id)[0]
    before = None if status == DRAFT else _v1_stamp(sb, inv)
    {
        "pay": lambda: ledger.pay(inv.id),
        "partial": lambda: ledger.pay(inv.id, max(inv.amount_due // 3, 1)),
        "fail": lambda: ledger.fail_payment(inv.id),
        "void": lambda: ledger.void(inv.id),
        "uncollectible": lambda: ledger.mark_uncollectible(inv.id),
        "refund": lambda: ledger.refund(inv.id),
        "finalize": lambda: ledger.finalize(inv.id),
    }[change]()
    after = _v1_stamp(sb, inv)
    assert before is None or after > before
    events = [t.processed_at for t in inv.transactions if t.processed_at]
    assert after >= max([inv.updated_at, *events]).replace(tzinfo=None).isoformat()[:23]
    day = after[:10]
    changed = _get(sb, "/api/Invoices/v1", pageSize=100, lastUpdateStartDate=day).json()
    assert _number(inv) in {str(r["invoiceId"]) for r in changed}


def test_emulator_last_update_covers_events_of_invoices_born_mid_sync(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=5, last_update_date="all")
    for status in (PAID, VOID, OPEN, "partial", "failed"):
        [inv] = sb.ledger.create_invoices(1, status=status)
        moments = [inv.updated_at, inv.voided_at, inv.paid_at, inv.finalized_at]
        moments += [t.processed_at for t in inv.transactions]
        latest = max(m for m in moments if m is not None)
        assert _v1_stamp(sb, inv) == latest.replace(tzinfo=None).isoformat(timespec="milliseconds")


def test_incremental_sync_loads_only_changed_invoices_from_their_rows(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=120, last_update_date="all")
    sb.sync_ok(page_size=10)
    state = _state(sb)
    assert state["window_start"] == (TODAY - timedelta(days=1)).isoformat()
    assert state["rows_from"] == "v1"
    to_pay, to_fail = sorted(sb.ledger.find(OPEN), key=lambda i: i.id)[:2]
    sb.ledger.pay(to_pay.id, max(to_pay.amount_due // 2, 1))
    sb.ledger.fail_payment(to_fail.id)
    [to_refund] = sorted(sb.ledger.find(PAID), key=lambda i: i.id)[:1]
    sb.ledger.refund(to_refund.id)
    new = sb.ledger.create_invoices(2, status=OPEN)
    window = _window_rows(sb, state["window_start"])
    sb.emulator.requests.clear()
    asked = _orders_asked(sb)
    result = sb.sync_ok(page_size=10)
    # the window's rows, read in pages of 10 (an empty page ends it), then one catch-up read
    short = window % 10 and window > 10
    assert dict(sb.emulator.requests) == {"list_v1": math.ceil(window / 10) + (1 if short else 2)}
    assert set(asked) == {"3"}  # by invoice id, the enum's number
    assert result.requests == sum(sb.emulator.requests.values())
    assert result.rows["invoices"] == 5  # 3 changed + 2 new; rows at a stamp loaded: skipped
    assert result.counts.new == 2 and result.counts.changed == 3
    assert _matches_truth(sb)
    loaded = {r[0] for r in sb.query("SELECT invoice_id FROM billing.invoices")}
    assert {_number(i) for i in new} <= loaded
    # the state keeps only invoices updated inside the next window, at the stamp loaded
    state = _state(sb)
    assert {_number(to_pay), _number(to_fail), _number(to_refund)} <= set(state["recent"])
    assert state["recent"][_number(to_pay)] == _v1_stamp(sb, to_pay)
    assert all(stamp[:10] >= state["window_start"] for stamp in state["recent"].values())
    # nothing changed: the window is read, nothing is loaded
    result = sb.sync_ok(page_size=10)
    assert "invoices" not in result.rows or result.rows["invoices"] == 0


def test_rows_without_last_update_date_are_loaded_from_the_row(make_sandbox) -> None:
    """The vendor's field list shows no `lastUpdateDate`: such rows are changes, never errors."""
    sb = make_sandbox(VENDOR, invoices=60, last_update_date="none")
    sb.sync_ok()
    assert _state(sb)["recent"] == {}
    to_pay, to_void = sorted(sb.ledger.find(OPEN), key=lambda i: i.id)[:2]
    sb.ledger.pay(to_pay.id)
    sb.ledger.void(to_void.id)
    window = _window_rows(sb, _state(sb)["window_start"])
    sb.emulator.requests.clear()
    result = sb.sync_ok()
    assert dict(sb.emulator.requests) == {"list_v1": 3}  # one page, the empty one, catch-up
    assert result.rows["invoices"] == window >= 2  # the window's rows, each loaded as it is
    assert result.counts.changed == 2 and result.counts.new == 0
    assert _matches_truth(sb)
    assert _state(sb)["recent"] == {}


def test_request_counts_of_full_and_incremental_syncs(make_sandbox) -> None:
    """About N/100 requests for a first sync, (changed invoices)/100 + 2 for a later one."""
    sb = make_sandbox(VENDOR, invoices=600)
    served = len(_served(sb))
    full = sb.sync_ok().requests
    assert full == math.ceil(served / 100) + 1  # the last page is short; a catch-up read
    sb.ledger.random_changes(6)
    incremental = sb.sync_ok().requests
    assert incremental == 3  # fewer than 100 rows in the window: a page, an empty page, catch-up
    assert _matches_truth(sb)
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)


def test_a_change_window_past_the_page_cap_is_split_by_day(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=60, max_page=2)
    sb.sync_ok(page_size=5, max_pages=2)
    opens = sorted(sb.ledger.find(OPEN), key=lambda i: i.id)
    for day, inv in enumerate(opens[:12]):  # changes spread over four days, three a day
        sb.ledger.now += timedelta(days=1) if day % 3 == 0 else timedelta(0)
        sb.ledger.fail_payment(inv.id)
    sb.emulator.requests.clear()
    asked = _orders_asked(sb)
    sb.sync_ok(page_size=5, max_pages=2)
    assert set(sb.emulator.requests) == {"list_v1"}
    assert sb.emulator.requests["list_v1"] > 3  # several windows
    assert set(asked) == {"3"}
    assert _matches_truth(sb)
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    assert sb.summary_rows(TODAY + timedelta(days=30)) == sb.truth_summary(TODAY + timedelta(30))


def test_one_day_of_changes_past_the_page_cap_falls_back_to_a_full_read(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=90, max_page=2)
    sb.sync_ok(page_size=10, max_pages=2)
    opens = sorted(sb.ledger.find(OPEN), key=lambda i: i.id)
    assert len(opens) > 20
    for inv in opens[:21]:  # one day of changes, more than 2 pages of 10
        sb.ledger.fail_payment(inv.id)
    sb.emulator.requests.clear()
    asked = _orders_asked(sb)
    result = sb.sync_ok(page_size=10, max_pages=2)
    assert "1" in asked  # the list by billing date read everything
    assert result.rows["invoices"] >= len(_served(sb))
    assert _matches_truth(sb)


def test_full_refresh_reads_the_whole_list_and_resets_the_state(make_sandbox) -> None:
    sb = make_sandbox(VENDOR, invoices=30)
    sb.sync_ok()
    sb.ledger.pay(sorted(sb.ledger.find(OPEN), key=lambda i: i.id)[0].id)
    sb.sync_ok()
    sb.emulator.requests.clear()
    asked = _orders_asked(sb)
    result = sb.sync(full_refresh=True)
    assert result.ok and result.rows["invoices"] == len(_served(sb))
    assert dict(sb.emulator.requests) == {"list_v1": 3} and set(asked) == {"1"}
    assert _state(sb)["window_start"] == (TODAY - timedelta(days=1)).isoformat()
    assert _matches_truth(sb)


def test_a_warehouse_loaded_before_line_items_is_read_in_full_once(make_sandbox) -> None:
    """As one synced from the classic list by an earlier version: no line items, no
    `rows_from` in the state. The next sync reads everything, later ones only changes."""
    from pipelines.sync import pipeline_for

    sb = make_sandbox(VENDOR, invoices=40)
    sb.sync_ok()
    lines = sb.query("SELECT * FROM billing.invoice_lines ORDER BY ALL")
    with pipeline_for("revolv3", sb.db).managed_state() as state:
        del state["sources"]["revolv3"]["resources"]["invoices"]["rows_from"]
    con = duckdb.connect(str(sb.db))
    con.execute("DELETE FROM revolv3.invoices__invoice_line_items")
    con.close()
    asked = _orders_asked(sb)
    sb.sync_ok()
    assert set(asked) == {"1"} and _state(sb)["rows_from"] == "v1"
    assert sb.query("SELECT * FROM billing.invoice_lines ORDER BY ALL") == lines
    asked.clear()
    sb.sync_ok()
    assert set(asked) == {"3"}


def test_a_sync_that_fails_part_way_does_not_advance_the_state(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "1")
    sb = make_sandbox(VENDOR, invoices=30)
    sb.sync_ok()
    before = _state(sb)
    paid = sorted(sb.ledger.find(OPEN), key=lambda i: i.id)[0]
    sb.ledger.pay(paid.id)
    sb.emulator.after_requests(2, lambda _: sb.emulator.faults.inject(*["drop"] * 5))
    assert not sb.sync().ok
    sb.emulator.faults.queued.clear()
    assert _state(sb) == before
    sb.sync_ok()
    status = sb.query("SELECT status FROM billing.invoices WHERE invoice_id = ?", [_number(paid)])
    assert status == [(PAID,)]


def test_a_refund_made_while_a_window_is_read_again_is_kept() -> None:
    """Found by the property test: the invoice is met twice in one sync, before and after
    its refund; the merge must keep the copy read last, or the refund is never loaded."""
    run_scenario(
        VENDOR,
        [
            ("pay", 6134),
            ("sync_with_changes", 3, [("refund", 329), ("partial", 699), ("partial", 113)]),
            ("pay", 47),
            ("partial", 3231),
            ("fail", 2663),
            ("sync_with_changes", 3, [("refund", 329), ("partial", 699), ("partial", 113)]),
            ("sync_with_changes", 1, [("create", 2)]),
            ("create", 0),
        ],
        source_options={"page_size": 3},
    )
