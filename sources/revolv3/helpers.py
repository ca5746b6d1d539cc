"""Turning Revolv3's detailed list rows (with their attempts and line items) into the records
we load.

Exact money (JSON numbers decoded as Decimal, never float), billing dates in every format the
vendor's examples show and nothing else, canonical statuses, clear errors naming the invoice.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sources.common.errors import BadRecordError
from sources.common.fields import FieldError, decimal_value, enum, utc_timestamp, whole_number
from sources.common.money import MoneyError, currency_exponent
from sources.revolv3 import settings

SOURCE = "revolv3"

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
# (pattern, how its groups become year, month, day). Order does not matter: they are disjoint.
_DATE_PATTERNS = (
    # "12-15-2024": MM-DD-YYYY (the seed documents month first, so "03-04-2024" is March 4).
    (re.compile(r"(\d{2})-(\d{2})-(\d{4})"), lambda m, d, y: (int(y), int(m), int(d))),
    # "9/17/2024": M/D/YYYY.
    (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})"), lambda m, d, y: (int(y), int(m), int(d))),
    # "22-May-26", "08-Aug-25": DD-Mon-YY, two-digit years are 20YY.
    (
        re.compile(r"(\d{2})-([A-Za-z]{3})-(\d{2})"),
        lambda d, mon, y: (2000 + int(y), _MONTHS.get(mon.lower(), 0), int(d)),
    ),
    # "2024-12-15": ISO, tolerated because it cannot be misread.
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), lambda y, m, d: (int(y), int(m), int(d))),
)


def parse_billing_date(value: Any) -> date:
    """A Revolv3 billing date in one of its documented formats; anything else is refused."""
    if not isinstance(value, str):
        raise FieldError(f"billingDate is missing or not text: {value!r}")
    text = value.strip()
    for pattern, parts in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            try:
                return date(*parts(*match.groups()))
            except ValueError:
                raise FieldError(f"billingDate {value!r} is not a real date") from None
    raise FieldError(
        f"billingDate {value!r} fits none of the documented formats "
        "(MM-DD-YYYY, M/D/YYYY, DD-Mon-YY, YYYY-MM-DD)"
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _attempt(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("invoiceAttemptId") is None:
        raise FieldError(f"an invoice attempt without an id: {str(raw)[:120]}")
    status = enum(raw.get("invoiceAttemptStatus"), settings.ATTEMPT_STATUSES, "attempt status")
    return {
        "invoice_attempt_id": whole_number(raw["invoiceAttemptId"], "invoiceAttemptId"),
        "amount": decimal_value(raw.get("amount"), "invoiceAttempts.amount", required=True),
        "invoice_attempt_status": status,
        "kind": "refund" if status in settings.REFUND_ATTEMPT_STATUSES else "payment",
        "invoice_attempt_date": utc_timestamp(raw.get("invoiceAttemptDate"), "invoiceAttemptDate"),
        "payment_processor": _text(raw.get("paymentProcessor")),
        "processor_transaction_id": _text(raw.get("processorTransactionId")),
        "response_code": _text(raw.get("responseCode")),
        "response_message": _text(raw.get("responseMessage")),
        "payment_method": _text(raw.get("paymentMethod")),
    }


def _money_in(attempts: list[dict[str, Any]]) -> tuple[Decimal, Decimal]:
    """(received, refunded) from the invoice's attempts."""
    received = sum(
        (
            a["amount"]
            for a in attempts
            if a["invoice_attempt_status"] == settings.ATTEMPT_PAYMENT_IN
        ),
        Decimal(0),
    )
    refunded = sum(
        (a["amount"] for a in attempts if a["invoice_attempt_status"] == settings.ATTEMPT_REFUND),
        Decimal(0),
    )
    return received, refunded


def invoice_id_of(raw: Any) -> int:
    """The list row's integer invoiceId, or BadRecordError."""
    value = raw.get("invoiceId") if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecordError(
            SOURCE, value, f"an invoice without an integer invoiceId: {raw!r:.120}"
        )
    return value


