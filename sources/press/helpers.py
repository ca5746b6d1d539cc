"""Turning Press's billing summary into the records we load: exact money, checked enums."""

from __future__ import annotations

import hashlib
import json
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import requests

from sources.common.errors import SyncError
from sources.common.fields import (
    FieldError,
    decimal_value,
    decode_json,
    enum,
    iso_date,
    record_errors,
)
from sources.common.money import currency_exponent
from sources.press import settings

SOURCE = "press"
_TOLERANCE = Decimal(settings.FLOAT_TOLERANCE)


def parse_summary(response: requests.Response) -> list[Any]:
    """The invoices of a `get_summary` response; JSON floats decoded as Decimal, never float.

    Frappe wraps a method's return value as `{"message": [...]}`; a bare list is tolerated.
    """
    body = decode_json(SOURCE, response)
    invoices = body.get("message") if isinstance(body, dict) else body
    if not isinstance(invoices, list):
        raise SyncError(
            SOURCE,
            f"malformed response from {settings.SUMMARY_PATH}: expected "
            f'{{"message": [...]}}, got {response.text.strip()[:120]!r}',
            "the API answered in an unexpected format; check SOURCES__PRESS__BASE_URL",
        )
    return invoices


def money(value: Any, currency: str, field: str) -> Decimal:
    """A JSON number in major units, to the currency's minor unit.

    Press stores Currency fields rounded to the currency's precision and serialises them as
    floats, so 12.340000000000001 is 12.34 seen through a binary float; a value further than
    FLOAT_TOLERANCE from a minor unit is refused rather than rounded.
    """
    amount = decimal_value(value, field, required=True)
    assert amount is not None
    step = Decimal(1).scaleb(-currency_exponent(currency))
    exact = amount.quantize(step, rounding=ROUND_HALF_EVEN)
    if abs(exact - amount) > _TOLERANCE:
        raise FieldError(f"{field}: {value} {currency} is finer than the currency's minor unit")
    return exact


def _item(raw: Any, number: int, invoice: str, currency: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise FieldError(f"item {number} is not an object: {str(raw)[:80]}")
    parent = raw.get("parent")
    if parent is not None and parent != invoice:
        raise FieldError(f"item {number} belongs to {parent!r}")
    return {
        # Press items carry no id of their own: the position in the served list stands in.
        "line_id": f"{invoice}:{number}",
        "line_number": number,
        "document_name": raw.get("name"),
        "document_type": raw.get("type"),
        "plan": raw.get("plan"),
        # Quantity and rate are not money: exact as sent, not rounded.
        "quantity": decimal_value(raw.get("quantity"), "items.quantity"),
        "rate": decimal_value(raw.get("rate"), "items.rate"),
        "amount": money(raw.get("amount"), currency, "items.amount"),
    }


def invoice_record(raw: Any, team: str) -> dict[str, Any]:
    """The loaded form of one invoice; raises BadRecordError naming the invoice."""
    name = raw.get("name") if isinstance(raw, dict) else None
    with record_errors(SOURCE, name):
        return _invoice_record(raw, team)


def _invoice_record(raw: Any, team: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise FieldError(f"an invoice without a name: {str(raw)[:120]}")
    name = raw["name"]
    currency = raw.get("currency")
    if not isinstance(currency, str) or not currency:
        raise FieldError(f"currency is missing: {currency!r}")
    items = raw.get("items")
    if not isinstance(items, list):
        raise FieldError(f"items is not a list: {str(items)[:80]}")
    lines = [_item(item, n, name, currency) for n, item in enumerate(items, start=1)]
    payment_mode = raw.get("payment_mode")
    period_end = iso_date(raw.get("period_end"), "period_end")
    if period_end is None:
        raise FieldError("period_end is missing")
    return {
        "name": name,
        "team": team,
        "status": enum(raw.get("status"), settings.INVOICE_STATUSES, "status"),
        # "" (no payment yet) and a missing value both mean none.
        "payment_mode": enum(payment_mode, settings.PAYMENT_MODES, "payment_mode")
        if payment_mode not in (None, "")
        else None,
        "type": enum(raw.get("type"), settings.INVOICE_TYPES, "type"),
        "currency": currency,
        "period_end": period_end,
        "amount_paid": money(raw.get("amount_paid"), currency, "amount_paid"),
        # Derived: the response has no total; see the README for what this misses.
        "items_total": sum((line["amount"] for line in lines), Decimal(0)),
        "items": lines,
    }


def digest(record: dict[str, Any]) -> str:
    """A short content digest of a loaded record: equal digests, equal rows in the warehouse."""
    text = json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _server_message(raw: Any) -> str | None:
    """The first text of Frappe's `_server_messages`: a JSON list of JSON-encoded objects."""
    try:
        messages = json.loads(raw) if isinstance(raw, str) else raw
        first = messages[0]
        first = json.loads(first) if isinstance(first, str) else first
        return str(first.get("message") if isinstance(first, dict) else first)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None


def error_message(body: Any) -> str | None:
    """Frappe's error body: {"exc_type": "AuthenticationError", "_server_messages": "[...]"}."""
    if not isinstance(body, dict):
        return None
    kind = body.get("exc_type")
    text = _server_message(body.get("_server_messages")) or body.get("message")
    if kind and text:
        return f"{kind}: {text}"
    return kind or (str(text) if text else None)
