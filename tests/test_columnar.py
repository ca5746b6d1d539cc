"""The columnar path gives the record path's tables exactly, or hands the page to it.

`sources/meteroid/columnar.py` converts a whole page with arrow; `helpers.invoice_record`
and `NestedTables.arrow` are the reference. The property below generates raw Meteroid pages
with odd values (floats for amounts, dates in other formats, unknown enums, nulls, missing
fields, wrong types) and holds `pages_batch` to the record path's answer: the same tables,
or the same error.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sources.common.columnar import (
    Nested,
    NotColumnar,
    json_page_records,
    minor_units,
    pages_batch,
    struct_rows,
    utc_timestamps,
)
from sources.common.errors import SyncError
from sources.common.tables import TableBatch, joined
from sources.meteroid import TABLES, VENDOR, page_records
from sources.meteroid.columnar import PAGE_TEXT_FIELDS, TIMESTAMP_FIELDS, invoice_tables
from sources.meteroid.emulator import API_KEY
from sources.meteroid.helpers import invoice_record

LINKAGE = ("_dlt_id", "_dlt_parent_id", "_dlt_root_id")


def by_records(pages: list[list[Any]]) -> TableBatch:
    return joined([TABLES.arrow(invoice_record(raw) for raw in rows) for rows in pages])


def body_records(body: bytes) -> pa.StructArray | list[Any]:
    """What the source hands `pages_batch` for a page's body (`page_records`): arrow's
    reading, or, where arrow can't read it, the decoded records."""
    response = requests.Response()
    response.status_code, response._content = 200, body
    return page_records(response)


def page_body(rows: list[Any]) -> bytes:
    return json.dumps({"data": rows, "pagination_meta": {"page": 0}}).encode()


def by_pages_batch(
    pages: list[list[Any]], record_pages: list[int] | None = None, from_bodies: bool = False
) -> TableBatch:
    """`pages_batch` as the source calls it, given decoded pages or (`from_bodies`) their
    JSON; `record_pages` counts the pages read by records."""

    def records(rows: list[Any]) -> TableBatch:
        if record_pages is not None:
            record_pages.append(len(rows))
        return TABLES.arrow(invoice_record(raw) for raw in rows)

    return pages_batch(
        ((body_records(page_body(rows)) if from_bodies else rows, rows) for rows in pages),
        columnar=lambda invoices: invoice_tables(invoices, TABLES),
        records=records,
        reread=lambda rows: rows,
    )


def parent_positions(batch: TableBatch) -> list[list[tuple[int | None, int | None]]]:
    """For each table, each row's parent row and root row by position, not by id."""
    where = [{row_id: n for n, row_id in enumerate(t["_dlt_id"].to_pylist())} for t in batch.tables]
    root_of = where[0]
    result = []
    for layout, table in zip(TABLES.tables, batch.tables, strict=True):
        if not layout.path:
            result.append([(None, None)] * table.num_rows)
            continue
        parent = next(where[i] for i, t in enumerate(TABLES.tables) if t.path == layout.path[:-1])
        result.append(
            [
                (parent[p], root_of[r])
                for p, r in zip(
                    table["_dlt_parent_id"].to_pylist(),
                    table["_dlt_root_id"].to_pylist(),
                    strict=True,
                )
            ]
        )
    return result


def assert_same_tables(got: TableBatch, expected: TableBatch) -> None:
    for layout, mine, theirs in zip(TABLES.tables, got.tables, expected.tables, strict=True):
        assert mine.schema.equals(theirs.schema), layout.name
        keep = [name for name in mine.column_names if name not in LINKAGE]
        assert mine.select(keep).equals(theirs.select(keep)), (
            layout.name,
            mine.select(keep).to_pylist()[:2],
            theirs.select(keep).to_pylist()[:2],
        )
        assert len(set(mine["_dlt_id"].to_pylist())) == mine.num_rows
    assert parent_positions(got) == parent_positions(expected)


# -- the emulator's pages never need the record path -----------------------------------------


def emulator_pages(sb: Any, pages: int, per_page: int) -> list[list[Any]]:
    return [
        requests.get(
            sb.server.url + "/api/v1/invoices",
            params={"page": page, "per_page": per_page, "order_by": "invoice_date.asc"},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10,
        ).json()["data"]
        for page in range(pages)
    ]


