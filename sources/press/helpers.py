"""Turning Press's billing summary into the records we load: exact money, checked enums."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sources.common.dates import DateParseError, parse_iso_date
from sources.common.errors import BadRecordError, SyncError
from sources.common.money import MoneyError, currency_exponent, parse_decimal
from sources.press import settings

SOURCE = "press"
_TOLERANCE = Decimal(settings.FLOAT_TOLERANCE)


class _Bad(ValueError):
    """A field-level problem, wrapped into BadRecordError with the invoice name."""


def parse_summary(text: str) -> list[Any]:
    """The invoices of a `get_summary` body; JSON floats decoded as Decimal, never float.

    Frappe wraps a method's return value as `{"message": [...]}`; a bare list is tolerated.
    """
    try:
        body = json.loads(text, parse_float=Decimal)
    except ValueError:
        body = None
    invoices = body.get("message") if isinstance(body, dict) else body
    if not isinstance(invoices, list):
        raise SyncError(
            SOURCE,
            f"malformed response from {settings.SUMMARY_PATH}: expected "
            f'{{"message": [...]}}, got {text.strip()[:120]!r}',
            "the API answered in an unexpected format; check SOURCES__PRESS__BASE_URL",
        )
    return invoices


def money(value: Any, currency: str, field: str) -> Decimal:
    """A JSON number in major units, to the currency's minor unit.

    Press stores Currency fields rounded to the currency's precision and serialises them as
    floats, so 12.340000000000001 is 12.34 seen through a binary float; a value further than
    FLOAT_TOLERANCE from a minor unit is refused rather than rounded.
    """
    if isinstance(value, float):
        raise _Bad(f"{field}: {value!r} was decoded as a binary float (lossy path)")
    try:
        amount = parse_decimal(value)
        step = Decimal(1).scaleb(-currency_exponent(currency))
    except MoneyError as err:
        raise _Bad(f"{field}: {err}") from None
    exact = amount.quantize(step, rounding=ROUND_HALF_EVEN)
    if abs(exact - amount) > _TOLERANCE:
        raise _Bad(f"{field}: {value} {currency} is finer than the currency's minor unit")
    return exact


def _number(value: Any, field: str) -> Decimal | None:
    """Quantity and rate: exact as sent (not money, so not rounded)."""
    if value is None:
        return None
    if isinstance(value, float):
        raise _Bad(f"{field}: {value!r} was decoded as a binary float (lossy path)")
    try:
        return parse_decimal(value)
    except MoneyError as err:
        raise _Bad(f"{field}: {err}") from None


def _enum(value: Any, allowed: frozenset[str], field: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        known = ", ".join(repr(v) for v in sorted(allowed))
        raise _Bad(f"unknown {field} {value!r} (known: {known})")
    return value


def _date(value: Any, field: str) -> date:
    try:
        return parse_iso_date(value)
    except DateParseError as err:
        raise _Bad(f"{field}: {err}") from None


def _item(raw: Any, number: int, invoice: str, currency: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _Bad(f"item {number} is not an object: {str(raw)[:80]}")
    parent = raw.get("parent")
    if parent is not None and parent != invoice:
        raise _Bad(f"item {number} belongs to {parent!r}")
    return {
        # Press items carry no id of their own: the position in the served list stands in.
        "line_id": f"{invoice}:{number}",
        "line_number": number,
        "document_name": raw.get("name"),
        "document_type": raw.get("type"),
        "plan": raw.get("plan"),
        "quantity": _number(raw.get("quantity"), "items.quantity"),
        "rate": _number(raw.get("rate"), "items.rate"),
        "amount": money(raw.get("amount"), currency, "items.amount"),
    }


def invoice_record(raw: Any, team: str) -> dict[str, Any]:
    """The loaded form of one invoice; raises BadRecordError naming the invoice."""
    name = raw.get("name") if isinstance(raw, dict) else None
    try:
        return _invoice_record(raw, team)
    except (_Bad, KeyError, TypeError, AttributeError) as err:
        raise BadRecordError(SOURCE, name, str(err)) from None


def _invoice_record(raw: Any, team: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise _Bad(f"an invoice without a name: {str(raw)[:120]}")
    name = raw["name"]
    currency = raw.get("currency")
    if not isinstance(currency, str) or not currency:
        raise _Bad(f"currency is missing: {currency!r}")
    items = raw.get("items")
    if not isinstance(items, list):
        raise _Bad(f"items is not a list: {str(items)[:80]}")
    lines = [_item(item, n, name, currency) for n, item in enumerate(items, start=1)]
    return {
        "name": name,
        "team": team,
        "status": _enum(raw.get("status"), settings.INVOICE_STATUSES, "status"),
        "payment_mode": _enum(raw.get("payment_mode") or "", settings.PAYMENT_MODES, "payment_mode")
        or None,
        "type": _enum(raw.get("type"), settings.INVOICE_TYPES, "type"),
        "currency": currency,
        "period_end": _date(raw.get("period_end"), "period_end"),
        "amount_paid": money(raw.get("amount_paid"), currency, "amount_paid"),
        # Derived: the response has no total; see the README for what this misses.
        "items_total": sum((line["amount"] for line in lines), Decimal(0)),
        "items": lines,
    }


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
