"""Turning one Exsited invoice into the record we load: exact money from strings, UTC dates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sources.common.fields import FieldError, decimal_value, enum, record_errors, utc_timestamp
from sources.exsited import settings

SOURCE = "exsited"


def _enum(value: Any, allowed: frozenset[str], field: str) -> str:
    """Exsited's enums are SCREAMING_SNAKE_CASE; any casing and stray spaces are tolerated."""
    return enum(value.strip() if isinstance(value, str) else value, allowed, field, screaming=True)


def _money(value: Any, field: str, required: bool = True) -> Decimal | None:
    """Exsited sends amounts as decimal strings ("150.00"), "" for none; integers tolerated."""
    return decimal_value(None if value == "" else value, field, required=required)


def _timestamp(value: Any, field: str) -> datetime | None:
    return utc_timestamp(None if value == "" else value, field)


def _date(value: Any, field: str) -> date | None:
    """`YYYY-MM-DDTHH:MM:SSZ`: the calendar date in UTC; a bare `YYYY-MM-DD` is tolerated."""
    if isinstance(value, str) and value and "T" not in value:
        value = f"{value}T00:00:00Z"
    try:
        moment = _timestamp(value, field)
    except FieldError:
        raise FieldError(f"{field}: not a date: {value!r}") from None
    return moment.date() if moment else None


def _currency(value: Any) -> tuple[str, str | None]:
    """(code, uuid) from the currency object `{uuid, name, link}`; a bare code is tolerated."""
    if isinstance(value, dict):
        code, uuid = value.get("name"), value.get("uuid")
    else:
        code, uuid = value, None
    if not isinstance(code, str) or len(code.strip()) != 3:
        raise FieldError(f"currency is missing or not an ISO code: {value!r}")
    return code.strip().upper(), uuid


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise FieldError(f"price_tax_inclusive is not a boolean: {value!r}")


def _line(raw: dict[str, Any], number: int, invoice_id: str) -> dict[str, Any]:
    tax = raw.get("tax") or {}
    accounting = raw.get("accounting_code") or {}
    where = f"lines[{number}]"
    return {
        "line_id": raw.get("uuid") or f"{invoice_id}:{number}",
        "line_number": number,
        "item_id": raw.get("item_id"),
        "item_uuid": raw.get("item_uuid"),
        "item_name": raw.get("item_name"),
        "quantity": _money(raw.get("item_order_quantity"), f"{where}.item_order_quantity", False),
        "uom": raw.get("item_uom"),
        "subtotal": _money(raw.get("subtotal"), f"{where}.subtotal"),
        "total": _money(raw.get("total"), f"{where}.total"),
        "tax_amount": _money(tax.get("amount"), f"{where}.tax.amount", False),
        "tax_code": tax.get("code"),
        "tax_rate_percent": _money(tax.get("rate"), f"{where}.tax.rate", False),
        "tax_uuid": tax.get("uuid"),
        "sales_revenue_code": accounting.get("sales_revenue"),
        "charging_start_date": _date(
            raw.get("charging_start_date"), f"{where}.charging_start_date"
        ),
        "charging_end_date": _date(raw.get("charging_end_date"), f"{where}.charging_end_date"),
        "version": _text(raw.get("version")),
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def invoice_record(raw: Any) -> dict[str, Any]:
    """The loaded form of one invoice; raises BadRecordError naming the invoice."""
    with record_errors(SOURCE, raw.get("id") if isinstance(raw, dict) else None):
        return _invoice_record(raw)


def _invoice_record(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise FieldError(f"an invoice without an id: {str(raw)[:120]}")
    invoice_id = raw["id"]
    currency, currency_uuid = _currency(raw.get("currency"))
    last_payment = raw.get("last_payment") or {}
    kpis = raw.get("kpis") or {}
    # The list and detail documents carry both `tax` and `tax_total`; the others only `tax`.
    tax = raw.get("tax_total") if raw.get("tax_total") not in (None, "") else raw.get("tax")
    return {
        "id": invoice_id,
        "uuid": raw.get("uuid"),
        "status": _enum(raw.get("status"), settings.INVOICE_STATUSES, "status"),
        "payment_status": _enum(
            raw.get("payment_status"), settings.PAYMENT_STATUSES, "payment_status"
        ),
        "type": raw.get("type"),
        "account_id": raw.get("account_id"),
        "account_name": raw.get("account_name"),
        "order_id": raw.get("order_id"),
        "customer_purchase_order_id": raw.get("customer_purchase_order_id"),
        "currency": currency,
        "currency_uuid": currency_uuid,
        "issue_date": _date(raw.get("issue_date"), "issue_date"),
        "due_date": _date(raw.get("due_date"), "due_date"),
        "billing_start_date": _date(raw.get("billing_start_date"), "billing_start_date"),
        "billing_end_date": _date(raw.get("billing_end_date"), "billing_end_date"),
        "subtotal": _money(raw.get("subtotal"), "subtotal"),
        "tax": _money(tax, "tax"),
        "total": _money(raw.get("total"), "total"),
        "paid": _money(raw.get("paid"), "paid"),
        "due": _money(raw.get("due"), "due"),
        "discount_amount": _money(raw.get("discount_amount"), "discount_amount", False),
        "shipping_cost": _money(raw.get("shipping_cost"), "shipping_cost", False),
        "price_tax_inclusive": _bool(raw.get("price_tax_inclusive")),
        "invoice_note": raw.get("invoice_note"),
        "last_payment_id": last_payment.get("id"),
        "last_payment_amount": _money(last_payment.get("amount"), "last_payment.amount", False),
        "last_payment_created_at": _timestamp(
            last_payment.get("created_at"), "last_payment.created_at"
        ),
        "kpi_outstanding": _money(kpis.get("outstanding"), "kpis.outstanding", False),
        "kpi_overdue": _money(kpis.get("overdue"), "kpis.overdue", False),
        "kpi_payment_applied": _money(kpis.get("payment_applied"), "kpis.payment_applied", False),
        "kpi_credit_applied": _money(kpis.get("credit_applied"), "kpis.credit_applied", False),
        "kpi_credit_issued": _money(kpis.get("credit_issued"), "kpis.credit_issued", False),
        "kpi_last_payment_date": _timestamp(
            kpis.get("last_payment_date"), "kpis.last_payment_date"
        ),
        "kpi_voided_on": _timestamp(kpis.get("voided_on"), "kpis.voided_on"),
        "created_by": raw.get("created_by"),
        "created_on": _timestamp(raw.get("created_on"), "created_on"),
        "last_updated_by": raw.get("last_updated_by"),
        "last_updated_on": _timestamp(raw.get("last_updated_on"), "last_updated_on"),
        "version": _text(raw.get("version")),
        "lines": [
            _line(line, n, invoice_id) for n, line in enumerate(raw.get("lines") or [], start=1)
        ],
        "custom_attributes": [
            {"name": attr.get("name"), "value": _text(attr.get("value"))}
            for attr in raw.get("custom_attributes") or []
        ],
    }


def error_message(body: Any) -> str | None:
    """Exsited's error body: {"errors": [{"message": "..."}, ...]}."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return None
    messages = [str(e.get("message")) for e in body["errors"] if isinstance(e, dict)]
    return "; ".join(messages) or None