@pytest.mark.parametrize("enum_case", ["screaming", "pascal"])
def test_emulator_pages_are_read_column_by_column_exactly(make_sandbox, enum_case: str) -> None:
    sb = make_sandbox(VENDOR, invoices=90, enum_case=enum_case)
    pages = emulator_pages(sb, pages=5, per_page=25)  # the last one empty
    assert [len(rows) for rows in pages] == [25, 25, 25, 15, 0]
    record_pages: list[int] = []
    got = by_pages_batch(pages, record_pages)
    assert record_pages == []  # every page went the columnar way
    assert_same_tables(got, by_records(pages))
    bodies = [body_records(page_body(rows)) for rows in pages]
    assert all(isinstance(records, pa.StructArray) for records in bodies)  # read by arrow
    assert_same_tables(by_pages_batch(pages, record_pages, from_bodies=True), got)
    assert record_pages == []
    without_transactions = [[{**raw, "transactions": []} for raw in rows] for rows in pages]
    assert_same_tables(
        by_pages_batch(without_transactions, record_pages), by_records(without_transactions)
    )
    assert record_pages == []
    invoices = {row["id"]: row for row in got.tables[0].to_pylist()}
    assert len(invoices) == 90
    currencies = {row["currency"] for row in invoices.values()}
    assert {"JPY", "KWD"} <= currencies  # exponents 0 and 3 as well as 2
    ledger = {inv.id: inv for inv in sb.ledger.snapshot()}
    for invoice_id, row in invoices.items():
        places = {"JPY": 0, "KWD": 3}.get(row["currency"], 2)
        assert row["total"] == Decimal(ledger[invoice_id].total).scaleb(-places)


# -- the building blocks ---------------------------------------------------------------------


def test_minor_units_use_each_rows_exponent() -> None:
    amounts = pa.array([110358, -5, None, 7, 2**62], pa.int64())
    exponents = pa.array([2, 0, 2, 3, 4], pa.int64())
    assert minor_units(amounts, exponents, pa.decimal128(38, 9)).to_pylist() == [
        Decimal("1103.58"),
        Decimal(-5),
        None,
        Decimal("0.007"),
        Decimal(2**62).scaleb(-4),
    ]


def test_timestamps_without_an_offset_are_utc_and_offsets_are_applied() -> None:
    naive = utc_timestamps(pa.array(["2026-05-14T18:30:03", None]))
    zoned = utc_timestamps(pa.array(["2026-05-14T18:30:03+02:00", "2026-05-14T18:30:03Z"]))
    assert [t.isoformat() if t else None for t in naive.to_pylist()] == [
        "2026-05-14T18:30:03+00:00",
        None,
    ]
    assert [t.isoformat() for t in zoned.to_pylist()] == [
        "2026-05-14T16:30:03+00:00",
        "2026-05-14T18:30:03+00:00",
    ]


def test_nested_rows_know_their_parent_and_list_index() -> None:
    parents = struct_rows([{"l": [{"a": 1}, {"a": 2}]}, {"l": None}, {"l": []}, {"l": [{"a": 3}]}])
    nested = Nested(parents, "l")
    assert nested.parent.to_pylist() == [0, 0, 3]
    assert nested.index.to_pylist() == [0, 1, 0]
    assert nested.sum_per_parent(pa.array([1, 2, 3])).to_pylist() == [3, 0, 0, 3]


@pytest.mark.parametrize(
    "rows",
    [
        [{"l": [None]}],  # an element that is not an object
        [{"l": "ab"}],  # text where a list belongs
        [{"l": {"a": 1}}],  # an object where a list belongs
    ],
)
def test_a_list_that_is_not_a_list_of_objects_is_refused(rows: list[Any]) -> None:
    with pytest.raises(NotColumnar):
        Nested(struct_rows(rows), "l")


def test_a_float_amount_is_refused_not_truncated() -> None:
    """pyarrow would take 1.5 as 1 in a declared int64 column; inference keeps it a float."""
    with pytest.raises(NotColumnar):
        from sources.common.columnar import integers

        integers(struct_rows([{"total": 100}, {"total": 1.5}]), "total")


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"total": NaN}], "pagination_meta": {}}',  # not JSON: orjson refuses it
        b'{"data": [{"id": "a"}], "pagination_meta": {}}{"data": []}',  # two bodies
        b'{"data": [{"id": "a"}]}',  # no pagination_meta
        b'{"data": [{"id": "a"}], "pagination_meta": 3}',
        b'{"data": [{"id": "a"}, null], "pagination_meta": {}}',  # a record that is null
        b'{"data": null, "pagination_meta": {}}',
        b'{"data": [{"id": 5}], "pagination_meta": {}}',  # a number where text is read
        b'{"data": [{"id": "a", "id": "b"}], "pagination_meta": {}}',
        b'[{"id": "a"}]',
        b"\xff",
    ],
)
def test_a_body_arrow_cannot_read_as_a_page_is_left_to_the_json_decoder(body: bytes) -> None:
    with pytest.raises(NotColumnar):
        json_page_records(body, "data", PAGE_TEXT_FIELDS, objects=("pagination_meta",))


