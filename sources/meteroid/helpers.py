"""Turning one Meteroid invoice into the record we load: exact money, UTC times, canonical enums."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sources.common.dates import DateParseError, parse_iso_date, parse_timestamp_utc
from sources.common.errors import BadRecordError
from sources.common.money import MoneyError, minor_to_major, parse_decimal
from sources.meteroid import settings

SOURCE = "meteroid"
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class _Bad(ValueError):
    """A field-level problem, wrapped into BadRecordError with the invoice id."""


def canonical_enum(value: Any, allowed: frozenset[str], field: str) -> str:
    """PascalCase ("PartiallyPaid") or SCREAMING_SNAKE ("PARTIALLY_PAID") to SCREAMING_SNAKE."""
    if not isinstance(value, str) or not value:
        raise _Bad(f"{field} is missing or not text: {value!r}")
    text = value if "_" in value or value.isupper() else _CAMEL_BOUNDARY.sub("_", value)
    result = text.upper()
    if result not in allowed:
        raise _Bad(f"unknown {field} {value!r} (known: {', '.join(sorted(allowed))})")
    return result


def _optional_enum(value: Any, allowed: frozenset[str], field: str) -> str | None:
    return None if value is None else canonical_enum(value, allowed, field)


def _money(value: Any, currency: str, field: str) -> Decimal:
    try:
        return minor_to_major(value, currency)
    except MoneyError as err:
        raise _Bad(f"{field}: {err}") from None


def _decimal(value: Any, field: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_decimal(value)
    except MoneyError as err:
        raise _Bad(f"{field}: {err}") from None


def _date(value: Any, field: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_iso_date(value)
    except DateParseError as err:
        raise _Bad(f"{field}: {err}") from None


def _timestamp(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp_utc(value)
    except DateParseError as err:
        raise _Bad(f"{field}: {err}") from None


def _line(raw: dict[str, Any], number: int, invoice_id: str, currency: str) -> dict[str, Any]:
    line_id = f"{invoice_id}:{number}"
    return {
        "line_id": line_id,
        "line_number": number,
        "name": raw.get("name"),
        "description": raw.get("description"),
        "quantity": _decimal(raw.get("quantity"), "line_items.quantity"),
        "unit_price": _decimal(raw.get("unit_price"), "line_items.unit_price"),
        "amount_total": _money(raw.get("amount_total"), currency, "line_items.amount_total"),
        "tax_rate": _decimal(raw.get("tax_rate"), "line_items.tax_rate"),
        "start_date": _date(raw.get("start_date"), "line_items.start_date"),
        "end_date": _date(raw.get("end_date"), "line_items.end_date"),
        "sub_line_items": [
            {
                "id": sub.get("id"),
                "parent_line_id": line_id,
                "name": sub.get("name"),
                "quantity": _decimal(sub.get("quantity"), "sub_line_items.quantity"),
                "unit_price": _decimal(sub.get("unit_price"), "sub_line_items.unit_price"),
                "total": _money(sub.get("total"), currency, "sub_line_items.total"),
            }
            for sub in raw.get("sub_line_items") or []
        ],
    }


def _transaction(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    txn_currency = raw.get("currency") or currency
    method = raw.get("payment_method_info") or {}
    return {
        "id": raw.get("id"),
        "payment_type": canonical_enum(
            raw.get("payment_type"), settings.PAYMENT_TYPES, "payment_type"
        ),
        "status": canonical_enum(
            raw.get("status"), settings.TRANSACTION_STATUSES, "transaction status"
        ),
        "amount": _money(raw.get("amount"), txn_currency, "transactions.amount"),
        "currency": txn_currency,
        "payment_method_id": raw.get("payment_method_id"),
        "payment_method_type": _optional_enum(
            method.get("payment_method_type"), settings.PAYMENT_METHOD_TYPES, "payment_method_type"
        ),
        "card_brand": method.get("card_brand"),
        "card_last4": method.get("card_last4"),
        "processed_at": _timestamp(raw.get("processed_at"), "transactions.processed_at"),
        "error": raw.get("error"),
        "provider_transaction_id": raw.get("provider_transaction_id"),
    }


def _money_in(transactions: list[dict[str, Any]], currency: str) -> tuple[Decimal, Decimal]:
    """(received, refunded) in the invoice's currency, from its transactions."""
    received = refunded = Decimal(0)
    for txn in transactions:
        if txn["currency"] != currency:
            raise _Bad(f"transaction {txn['id']} is in {txn['currency']}, invoice in {currency}")
        if txn["payment_type"] == "PAYMENT" and txn["status"] in settings.MONEY_IN_STATUSES:
            received += txn["amount"]
        elif txn["payment_type"] == "REFUND" and txn["status"] == "SETTLED":
            refunded += txn["amount"]
    return received, refunded