def invoice_record(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    """The loaded form of one v1 row (its `invoiceAttempts` filled in from the detail when the
    list sent none); `currency` applies where the row sends none. BadRecordError names it."""
    invoice_id = raw.get("invoiceId") if isinstance(raw, dict) else None
    try:
        return _invoice_record(raw, currency)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise BadRecordError(SOURCE, invoice_id, str(err)) from None


def _currency(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise FieldError(f"currency is not text: {value!r}")
    try:
        currency_exponent(value)
    except MoneyError as err:
        raise FieldError(f"currency: {err}") from None
    return value.upper()


def _payment_method_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError(f"paymentMethod is not an object: {value!r:.120}")
    return _text(value.get("paymentMethodId"))


def _list_of(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f"{field} is not a list: {value!r:.120}")
    return value


def _invoice_record(raw: dict[str, Any], default_currency: str) -> dict[str, Any]:
    attempts = [_attempt(a) for a in _list_of(raw.get("invoiceAttempts"), "invoiceAttempts")]
    received, refunded = _money_in(attempts)
    currency = _currency(raw.get("currency"), default_currency)
    lines = line_items(_list_of(raw.get("invoiceLineItems"), "invoiceLineItems"), currency)
    return {
        "invoice_id": raw["invoiceId"],
        "parent_invoice_id": whole_number(raw.get("parentInvoiceId"), "parentInvoiceId"),
        "merchant_invoice_ref_id": _text(raw.get("merchantInvoiceRefId")),
        "customer_id": _text(raw.get("customerId")),
        "merchant_customer_ref_id": _text(raw.get("merchantCustomerRefId")),
        "customer_first_name": raw.get("customerFirstName"),
        "customer_last_name": raw.get("customerLastName"),
        "merchant_legal_name": raw.get("merchantLegalName"),
        "bin_number": _text(raw.get("binNumber")),
        "last4_digit": _text(raw.get("last4Digit")),
        "invoice_status": enum(raw.get("invoiceStatus"), settings.INVOICE_STATUSES, "status"),
        "invoice_status_enum": whole_number(raw.get("invoiceStatusEnum"), "invoiceStatusEnum"),
        "currency": currency,
        "subtotal": decimal_value(raw.get("subtotal"), "subtotal", required=True),
        "tax": decimal_value(raw.get("tax"), "tax", required=True),
        "total": decimal_value(raw.get("total"), "total", required=True),
        "billing_date": parse_billing_date(raw.get("billingDate")),
        "billing_date_text": raw.get("billingDate"),
        "subscription_id": whole_number(raw.get("subscriptionId"), "subscriptionId"),
        "installment_id": whole_number(raw.get("installmentId"), "installmentId"),
        "merchant_subscription_ref_id": _text(raw.get("merchantSubscriptionRefId")),
        "network_transaction_id": _text(raw.get("networkTransactionId")),
        "eligibility_fail_reason": _text(raw.get("eligibilityFailReason")),
        "payment_method_id": _payment_method_id(raw.get("paymentMethod")),
        "last_update_date": utc_timestamp(raw.get("lastUpdateDate"), "lastUpdateDate"),
        # Derived from the attempts: Revolv3 sends no amount paid or due.
        "amount_received": received,
        "amount_refunded": refunded,
        "last_attempt_status": attempts[-1]["invoice_attempt_status"] if attempts else None,
        "last_attempt_at": max(
            (a["invoice_attempt_date"] for a in attempts if a["invoice_attempt_date"]), default=None
        ),
        "invoice_attempts": attempts,
        "invoice_line_items": lines,
    }


def _line_item(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("invoiceLineItemId") is None:
        raise FieldError(f"a line item without an id: {str(raw)[:120]}")
    value_type = raw.get("valueType")
    if value_type is not None:
        value_type = enum(value_type, settings.LINE_VALUE_TYPES, "line item valueType")
    return {
        "invoice_line_item_id": whole_number(raw["invoiceLineItemId"], "invoiceLineItemId"),
        "name": _text(raw.get("name")),
        "description": _text(raw.get("description")),
        "value": decimal_value(raw.get("value"), "invoiceLineItems.value", required=True),
        "value_type": value_type,
    }


def line_items(raw_items: list[Any], currency: str) -> list[dict[str, Any]]:
    """The invoice's line items, each with `amount`: what it adds to the subtotal.

    A charge (`Standard`, `PriceOverride`, or no type, as the vendor's example sends) adds its
    value; a `Discount` or `FinalDiscount` takes it off; a `DiscountPercentage` takes that
    percentage of the invoice's charges off, rounded half up to the currency's minor unit (the
    vendor's example: 19% of 1.09 is 0.21).
    """
    lines = [_line_item(item) for item in raw_items]
    charges = sum(
        (line["value"] for line in lines if line["value_type"] not in settings.LINE_DISCOUNTS),
        Decimal(0),
    )
    minor = Decimal(1).scaleb(-currency_exponent(currency))
    for line in lines:
        kind, value = line["value_type"], line["value"]
        if kind == settings.LINE_PERCENTAGE:
            line["amount"] = -(charges * value / 100).quantize(minor, ROUND_HALF_UP)
        else:
            line["amount"] = -value if kind in settings.LINE_DISCOUNTS else value
    return lines


def error_message(body: Any) -> str | None:
    """Revolv3's error body: {"error": "Too Many Requests", "message": "..."}."""
    if not isinstance(body, dict):
        return None
    if "error" in body:
        return f"{body['error']}: {body.get('message')}" if body.get("message") else body["error"]
    return body.get("title") or body.get("message")
