"""Turning one Meteroid invoice into the record we load: exact money, UTC times, canonical enums."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sources.common.fields import (
    FieldError,
    enum,
    iso_date,
    minor_money,
    optional_enum,
    record_errors,
    utc_timestamp,
    whole_number,
)
from sources.common.fields import decimal_value as _decimal
from sources.meteroid import settings

SOURCE = "meteroid"


def enum_value(value: Any, allowed: frozenset[str], field: str) -> str:
    """Meteroid enums in either casing (seed PascalCase or today's SCREAMING_SNAKE_CASE)."""
    return enum(value, allowed, field, screaming=True)


def optional_enum_value(value: Any, allowed: frozenset[str], field: str) -> str | None:
    return optional_enum(value, allowed, field, screaming=True)


def _line(raw: dict[str, Any], number: int, invoice_id: str, currency: str) -> dict[str, Any]:
    line_id = f"{invoice_id}:{number}"
    return {
        "line_id": line_id,
        "line_number": number,
        "name": raw.get("name"),
        "description": raw.get("description"),
        "quantity": _decimal(raw.get("quantity"), "line_items.quantity"),
        "unit_price": _decimal(raw.get("unit_price"), "line_items.unit_price"),
        "amount_total": minor_money(raw.get("amount_total"), currency, "line_items.amount_total"),
        "tax_rate": _decimal(raw.get("tax_rate"), "line_items.tax_rate"),
        "start_date": iso_date(raw.get("start_date"), "line_items.start_date"),
        "end_date": iso_date(raw.get("end_date"), "line_items.end_date"),
        "sub_line_items": [
            {
                "id": sub.get("id"),
                "parent_line_id": line_id,
                "name": sub.get("name"),
                "quantity": _decimal(sub.get("quantity"), "sub_line_items.quantity"),
                "unit_price": _decimal(sub.get("unit_price"), "sub_line_items.unit_price"),
                "total": minor_money(sub.get("total"), currency, "sub_line_items.total"),
            }
            for sub in raw.get("sub_line_items") or []
        ],
    }


def _transaction(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    txn_currency = raw.get("currency") or currency
    method = raw.get("payment_method_info") or {}
    return {
        "id": raw.get("id"),
        "payment_type": enum_value(raw.get("payment_type"), settings.PAYMENT_TYPES, "payment_type"),
        "status": enum_value(
            raw.get("status"), settings.TRANSACTION_STATUSES, "transaction status"
        ),
        "amount": minor_money(raw.get("amount"), txn_currency, "transactions.amount"),
        "currency": txn_currency,
        "payment_method_id": raw.get("payment_method_id"),
        "payment_method_type": optional_enum_value(
            method.get("payment_method_type"), settings.PAYMENT_METHOD_TYPES, "payment_method_type"
        ),
        "card_brand": method.get("card_brand"),
        "card_last4": method.get("card_last4"),
        "processed_at": utc_timestamp(raw.get("processed_at"), "transactions.processed_at"),
        "error": raw.get("error"),
        "provider_transaction_id": raw.get("provider_transaction_id"),
    }


def _money_in(transactions: list[dict[str, Any]], currency: str) -> tuple[Decimal, Decimal]:
    """(received, refunded) in the invoice's currency, from its transactions."""
    received = refunded = Decimal(0)
    for txn in transactions:
        if txn["currency"] != currency:
            raise FieldError(
                f"transaction {txn['id']} is in {txn['currency']}, invoice in {currency}"
            )
        if txn["payment_type"] == "PAYMENT" and txn["status"] in settings.MONEY_IN_STATUSES:
            received += txn["amount"]
        elif txn["payment_type"] == "REFUND" and txn["status"] == "SETTLED":
            refunded += txn["amount"]
    return received, refunded


def invoice_record(raw: dict[str, Any]) -> dict[str, Any]:
    """The loaded form of one invoice; raises BadRecordError naming the invoice."""
    with record_errors(SOURCE, raw.get("id") if isinstance(raw, dict) else None):
        return _invoice_record(raw)


def _invoice_record(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise FieldError(f"an invoice without an id: {str(raw)[:120]}")
    invoice_id = raw["id"]
    currency = raw.get("currency")
    if not isinstance(currency, str):
        raise FieldError(f"currency is missing: {currency!r}")
    customer = raw.get("customer_details") or {}
    transactions = [_transaction(t, currency) for t in raw.get("transactions") or []]
    received, refunded = _money_in(transactions, currency)
    return {
        "id": invoice_id,
        "invoice_number": raw.get("invoice_number"),
        "status": enum_value(raw.get("status"), settings.INVOICE_STATUSES, "status"),
        "payment_status": enum_value(
            raw.get("payment_status"), settings.PAYMENT_STATUSES, "payment_status"
        ),
        "invoice_type": optional_enum_value(
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
        "invoice_date": iso_date(raw.get("invoice_date"), "invoice_date"),
        "due_date": iso_date(raw.get("due_date"), "due_date"),
        "net_terms": whole_number(raw.get("net_terms"), "net_terms"),
        "subtotal": minor_money(raw.get("subtotal"), currency, "subtotal"),
        "subtotal_recurring": minor_money(
            raw.get("subtotal_recurring", 0), currency, "subtotal_recurring"
        ),
        "tax_amount": minor_money(raw.get("tax_amount"), currency, "tax_amount"),
        "total": minor_money(raw.get("total"), currency, "total"),
        "amount_due": minor_money(raw.get("amount_due"), currency, "amount_due"),
        "applied_credits": minor_money(raw.get("applied_credits", 0), currency, "applied_credits"),
        # Derived: Meteroid sends no amount paid; see the README.
        "amount_received": received,
        "amount_refunded": refunded,
        "created_at": utc_timestamp(raw.get("created_at"), "created_at"),
        "updated_at": utc_timestamp(raw.get("updated_at"), "updated_at"),
        "finalized_at": utc_timestamp(raw.get("finalized_at"), "finalized_at"),
        "paid_at": utc_timestamp(raw.get("paid_at"), "paid_at"),
        "voided_at": utc_timestamp(raw.get("voided_at"), "voided_at"),
        "marked_as_uncollectible_at": utc_timestamp(
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
                "taxable_amount": minor_money(
                    tax.get("taxable_amount"), currency, "taxable_amount"
                ),
                "tax_amount": minor_money(
                    tax.get("tax_amount"), currency, "tax_breakdown.tax_amount"
                ),
                "exemption_type": optional_enum_value(
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
                "total": minor_money(coupon.get("total"), currency, "coupons.total"),
            }
            for coupon in raw.get("coupons") or []
        ],
    }


def error_message(body: Any) -> str | None:
    """Meteroid's error body: {"code": "UNAUTHORIZED", "message": "..."}."""
    return (
        f"{body['code']}: {body['message']}" if isinstance(body, dict) and "code" in body else None
    )
