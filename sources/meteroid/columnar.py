"""A Meteroid page to its tables column by column (`sources/common/columnar.py`).

The same tables as `helpers.invoice_record` and `NestedTables.arrow` give, field for field;
a page with anything this path cannot convert exactly raises `NotColumnar`, and the sync
reads it record by record instead.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from sources.common.columnar import (
    Nested,
    NotColumnar,
    dates,
    decimals,
    integers,
    mapped,
    minor_units,
    nested_linkage,
    numbered,
    obj,
    required,
    root_linkage,
    text,
    utc_timestamps,
)
from sources.common.columns import decimal
from sources.common.money import currency_exponent
from sources.common.tables import NestedTables, TableBatch, arrow_type
from sources.meteroid import settings
from sources.meteroid.helpers import enum_value, optional_enum_value

EXACT = arrow_type(decimal())
TIMESTAMP_FIELDS = (
    "created_at",
    "updated_at",
    "finalized_at",
    "paid_at",
    "voided_at",
    "marked_as_uncollectible_at",
)
TEXT = pa.string()


def _texts(*names: str, **inner: pa.DataType) -> pa.StructType:
    return pa.struct([*((name, TEXT) for name in names), *inner.items()])


# The fields `invoice_tables` reads as text, and the customer's `snapshot_at`, for arrow's
# JSON parser (`json_page_records`): left to its inference, a date, a timestamp, or a memo
# that looks like one, would come out a timestamp, and the page would go the slow way.
PAGE_TEXT_FIELDS = _texts(
    "id",
    "currency",
    "invoice_number",
    "status",
    "payment_status",
    "invoice_type",
    "customer_id",
    "subscription_id",
    "invoice_date",
    "due_date",
    *TIMESTAMP_FIELDS,
    "memo",
    "reference",
    "purchase_order",
    customer_details=_texts(
        "name", "alias", "email", "vat_number", "snapshot_at", billing_address=_texts("country")
    ),
    line_items=pa.list_(
        _texts(
            "name",
            "description",
            "quantity",
            "unit_price",
            "tax_rate",
            "start_date",
            "end_date",
            sub_line_items=pa.list_(_texts("id", "name", "quantity", "unit_price")),
        )
    ),
    tax_breakdown=pa.list_(_texts("name", "tax_rate", "exemption_type")),
    transactions=pa.list_(
        _texts(
            "id",
            "currency",
            "payment_type",
            "status",
            "payment_method_id",
            "processed_at",
            "error",
            "provider_transaction_id",
            payment_method_info=_texts("payment_method_type", "card_brand", "card_last4"),
        )
    ),
    coupons=pa.list_(_texts("coupon_id", "name")),
)


def _enum(values: pa.Array, allowed: frozenset[str], field: str) -> pa.Array:
    return mapped(values, partial(enum_value, allowed=allowed, field=field), TEXT)


def _optional_enum(values: pa.Array, allowed: frozenset[str], field: str) -> pa.Array:
    return mapped(values, partial(optional_enum_value, allowed=allowed, field=field), TEXT)


def _defaulted_amount(parent: pa.Array, field: str) -> pa.Array:
    """An amount that counts as 0 when no record has it (`raw.get(field, 0)`); a null, or a
    page where only some records have it, is left to the record path."""
    if parent.type.get_field_index(field) < 0:
        return pa.array([0] * len(parent), pa.int64())
    return required(integers(parent, field))


def invoice_tables(invoices: pa.StructArray, tables: NestedTables) -> TableBatch:
    """The batch for Meteroid invoices read by `struct_rows` or `json_page_records`, or
    NotColumnar."""
    ids = required(text(invoices, "id"))
    if pc.any(pc.equal(ids, "")).as_py():
        raise NotColumnar
    currency = required(text(invoices, "currency"))
    exponent = mapped(currency, currency_exponent, pa.int64())

    def money(amounts: pa.Array, exponents: pa.Array = exponent) -> pa.Array:
        return minor_units(amounts, exponents, EXACT)

    root = root_linkage(len(invoices))
    transactions = Nested(invoices, "transactions")
    transaction_columns, received, refunded = _transactions(transactions, currency, exponent)
    lines = Nested(invoices, "line_items")
    line_columns = _lines(lines, ids, exponent, root)
    subs = Nested(lines.rows, "sub_line_items")
    customer = obj(invoices, "customer_details")
    taxes = Nested(invoices, "tax_breakdown")
    coupons = Nested(invoices, "coupons")
    root_columns = {
        "id": ids,
        "invoice_number": text(invoices, "invoice_number"),
        "status": _enum(text(invoices, "status"), settings.INVOICE_STATUSES, "status"),
        "payment_status": _enum(
            text(invoices, "payment_status"), settings.PAYMENT_STATUSES, "payment_status"
        ),
        "invoice_type": _optional_enum(
            text(invoices, "invoice_type"), settings.INVOICE_TYPES, "invoice_type"
        ),
        "customer_id": text(invoices, "customer_id"),
        "customer_name": text(customer, "name"),
        "customer_alias": text(customer, "alias"),
        "customer_email": text(customer, "email"),
        "customer_vat_number": text(customer, "vat_number"),
        "customer_country": text(obj(customer, "billing_address"), "country"),
        "subscription_id": text(invoices, "subscription_id"),
        "currency": currency,
        "invoice_date": dates(text(invoices, "invoice_date")),
        "due_date": dates(text(invoices, "due_date")),
        "net_terms": integers(invoices, "net_terms"),
        "subtotal": money(required(integers(invoices, "subtotal"))),
        "subtotal_recurring": money(_defaulted_amount(invoices, "subtotal_recurring")),
        "tax_amount": money(required(integers(invoices, "tax_amount"))),
        "total": money(required(integers(invoices, "total"))),
        "amount_due": money(required(integers(invoices, "amount_due"))),
        "applied_credits": money(_defaulted_amount(invoices, "applied_credits")),
        "amount_received": money(received),
        "amount_refunded": money(refunded),
        **{name: utc_timestamps(text(invoices, name)) for name in TIMESTAMP_FIELDS},
        "memo": text(invoices, "memo"),
        "reference": text(invoices, "reference"),
        "purchase_order": text(invoices, "purchase_order"),
        **root,
    }
    sub_exponent = subs.of_parent(lines.of_parent(exponent))
    return tables.assemble(
        {
            (): root_columns,
            ("line_items",): line_columns,
            ("line_items", "sub_line_items"): {
                "id": text(subs.rows, "id"),
                "parent_line_id": subs.of_parent(line_columns["line_id"]),
                "name": text(subs.rows, "name"),
                "quantity": decimals(text(subs.rows, "quantity"), EXACT),
                "unit_price": decimals(text(subs.rows, "unit_price"), EXACT),
                "total": money(required(integers(subs.rows, "total")), sub_exponent),
                **nested_linkage(subs, line_columns),
            },
            ("tax_breakdown",): {
                "name": text(taxes.rows, "name"),
                "tax_rate": decimals(text(taxes.rows, "tax_rate"), EXACT),
                "taxable_amount": money(
                    required(integers(taxes.rows, "taxable_amount")), taxes.of_parent(exponent)
                ),
                "tax_amount": money(
                    required(integers(taxes.rows, "tax_amount")), taxes.of_parent(exponent)
                ),
                "exemption_type": _optional_enum(
                    text(taxes.rows, "exemption_type"), settings.EXEMPTION_TYPES, "exemption_type"
                ),
                **nested_linkage(taxes, root),
            },
            ("transactions",): {**transaction_columns, **nested_linkage(transactions, root)},
            ("coupons",): {
                "coupon_id": text(coupons.rows, "coupon_id"),
                "name": text(coupons.rows, "name"),
                "total": money(
                    required(integers(coupons.rows, "total")), coupons.of_parent(exponent)
                ),
                **nested_linkage(coupons, root),
            },
        }
    )


def _lines(
    lines: Nested, ids: pa.Array, exponent: pa.Array, root: dict[str, pa.Array]
) -> dict[str, pa.Array]:
    number = pc.add(lines.index, 1)
    rows = lines.rows
    return {
        "line_id": numbered(lines.of_parent(ids), ":", number),
        "line_number": number,
        "name": text(rows, "name"),
        "description": text(rows, "description"),
        "quantity": decimals(text(rows, "quantity"), EXACT),
        "unit_price": decimals(text(rows, "unit_price"), EXACT),
        "amount_total": minor_units(
            required(integers(rows, "amount_total")), lines.of_parent(exponent), EXACT
        ),
        "tax_rate": decimals(text(rows, "tax_rate"), EXACT),
        "start_date": dates(text(rows, "start_date")),
        "end_date": dates(text(rows, "end_date")),
        **nested_linkage(lines, root),
    }


def _transactions(
    transactions: Nested, currency: pa.Array, exponent: pa.Array
) -> tuple[dict[str, pa.Array], pa.Array, pa.Array]:
    """The transactions' columns, and per invoice the minor units received and refunded."""
    rows = transactions.rows
    own_currency = text(rows, "currency")
    invoice_currency = transactions.of_parent(currency)
    # `raw.get("currency") or currency`: a missing or empty currency is the invoice's
    txn_currency = pc.if_else(
        pc.fill_null(pc.equal(own_currency, ""), True), invoice_currency, own_currency
    )
    if not pc.all(pc.equal(txn_currency, invoice_currency), min_count=0).as_py():
        raise NotColumnar  # the record path names the transaction in another currency
    amount = required(integers(rows, "amount"))
    payment_type = _enum(text(rows, "payment_type"), settings.PAYMENT_TYPES, "payment_type")
    status = _enum(text(rows, "status"), settings.TRANSACTION_STATUSES, "transaction status")
    method = obj(rows, "payment_method_info")
    money_in = pa.array(sorted(settings.MONEY_IN_STATUSES))
    received = pc.and_(pc.equal(payment_type, "PAYMENT"), pc.is_in(status, value_set=money_in))
    refunded = pc.and_(pc.equal(payment_type, "REFUND"), pc.equal(status, "SETTLED"))
    columns = {
        "id": text(rows, "id"),
        "payment_type": payment_type,
        "status": status,
        "amount": minor_units(amount, transactions.of_parent(exponent), EXACT),
        "currency": txn_currency,
        "payment_method_id": text(rows, "payment_method_id"),
        "payment_method_type": _optional_enum(
            text(method, "payment_method_type"),
            settings.PAYMENT_METHOD_TYPES,
            "payment_method_type",
        ),
        "card_brand": text(method, "card_brand"),
        "card_last4": text(method, "card_last4"),
        "processed_at": utc_timestamps(text(rows, "processed_at")),
        "error": text(rows, "error"),
        "provider_transaction_id": text(rows, "provider_transaction_id"),
    }
    zero = pa.scalar(0, pa.int64())
    return (
        columns,
        transactions.sum_per_parent(pc.if_else(received, amount, zero)),
        transactions.sum_per_parent(pc.if_else(refunded, amount, zero)),
    )