def test_a_body_read_by_arrow_keeps_dates_and_look_alikes_as_text() -> None:
    body = b'{"data": [{"id": "a", "invoice_date": "2026-05-14", "memo": "2026-05-14",'
    body += b' "net_terms": 30, "line_items": [{"start_date": "2026-05-14T10:00:00"}]}],'
    body += b' "pagination_meta": {"total_pages": 1}}'
    records = json_page_records(body, "data", PAGE_TEXT_FIELDS, objects=("pagination_meta",))
    assert records.to_pylist()[0]["invoice_date"] == "2026-05-14"
    assert records.to_pylist()[0]["memo"] == "2026-05-14"
    assert records.to_pylist()[0]["line_items"][0]["start_date"] == "2026-05-14T10:00:00"
    assert records.type.field("net_terms").type == pa.int64()  # the rest inferred


def test_pages_whose_unread_field_looks_like_a_timestamp_on_one_only_go_together(
    make_sandbox: Any,
) -> None:
    """A field the source does not read (`snapshot_at`) would be a timestamp to arrow on one
    page and text on another (with a fraction of a second), and the two could not be put
    together; it is declared text, so a batch of both is converted column by column."""
    sb = make_sandbox(VENDOR, invoices=2)
    pages = emulator_pages(sb, pages=2, per_page=1)
    moments = ["2026-05-14T10:00:00", "2026-05-14T10:00:00.25+02:00"]
    for rows, when in zip(pages, moments, strict=True):
        rows[0]["customer_details"] = {**rows[0]["customer_details"], "snapshot_at": when}
    for rows in pages:
        customer = body_records(page_body(rows)).type.field("customer_details").type
        assert customer.field("snapshot_at").type == pa.string()
    record_pages: list[int] = []
    got = by_pages_batch(pages, record_pages, from_bodies=True)
    assert record_pages == []
    assert_same_tables(got, by_records(pages))


# -- the property ----------------------------------------------------------------------------

MISSING = object()  # a key left out of the record