def invoice_record(raw: dict[str, Any]) -> dict[str, Any]:
    """The loaded form of one invoice; raises BadRecordError naming the invoice."""
    invoice_id = raw.get("id") if isinstance(raw, dict) else None
    try:
        return _invoice_record(raw)
    except (_Bad, KeyError, TypeError, AttributeError) as err:
        raise BadRecordError(SOURCE, invoice_id, str(err)) from None


def _invoice_record(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise _Bad(f"an invoice without an id: {str(raw)[:120]}")
    invoice_id = raw["id"]
    currency = raw.get("currency")
    if not isinstance(currency, str):
        raise _Bad(f"currency is missing: {currency!r}")
    customer = raw.get("customer_details") or {}
    transactions = [_transaction(t, currency) for t in raw.get("transactions") or []]
    received, refunded = _money_in(transactions, currency)
    return {
        "id": invoice_id,
        "invoice_number": raw.get("invoice_number"),
        "status": canonical_enum(raw.get("status"), settings.INVOICE_STATUSES, "status"),
        "payment_status": canonical_enum(
            raw.get("payment_status"), settings.PAYMENT_STATUSES, "payment_status"
        ),
        "invoice_type": _optional_enum(
            raw.get("invoice_type"), settings.INVOICE_TYPES, "invoice_type"
        ),
        "customer_id": raw.get("customer_id"),
        "customer_name": customer.get("name"),
        "customer_alias": customer.get("alias"),
        "customer_email": customer.get("email"),
        "customer_vat_number": customer.get("vat_number"),
        "customer_country": (customer.get("billing_address") or {}).get("country"),
        "subscription_id": raw.get("subscription_id"),
        "currency": currency,
        "invoice_date": _date(raw.get("invoice_date"), "invoice_date"),
        "due_date": _date(raw.get("due_date"), "due_date"),
        "net_terms": raw.get("net_terms"),
        "subtotal": _money(raw.get("subtotal"), currency, "subtotal"),
        "subtotal_recurring": _money(
            raw.get("subtotal_recurring", 0), currency, "subtotal_recurring"
        ),
        "tax_amount": _money(raw.get("tax_amount"), currency, "tax_amount"),
        "total": _money(raw.get("total"), currency, "total"),
        "amount_due": _money(raw.get("amount_due"), currency, "amount_due"),
        "applied_credits": _money(raw.get("applied_credits", 0), currency, "applied_credits"),
        # Derived: Meteroid sends no amount paid; see the README.
        "amount_received": received,
        "amount_refunded": refunded,
        "created_at": _timestamp(raw.get("created_at"), "created_at"),
        "updated_at": _timestamp(raw.get("updated_at"), "updated_at"),
        "finalized_at": _timestamp(raw.get("finalized_at"), "finalized_at"),
        "paid_at": _timestamp(raw.get("paid_at"), "paid_at"),
        "voided_at": _timestamp(raw.get("voided_at"), "voided_at"),
        "marked_as_uncollectible_at": _timestamp(
            raw.get("marked_as_uncollectible_at"), "marked_as_uncollectible_at"
        ),
        "memo": raw.get("memo"),
        "reference": raw.get("reference"),
        "purchase_order": raw.get("purchase_order"),
        "line_items": [
            _line(line, n, invoice_id, currency)
            for n, line in enumerate(raw.get("line_items") or [], start=1)
        ],
        "tax_breakdown": [
            {
                "name": tax.get("name"),
                "tax_rate": _decimal(tax.get("tax_rate"), "tax_breakdown.tax_rate"),
                "taxable_amount": _money(tax.get("taxable_amount"), currency, "taxable_amount"),
                "tax_amount": _money(tax.get("tax_amount"), currency, "tax_breakdown.tax_amount"),
                "exemption_type": _optional_enum(
                    tax.get("exemption_type"), settings.EXEMPTION_TYPES, "exemption_type"
                ),
            }
            for tax in raw.get("tax_breakdown") or []
        ],
        "transactions": transactions,
        "coupons": [
            {
                "coupon_id": coupon.get("coupon_id"),
                "name": coupon.get("name"),
                "total": _money(coupon.get("total"), currency, "coupons.total"),
            }
            for coupon in raw.get("coupons") or []
        ],
    }


def error_message(body: Any) -> str | None:
    """Meteroid's error body: {"code": "UNAUTHORIZED", "message": "..."}."""
    return (
        f"{body['code']}: {body['message']}" if isinstance(body, dict) and "code" in body else None
    )

