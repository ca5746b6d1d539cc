"""Turning Revolv3 list rows and invoice attempts into the records we load.

Exact money (JSON numbers decoded as Decimal, never float), billing dates in every format the
vendor's examples show and nothing else, canonical statuses, clear errors naming the invoice.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from sources.common.errors import BadRecordError
from sources.common.fields import FieldError, decimal_value, enum, utc_timestamp, whole_number
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


def invoice_record(raw: dict[str, Any], detail: dict[str, Any], currency: str) -> dict[str, Any]:
    """The loaded form of one invoice (list row + its detail); BadRecordError names it."""
    invoice_id = raw.get("invoiceId") if isinstance(raw, dict) else None
    try:
        return _invoice_record(raw, detail, currency)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise BadRecordError(SOURCE, invoice_id, str(err)) from None


def _invoice_record(raw: dict[str, Any], detail: dict[str, Any], currency: str) -> dict[str, Any]:
    attempts_raw = detail.get("invoiceAttempts")
    if attempts_raw is not None and not isinstance(attempts_raw, list):
        raise FieldError(f"invoiceAttempts is not a list: {attempts_raw!r:.120}")
    attempts = [_attempt(a) for a in attempts_raw or []]
    received, refunded = _money_in(attempts)
    return {
        "invoice_id": raw["invoiceId"],
        "merchant_invoice_ref_id": _text(raw.get("merchantInvoiceRefId")),
        "customer_id": _text(raw.get("customerId")),
        "merchant_customer_ref_id": _text(raw.get("merchantCustomerRefId")),
        "customer_first_name": raw.get("customerFirstName"),
        "customer_last_name": raw.get("customerLastName"),
        "merchant_legal_name": raw.get("merchantLegalName"),
        "bin_number": _text(raw.get("binNumber")),
        "last4_digit": _text(raw.get("last4Digit")),
        "invoice_status": enum(raw.get("invoiceStatus"), settings.INVOICE_STATUSES, "status"),
        "currency": currency,
        "subtotal": decimal_value(raw.get("subtotal"), "subtotal", required=True),
        "tax": decimal_value(raw.get("tax"), "tax", required=True),
        "total": decimal_value(raw.get("total"), "total", required=True),
        "billing_date": parse_billing_date(raw.get("billingDate")),
        "billing_date_text": raw.get("billingDate"),
        # Derived from the detail's attempts: Revolv3 sends no amount paid or due.
        "amount_received": received,
        "amount_refunded": refunded,
        "last_attempt_status": attempts[-1]["invoice_attempt_status"] if attempts else None,
        "last_attempt_at": max(
            (a["invoice_attempt_date"] for a in attempts if a["invoice_attempt_date"]), default=None
        ),
        "invoice_attempts": attempts,
    }


def error_message(body: Any) -> str | None:
    """Revolv3's error body: {"error": "Too Many Requests", "message": "..."}."""
    if not isinstance(body, dict):
        return None
    if "error" in body:
        return f"{body['error']}: {body.get('message')}" if body.get("message") else body["error"]
    return body.get("title") or body.get("message")
