"""Sequence end to end: its emulator over real HTTP, the dlt source, DuckDB and the views."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import jsonschema
import pytest
import requests

from pipelines import cli
from pipelines.registry import VENDORS
from pipelines.sandbox import environment
from pipelines.sync import pipeline_for
from pipelines.views import build_views
from sources.common.sandbox.ledger import DRAFT, OPEN, PAID, REFUNDED, UNCOLLECTIBLE
from sources.common.sandbox.server import Faults, SandboxServer
from sources.sequence import VENDOR, settings
from sources.sequence.emulator import CLIENT_ID, CLIENT_SECRET
from sources.sequence.helpers import bucket_of
from tests.clock import TODAY
from tests.conftest import Sandbox

# -- the parts of Sequence's 2024-07-30 spec that we read, as compact JSON Schemas ----------
# Money is a decimal string everywhere except the list's grossTotal (a string in the spec, a
# number in the seed) and the summary endpoint's totals (numbers).
DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
DAY = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
INSTANT = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"}
INVOICE_STATUS = {"enum": ["IN_PROGRESS", "DRAFT", "FINAL", "SENT", "VOIDED"]}
PAYMENT_STATUS = {"enum": ["UNPAID", "PARTIALLY_PAID", "PAID", "UNCOLLECTIBLE"]}
ADDRESS = {
    "type": "object",
    "required": ["line1", "town", "postcode", "country"],
    "properties": {"country": {"type": "string", "pattern": "^[A-Z]{2}$"}},
}
PAGINATION = {
    "type": "object",
    "properties": {
        "after": {"type": "string"},
        "before": {"type": "string"},
        "totalResultSize": {"type": "integer"},
    },
}
LIST_INVOICES = {
    "type": "object",
    "required": ["items", "pagination"],
    "properties": {
        "pagination": PAGINATION,
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": """accountingDate createdAt creditNoteIds currency
                customerBillingAddress customerEmails customerId customerLegalCompanyName
                customerShippingAddress grossTotal id isCustomerArchived linkedServices metadata
                netTotal paymentStatus renderSettings sequenceAccountId status totalTax
                updatedAt""".split(),  # noqa: SIM905
                "properties": {
                    "status": INVOICE_STATUS,
                    "paymentStatus": PAYMENT_STATUS,
                    "grossTotal": {"anyOf": [DECIMAL, {"type": "number"}]},
                    "netTotal": DECIMAL,
                    "totalTax": DECIMAL,
                    "createdAt": INSTANT,
                    "updatedAt": INSTANT,
                    "creditNoteIds": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
PERIOD = {
    "type": "object",
    "required": ["start", "endInclusive"],
    "properties": {"start": DAY, "endInclusive": DAY},
}
LIST_SUMMARY = {
    "type": "object",
    "required": ["items", "pagination"],
    "properties": {
        "pagination": PAGINATION,
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "accountingDate",
                    "currency",
                    "customerId",
                    "customerLegalCompanyName",
                    "dueDateSource",
                    "grossTotal",
                    "id",
                    "links",
                    "paymentStatus",
                    "status",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "invoiceNumber": {"type": "string"},
                    "status": INVOICE_STATUS,
                    "paymentStatus": PAYMENT_STATUS,
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "grossTotal": {"anyOf": [DECIMAL, {"type": "number"}]},
                    "billingPeriod": PERIOD,
                    "dueDate": DAY,
                    "dueDateSource": {"enum": ["MANUAL", "CALCULATED"]},
                    "accountingDate": DAY,
                    "links": {"type": "array"},
                },
            },
        },
    },
}
INVOICE = {
    "type": "object",
    "required": [
        "accountingDate",
        "appliedCreditGrants",
        "appliedCreditNotes",
        "createdAt",
        "creditNoteIds",
        "currency",
        "customerBillingAddress",
        "customerEmails",
        "customerId",
        "customerLegalCompanyName",
        "customerShippingAddress",
        "dueDateSource",
        "grossTotal",
        "id",
        "integrationPaymentStatuses",
        "isCustomerArchived",
        "linkedServices",
        "metadata",
        "netTotal",
        "paymentAllocations",
        "paymentStatus",
        "projectedCreditGrants",
        "renderSettings",
        "sequenceAccountId",
        "status",
        "totalTax",
        "updatedAt",
    ],
    "properties": {
        "status": INVOICE_STATUS,
        "paymentStatus": PAYMENT_STATUS,
        "issueDate": DAY,
        "dueDate": DAY,
        "billingPeriod": PERIOD,
        "netTotal": DECIMAL,
        "totalTax": DECIMAL,
        "grossTotal": DECIMAL,
        "balance": DECIMAL,
        "createdAt": INSTANT,
        "updatedAt": INSTANT,
        "customerBillingAddress": ADDRESS,
        "customerShippingAddress": ADDRESS,
        "customerTaxStatus": {"enum": ["TAXED", "TAX_EXEMPT", "REVERSE_CHARGED"]},
        "paymentAllocations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["allocatedAt", "amount", "origin", "paidAt", "paymentId"],
                "properties": {
                    "amount": DECIMAL,
                    "origin": {"enum": ["MANUAL", "STRIPE"]},
                    "paidAt": INSTANT,
                    "allocatedAt": INSTANT,
                },
            },
        },
        "appliedCreditNotes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["grossTotal", "id", "lineItems", "netTotal", "totalTax"],
                "properties": {"grossTotal": DECIMAL, "netTotal": DECIMAL, "totalTax": DECIMAL},
            },
        },
        "appliedCreditGrants": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["amount", "status"],
                "properties": {"amount": DECIMAL, "status": {"enum": ["APPLIED", "PROJECTED"]}},
            },
        },
    },
}
LINE_ITEMS = {
    "type": "object",
    "required": ["items", "pagination"],
    "properties": {
        "pagination": PAGINATION,
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "externalIds",
                    "grossTotal",
                    "id",
                    "index",
                    "invoiceId",
                    "netTotal",
                    "quantity",
                    "rate",
                    "rateDisplay",
                    "taxRate",
                    "title",
                    "totalTax",
                ],
                "properties": {
                    "quantity": DECIMAL,
                    "rate": DECIMAL,
                    "taxRate": DECIMAL,
                    "netTotal": DECIMAL,
                    "totalTax": DECIMAL,
                    "grossTotal": DECIMAL,
                    "index": {"type": "integer"},
                    "rateDisplay": {"enum": ["ABSOLUTE", "PERCENTAGE"]},
                    "servicePeriod": {
                        "type": "object",
                        "required": ["startDate", "endDate"],
                        "properties": {"startDate": DAY, "endDate": DAY},
                    },
                },
            },
        },
    },
}
SUMMARY = {
    "type": "object",
    "required": ["totalsByCurrency"],
    "properties": {
        "totalsByCurrency": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["currency", "grossTotal", "invoiceCount"],
                "properties": {
                    "invoiceCount": {"type": "integer"},
                    "grossTotal": {"type": "number"},
                },
            },
        }
    },
}


class Api:
    """Plain HTTP calls to a Sequence emulator, as the vendor documents them."""

    def __init__(self, sandbox: Any, secret: str = CLIENT_SECRET) -> None:
        self.base = sandbox.settings["SOURCES__SEQUENCE__BASE_URL"]
        token = base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "sequence-version": "2024-07-30"}

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.base + path, params=params, headers=self.headers, timeout=10)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return json.loads(response.text, parse_float=Decimal)

    def all_ids(self, **params: Any) -> list[str]:
        ids, after = [], None
        while True:
            body = self.json("/invoices/list-summary", **params, after=after)
            ids += [item["id"] for item in body["items"]]
            after = body["pagination"].get("after")
            if not after:
                return ids


@pytest.fixture
def sequence(make_sandbox: Any) -> Iterator[Any]:
    yield make_sandbox(VENDOR, invoices=60)


def loaded_invoices(sb: Any) -> dict[str, tuple]:
    rows = sb.query(
        "SELECT invoice_id, status, total, amount_paid, amount_due, currency, due_date "
        "FROM billing.invoices WHERE source = 'sequence'"
    )
    return {row[0]: row[1:] for row in rows}


def truth_invoices(sb: Any) -> dict[str, tuple]:
    return {
        t.invoice_id: (t.status, t.total, t.amount_paid, t.amount_due, t.currency, t.due_date)
        for t in sb.emulator.truth()
    }


# -- the emulator speaks Sequence ------------------------------------------------------------


def test_responses_validate_against_the_spec(sequence: Any) -> None:
    api = Api(sequence)
    first = api.json("/invoices/list-summary", limit=7)
    jsonschema.validate(first, LIST_SUMMARY)
    assert len(first["items"]) == 7 and first["pagination"]["totalResultSize"] == 60
    for item in first["items"]:
        jsonschema.validate(api.json(f"/invoices/{item['id']}"), INVOICE)
        jsonschema.validate(api.json(f"/invoices/{item['id']}/line-items"), LINE_ITEMS)
    jsonschema.validate(api.json("/invoices/summary"), SUMMARY)
    # `GET /invoices`, what the source pages through: whole invoices (the spec's `Invoice`,
    # with `creditNoteIds` and `updatedAt`), same order and cursors as the list-summary.
    whole = api.json("/invoices", limit=7)
    jsonschema.validate(whole, LIST_INVOICES)
    assert [i["id"] for i in whole["items"]] == [i["id"] for i in first["items"]]
    assert not {"balance", "paymentAllocations", "appliedCreditNotes"} & set(whole["items"][0])
    # The seed's variant: grossTotal as a JSON number, with its exact digits.
    sequence.emulator.gross_total = "number"
    numbered = api.json("/invoices/list-summary", limit=100)
    jsonschema.validate(numbered, LIST_SUMMARY)
    assert all(isinstance(i["grossTotal"], Decimal | int) for i in numbered["items"])


def test_cursor_pages_limits_order_and_auth(sequence: Any) -> None:
    api = Api(sequence)
    ledger = sequence.ledger.snapshot()
    newest_first = [inv.id for inv in sorted(ledger, key=lambda i: (i.created_at, i.id))][::-1]
    assert api.all_ids(limit=9) == newest_first  # default order: creation time, DESC
    assert api.all_ids(limit=100, sortOrder="ASC") == newest_first[::-1]
    head = api.json("/invoices/list-summary", limit=50)
    assert "before" not in head["pagination"]
    tail = api.json("/invoices/list-summary", limit=50, after=head["pagination"]["after"])
    assert "after" not in tail["pagination"] and len(tail["items"]) == 10
    back = api.json("/invoices/list-summary", limit=50, before=tail["pagination"]["before"])
    assert [i["id"] for i in back["items"]] == newest_first[:50]
    for bad in ({"limit": 0}, {"limit": 101}, {"sortOrder": "UP"}, {"after": "??"}):
        assert api.get("/invoices/list-summary", **bad).status_code == 400
    assert Api(sequence, secret="wrong").get("/invoices/list-summary").status_code == 401
    api.headers["sequence-version"] = "2023-01-01"
    assert api.get("/invoices/list-summary").status_code == 400


def test_filters_and_summary_totals(sequence: Any) -> None:
    api = Api(sequence)
    ledger = sequence.ledger.snapshot()
    paid = api.all_ids(invoicePaymentStatus="PAID", limit=100)
    not_paid = api.all_ids(excludeInvoicePaymentStatus="PAID", limit=100)
    assert len(paid) + len(not_paid) == 60 and not set(paid) & set(not_paid)
    assert set(paid) == {inv.id for inv in ledger if inv.status in (PAID, REFUNDED)}
    voided = set(api.all_ids(invoiceStatus="VOIDED"))
    assert voided.isdisjoint(api.all_ids(excludeInvoiceStatus="VOIDED,DRAFT,IN_PROGRESS"))
    customer = ledger[0].customer.id
    assert set(api.all_ids(customerId=customer)) == {
        inv.id for inv in ledger if inv.customer.id == customer
    }
    assert customer not in {
        sequence.ledger.get(i).customer.id for i in api.all_ids(excludeCustomerId=customer)
    }
    day = sorted(inv.issue_date for inv in ledger)[30]
    before = api.all_ids(invoiceBefore=day.isoformat())
    after = api.all_ids(invoiceAfter=day.isoformat())
    assert len(before) + len(after) == 60 and all(
        sequence.ledger.get(i).issue_date < day for i in before
    )
    assert api.get("/invoices/list-summary", dueAfter="01/02/2024").status_code == 400
    assert api.get("/invoices/list-summary", invoiceStatus="OPEN").status_code == 400
    expected: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
    for inv in ledger:
        expected[inv.currency][0] += 1
        expected[inv.currency][1] += inv.major(inv.total)
    totals = api.json("/invoices/summary")["totalsByCurrency"]
    assert {t["currency"]: [t["invoiceCount"], t["grossTotal"]] for t in totals} == expected


# -- the source, end to end ------------------------------------------------------------------


def test_sync_loads_every_invoice_exactly(sequence: Any) -> None:
    result = sequence.sync_ok()
    assert result.rows["invoices"] == 60
    assert loaded_invoices(sequence) == truth_invoices(sequence)
    ledger = sequence.ledger.snapshot()
    lines = sequence.query(
        "SELECT invoice_id, count(*), sum(amount) FROM billing.invoice_lines "
        "WHERE source = 'sequence' GROUP BY invoice_id"
    )
    assert {r[0]: (r[1], r[2]) for r in lines} == {
        inv.id: (len(inv.lines), inv.major(inv.subtotal)) for inv in ledger
    }
    taxes = sequence.query(
        "SELECT invoice_id, sum(tax_amount) FROM billing.invoice_taxes "
        "WHERE source = 'sequence' GROUP BY invoice_id"
    )
    assert {r[0]: r[1] for r in taxes} == {inv.id: inv.major(inv.tax) for inv in ledger}
    # Reconciled with Sequence's own per-currency totals (GET /invoices/summary).
    totals = Api(sequence).json("/invoices/summary")["totalsByCurrency"]
    loaded = sequence.query(
        "SELECT currency, count(*), sum(total) FROM billing.invoices "
        "WHERE source = 'sequence' GROUP BY currency"
    )
    assert {r[0]: (r[1], r[2]) for r in loaded} == {
        t["currency"]: (t["invoiceCount"], t["grossTotal"]) for t in totals
    }
    # ... and the source's own reconciliation agrees: no data check fires.
    assert sequence.query("SELECT * FROM billing.data_checks WHERE source = 'sequence'") == []
    # One list page; one detail and one line-items page per invoice; one summary (ours; the
    # test's own call above is the second); always the version header.
    assert sequence.emulator.requests == {"list": 1, "detail": 60, "line_items": 60, "summary": 2}
    assert set(sequence.emulator.versions) == {"2024-07-30"}


def test_ar_figures_equal_ground_truth_across_changes(sequence: Any) -> None:
    sequence.sync_ok(limit=7)  # several list pages
    today = TODAY
    assert sequence.summary_rows(today) == sequence.truth_summary(today)
    assert sequence.aging_rows(today) == sequence.truth_aging(today)
    sequence.ledger.random_changes(12)
    sequence.emulator.after_requests(3, lambda ledger: ledger.create_invoices(4))
    sequence.sync_ok(limit=7)
    assert loaded_invoices(sequence) == truth_invoices(sequence)
    assert sequence.summary_rows(today) == sequence.truth_summary(today)
    assert sequence.aging_rows(today) == sequence.truth_aging(today)
    assert sequence.query("SELECT * FROM billing.data_checks WHERE source = 'sequence'") == []


def test_transient_faults_and_rate_limits_are_retried(
    make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME__REQUEST_MAX_ATTEMPTS", "7")  # four faults in a row
    faults = Faults()
    sb = make_sandbox(VENDOR, invoices=30, faults=faults)
    sb.emulator.after_requests(5, lambda _: faults.inject("429", "503", "drop", "truncate"))
    assert sb.sync_ok(limit=10).rows["invoices"] == 30
    assert loaded_invoices(sb) == truth_invoices(sb)
    assert {"fault_429", "fault_503", "fault_drop", "fault_truncate"} <= set(sb.emulator.requests)


def test_partially_paid_and_refunded_invoices(sequence: Any) -> None:
    ledger = sequence.ledger
    partial = [inv for inv in ledger.find(OPEN) if inv.payments_settled]
    unpaid = [inv for inv in ledger.find(OPEN) if not inv.payments_settled]
    assert partial and unpaid
    sequence.sync_ok()
    rows = loaded_invoices(sequence)
    for inv in partial:
        status, total, paid, due, *_ = rows[inv.id]
        assert status == "open" and paid == inv.major(inv.payments_settled)
        assert due == inv.major(inv.total - inv.credits - inv.payments_settled) > 0
    # Changes the list does not show: another payment on a partly paid invoice, and a
    # refund (a credit note) on a paid one. Both must reach the warehouse.
    ledger.pay(partial[0].id, 1)
    refunded = ledger.refund(ledger.find(PAID)[0].id)
    ledger.pay(unpaid[0].id, 5)
    before = sequence.emulator.requests.copy()
    sequence.sync_ok()
    assert loaded_invoices(sequence) == truth_invoices(sequence)
    assert loaded_invoices(sequence)[refunded.id][0] == "refunded"
    assert loaded_invoices(sequence)[unpaid[0].id][0] == "open"
    assert sequence.query(
        "SELECT vendor_payment_status FROM billing.invoices WHERE invoice_id = ?", [unpaid[0].id]
    ) == [("PARTIALLY_PAID",)]
    refunds = sequence.query(
        "SELECT sum(amount) FROM billing.payments WHERE invoice_id = ? AND kind = 'refund'",
        [refunded.id],
    )
    assert refunds == [(refunded.major(refunded.refunds_settled),)]
    # Only the three changed invoices had their line items read again.
    assert sequence.emulator.requests["line_items"] - before["line_items"] == 3


def test_second_sync_of_unchanged_data_changes_nothing(sequence: Any) -> None:
    sequence.sync_ok()
    first = sequence.query("SELECT * FROM billing.invoices ORDER BY invoice_id")
    before = sequence.emulator.requests.copy()
    result = sequence.sync_ok()
    assert result.rows == {"vendor_totals": 5}  # the vendor's own totals, replaced each run
    assert sequence.query("SELECT * FROM billing.invoices ORDER BY invoice_id") == first
    # Only invoices that can still change are read in full again: drafts, open, uncollectible.
    changeable = len(sequence.ledger.find(DRAFT, OPEN, UNCOLLECTIBLE))
    assert 0 < changeable < 60
    assert sequence.emulator.requests["detail"] - before["detail"] == changeable
    assert sequence.emulator.requests["line_items"] == before["line_items"]
    # A full refresh rewrites the table: everything is read and loaded again.
    assert sequence.sync(full_refresh=True).rows["invoices"] == 60
    assert sequence.query("SELECT * FROM billing.invoices ORDER BY invoice_id") == first


def test_gross_total_as_json_number_stays_exact(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=40, gross_total="number")
    sb.sync_ok()
    rows = sb.query("SELECT list_gross_total, gross_total FROM sequence.invoices")
    assert len(rows) == 40 and all(listed == full for listed, full in rows)
    assert loaded_invoices(sb) == truth_invoices(sb)


def test_empty_last_page_with_a_cursor_ends_cleanly(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=30, cursor_mode="empty_tail")
    assert sb.sync_ok(limit=10).rows["invoices"] == 30
    assert sb.emulator.requests["list"] == 4  # three full pages, then the empty one


def test_endless_cursor_ends_in_a_clear_error(make_sandbox: Any) -> None:
    sb = make_sandbox(VENDOR, invoices=30, cursor_mode="endless")
    result = sb.sync(limit=10)
    assert not result.ok
    message = result.describe()
    assert message.startswith("sequence: the API sent the same 'after' cursor twice")
    assert "/invoices" in message and "\n" not in message
    assert sb.emulator.requests["list"] == 2
    assert sb.query("SELECT count(*) FROM billing.invoices WHERE source = 'sequence'") == [(0,)]


def test_unknown_status_is_refused_with_the_invoice_id(sequence: Any) -> None:
    render = sequence.emulator.render_list_item
    sequence.emulator.render_list_item = lambda inv: {**render(inv), "status": "ARCHIVED"}
    result = sequence.sync()
    assert not result.ok and "unknown status 'ARCHIVED'" in result.describe()
    assert "record 'inv_" in result.describe()


def test_wrong_credentials_give_one_clear_line(
    sequence: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {**sequence.settings, "SOURCES__SEQUENCE__CLIENT_SECRET": "not-the-secret"}
    with environment(settings):
        code = cli.main(["sync", "sequence", "--db", str(tmp_path / "x.duckdb")])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sequence: the API refused our credentials (HTTP 401")
    assert "SOURCES__SEQUENCE__CLIENT_ID" in err and "SOURCES__SEQUENCE__CLIENT_SECRET" in err
    assert "not-the-secret" not in err and CLIENT_SECRET not in err


def test_staging_views_have_the_contract_types(sequence: Any) -> None:
    from pipelines.contract import STAGING_ENTITIES

    sequence.sync_ok()
    for entity, expected in STAGING_ENTITIES.items():
        described = sequence.query(f"DESCRIBE staging.sequence_{entity}")
        types = {row[0]: row[1].replace(" ", "") for row in described}
        for column, kind in expected.items():
            assert types[column] == kind.replace(" ", ""), (entity, column, types[column])
    assert sequence.query("SELECT * FROM billing.data_checks WHERE source = 'sequence'") == []
    statuses = sequence.query("SELECT DISTINCT status FROM billing.invoices")
    assert {s for (s,) in statuses} <= {
        "draft",
        "open",
        "paid",
        "void",
        "uncollectible",
        "refunded",
    }


def test_vendor_totals_reconcile_what_was_loaded(sequence: Any) -> None:
    sequence.sync_ok()
    assert sequence.query("SELECT count(*) FROM sequence.vendor_totals")[0][0] >= 2
    # An invoice the warehouse lost (simulated behind dlt's back) shows as a difference.
    gone = sequence.ledger.snapshot()[0]
    con = duckdb.connect(str(sequence.db))
    con.execute("DELETE FROM sequence.invoices WHERE id = ?", [gone.id])
    con.close()
    build_views(sequence.db, list(VENDORS))
    found = sequence.query(
        "SELECT source, detail FROM billing.data_checks WHERE \"check\" = 'vendor_totals_differ'"
    )
    assert len(found) == 1 and found[0][0] == "sequence"
    assert f"the vendor reports {gone.currency}" in found[0][1]


# -- incremental sync (issue 8) ---------------------------------------------------------------


def _resource_state(sb: Any) -> dict[str, Any]:
    pipeline = pipeline_for(VENDOR.name, sb.db)
    pipeline.sync_destination()  # the state as the warehouse holds it
    return pipeline.state["sources"]["sequence"]["resources"]["invoices"]


def _mature_sandbox(tmp_path: Any, invoices: int) -> Iterator[Any]:
    emulator = VENDOR.emulator(VENDOR.make_ledger(seed=5, invoices=invoices, history="mature"))
    server = SandboxServer({"": emulator}).start()
    try:
        yield Sandbox(VENDOR, emulator, server, tmp_path / "mature.duckdb")
    finally:
        server.stop()


def test_incremental_sync_reads_only_what_can_have_changed(tmp_path: Any) -> None:
    for sb in _mature_sandbox(tmp_path, 600):
        full = sb.sync_ok(limit=100)
        ledger = sb.ledger
        changeable = len(ledger.find(DRAFT, OPEN, UNCOLLECTIBLE))
        assert full.requests == 6 + 600 + 600 + 1  # list pages, details, line items, summary
        # The state: the newest invoice's order key, the invoices that can still change,
        # and a fixed number of buckets for all the settled ones. No per-invoice digests.
        state = _resource_state(sb)
        assert set(state) == {"created_mark", "open", "settled_buckets"}
        assert len(state["open"]) == changeable
        assert len(state["settled_buckets"]) == settings.BUCKETS
        # Unchanged data: the list, the changeable invoices' details, the summary.
        again = sb.sync_ok(limit=100)
        assert again.requests == 6 + changeable + 1
        assert again.counts is not None and again.counts.changed == again.counts.new == 0
        # 1% changed, including a refund (invisible in the list-summary) and invoices that
        # were created already paid or voided (never open while we looked).
        ledger.random_changes(4)
        refunded = ledger.refund(ledger.find(PAID)[0].id)
        ledger.create_invoices(1, status=PAID)
        ledger.create_invoices(1, status="void")
        incremental = sb.sync_ok(limit=100)
        assert loaded_invoices(sb) == truth_invoices(sb)
        assert loaded_invoices(sb)[refunded.id][0] == "refunded"
        assert incremental.requests <= 0.15 * full.requests
        assert sb.query("SELECT * FROM billing.data_checks WHERE source = 'sequence'") == []


def test_a_refund_re_reads_only_its_bucket(tmp_path: Any) -> None:
    for sb in _mature_sandbox(tmp_path, 1000):
        sb.sync_ok(limit=100)
        sb.sync_ok(limit=100)
        before = sb.emulator.requests.copy()
        paid = sb.ledger.find(PAID)
        sb.ledger.refund(paid[0].id)
        sb.sync_ok(limit=100)
        assert loaded_invoices(sb) == truth_invoices(sb)
        changeable = len(sb.ledger.find(DRAFT, OPEN, UNCOLLECTIBLE))
        bucket = bucket_of(paid[0].id)
        neighbours = [
            inv
            for inv in sb.ledger.snapshot()
            if inv.status not in (DRAFT, OPEN, UNCOLLECTIBLE) and bucket_of(inv.id) == bucket
        ]
        assert 1 <= len(neighbours) < 10
        details = sb.emulator.requests["detail"] - before["detail"]
        assert details == changeable + len(neighbours)


def test_full_refresh_resets_the_state_and_reloads_everything(sequence: Any) -> None:
    sequence.sync_ok(limit=7)
    sequence.ledger.random_changes(5)
    sequence.sync_ok(limit=7)
    state = _resource_state(sequence)
    total = len(sequence.ledger.snapshot())
    before = sequence.emulator.requests.copy()
    result = sequence.sync(full_refresh=True, limit=7)
    assert result.ok and result.rows["invoices"] == total
    assert sequence.emulator.requests["detail"] - before["detail"] == total
    assert loaded_invoices(sequence) == truth_invoices(sequence)
    assert _resource_state(sequence) == state  # rebuilt to the same marks from scratch