# For each kind of field: values the emulator could send, and odd ones a real API might.
KINDS: dict[str, tuple[list[Any], list[Any]]] = {
    "id": (["inv_1", "inv_2", "inv_3"], ["", None, 5, MISSING]),
    "text": (["Tyrell LLC", "Café", None], ["", 5, True, MISSING]),
    "amount": ([0, 1, 110358, -2500, 2**62], [1.0, 1.5, True, "100", None, 2**64, MISSING]),
    "decimal": (
        ["352.7", "0.4367735", "0", "-1.5", "322", "0.19"],
        ["1e3", "+5", " 5", "1.", ".5", "1_000", "NaN", "1e-10", "0.1234567891", 5, 1.5, None]
        + ["1" * 31, "11e29", "-" + "9" * 30 + ".5"],  # arrow's cast overflows these silently
    ),
    "timestamp": (
        ["2026-05-14T18:30:03", "2026-05-17T18:13:00.250", None],
        [
            "2026-05-14T18:30:03Z",
            "2026-05-14T18:30:03+02:00",
            "2026-05-14T18:30:03z",
            "2026-05-14 18:30:03",
            "2026-05-14",
            "2026-05-14T18",
            "2026-05-14T18:30:03.1234567",
            " 2026-05-14T18:30:03",
            "2026-05-14T24:00:00",
            "yesterday",
            5,
            "0000-01-01T00:00:00",  # arrow reads year 0; Python does not
            "9999-12-31T23:00:00-02:00",
            "0001-01-01T00:00:00+01:00",
        ],
    ),
    "date": (
        ["2026-05-14", "2026-06-13", None],
        ["2026-05-14T10:00:00", "20260514", "2026-5-14", "2026-02-30", "2026-W20-4", "", 20260514]
        + ["0000-01-01"],
    ),
    "currency": (["EUR", "USD", "JPY", "KWD"], ["eur", "CLF", "XXX", "", None, 978, MISSING]),
    "txn_currency": ([None], ["", "eur", "GBP", 978, MISSING]),  # valid: the invoice's, below
    "net_terms": ([30, None], [30.0, 30.7, "30", 2**63, MISSING]),
    "status": (["DRAFT", "FINALIZED", "VOID", "Finalized"], ["finalized", "OPEN", None, 5]),
    "payment_status": (
        ["UNPAID", "PAID", "PARTIALLY_PAID", "PartiallyPaid"],
        ["Partially_paid", None],
    ),
    "invoice_type": (["RECURRING", "ONE_OFF", "OneOff", None], ["ONEOFF", 1]),
    "exemption_type": (["REVERSE_CHARGE", "TaxExempt", None], ["EXEMPT"]),
    "payment_type": (["PAYMENT", "REFUND", "Payment"], ["payment", "CHARGE", None]),
    "txn_status": (["SETTLED", "FAILED", "REFUNDED", "Pending"], ["settled", "LOST", None]),
    "payment_method_info": (
        [None, {"payment_method_type": "CARD", "card_brand": "visa", "card_last4": "4242"}],
        [{}, {"payment_method_type": "Wallet"}, {"payment_method_type": "PIGEON"}, "card", []],
    ),
    "customer": (
        [
            None,
            {"name": "Tyrell LLC", "email": "a@b.example", "billing_address": {"country": "DE"}},
        ],
        [{}, {"name": "X", "billing_address": None}, {"name": 5}, "cus_1", MISSING],
    ),
}
LIST_ODD = [None, MISSING, [None], "ab", {}, [{}], "", 0, False]
SHAPES: dict[str, dict[str, str]] = {
    "invoice": {
        "id": "id",
        "invoice_number": "text",
        "status": "status",
        "payment_status": "payment_status",
        "invoice_type": "invoice_type",
        "customer_id": "text",
        "customer_details": "customer",
        "currency": "currency",
        "invoice_date": "date",
        "due_date": "date",
        "net_terms": "net_terms",
        "subtotal": "amount",
        "subtotal_recurring": "amount",
        "tax_amount": "amount",
        "total": "amount",
        "amount_due": "amount",
        "applied_credits": "amount",
        "line_items": "[line]",
        "tax_breakdown": "[tax]",
        "transactions": "[transaction]",
        "coupons": "[coupon]",
        **dict.fromkeys(TIMESTAMP_FIELDS, "timestamp"),
        "memo": "text",
        "reference": "text",
        "purchase_order": "text",
    },
    "line": {
        "name": "text",
        "description": "text",
        "quantity": "decimal",
        "unit_price": "decimal",
        "amount_total": "amount",
        "tax_rate": "decimal",
        "start_date": "date",
        "end_date": "date",
        "sub_line_items": "[sub_line]",
    },
    "sub_line": {
        "id": "text",
        "name": "text",
        "quantity": "decimal",
        "unit_price": "decimal",
        "total": "amount",
    },
    "tax": {
        "name": "text",
        "tax_rate": "decimal",
        "taxable_amount": "amount",
        "tax_amount": "amount",
        "exemption_type": "exemption_type",
    },
    "transaction": {
        "id": "text",
        "amount": "amount",
        "currency": "txn_currency",
        "payment_type": "payment_type",
        "status": "txn_status",
        "error": "text",
        "payment_method_id": "text",
        "payment_method_info": "payment_method_info",
        "processed_at": "timestamp",
        "provider_transaction_id": "text",
    },
    "coupon": {"coupon_id": "text", "name": "text", "total": "amount"},
}


@st.composite
def meteroid_pages(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Pages of invoices the emulator could send, then up to three odd values put in."""
    records: list[tuple[dict[str, Any], str]] = []

    def record(shape: str) -> dict[str, Any]:
        made: dict[str, Any] = {}
        for key, kind in SHAPES[shape].items():
            if kind.startswith("["):
                count = draw(st.integers(0, 3))
                made[key] = [record(kind[1:-1]) for _ in range(count)]
            else:
                made[key] = draw(st.sampled_from(KINDS[kind][0]))
        records.append((made, shape))
        return made

    pages = [
        [record("invoice") for _ in range(draw(st.integers(1, 4)))]
        for _ in range(draw(st.integers(1, 3)))
    ]
    for invoice in (invoice for page in pages for invoice in page):
        for transaction in invoice["transactions"]:
            transaction["currency"] = draw(st.sampled_from([None, "", invoice["currency"]]))
    for _ in range(draw(st.integers(0, 3))):
        target, shape = draw(st.sampled_from(records))
        key = draw(st.sampled_from(sorted(SHAPES[shape])))
        kind = SHAPES[shape][key]
        value = draw(st.sampled_from(LIST_ODD if kind.startswith("[") else KINDS[kind][1]))
        if value is MISSING:
            target.pop(key, None)
        else:
            target[key] = value
    return pages


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pages=meteroid_pages())
@pytest.mark.parametrize("from_bodies", [False, True], ids=["decoded", "bodies"])
def test_pages_batch_answers_as_the_record_path_does(
    pages: list[list[Any]], from_bodies: bool
) -> None:
    try:
        expected = by_records(pages)
    except SyncError as err:
        with pytest.raises(SyncError) as raised:
            by_pages_batch(pages, from_bodies=from_bodies)
        assert str(raised.value) == str(err)
        return
    assert_same_tables(by_pages_batch(pages, from_bodies=from_bodies), expected)
