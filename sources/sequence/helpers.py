"""Turning Sequence's responses into the records we load: exact money, UTC times, known enums."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from requests import Response

from sources.common.errors import SyncError
from sources.common.fields import (
    FieldError,
    decode_json,
    enum,
    iso_date,
    major_money,
    record_errors,
    utc_timestamp,
    whole_number,
)
from sources.common.fields import decimal_value as _decimal
from sources.common.money import parse_decimal
from sources.sequence import settings

SOURCE = "sequence"


def decode_body(response: Response) -> Any:
    """The JSON body with every JSON number that has a fraction as Decimal, never float.

    The list's `grossTotal` is a decimal string in the spec but a JSON number in the seed.
    """
    return decode_json(SOURCE, response)


def fingerprint(body: Any) -> str:
    """A short stable digest of a decoded body, to tell whether it changed since last sync."""
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def bucket_of(invoice_id: str) -> int:
    """The watch bucket of a settled invoice (stable across syncs and processes)."""
    return int(hashlib.sha256(invoice_id.encode()).hexdigest()[:8], 16) % settings.BUCKETS


def entry_hash(item: Any) -> int:
    """A 52-bit digest of a whole list entry (XOR-ed into its bucket; fits a JSON number)."""
    return int(fingerprint(item)[:13], 16)


def is_changeable(status: str, payment_status: str) -> bool:
    """Can the invoice change without its list entry showing it? (settings.CHANGEABLE_...)"""
    if status == "VOIDED":
        return False
    return (
        status in settings.CHANGEABLE_STATUSES
        or payment_status in settings.CHANGEABLE_PAYMENT_STATUSES
    )


def _enum(value: Any, allowed: frozenset[str], field: str) -> str:
    """A documented enum value in any casing, returned upper-case."""
    return enum(value, allowed, field, screaming=True)


def _optional_enum(value: Any, allowed: frozenset[str], field: str) -> str | None:
    return None if value is None else _enum(value, allowed, field)


def _optional_money(value: Any, currency: str, field: str) -> Decimal | None:
    return None if value is None else major_money(value, currency, field)


def _currency(value: Any) -> str:
    if not isinstance(value, str) or value not in settings.CURRENCIES:
        raise FieldError(f"unknown currency {value!r}")
    return value


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(f"{key} is not a list: {str(value)[:80]!r}")
    return value


def check_summary(item: Any) -> dict[str, Any]:
    """A list entry, checked: id, the two statuses, an exact `grossTotal` and `createdAt`."""
    item_id = item.get("id") if isinstance(item, dict) else None
    with record_errors(SOURCE, item_id):
        if not item_id:
            raise FieldError(f"a list entry without an id: {str(item)[:120]}")
        currency = _currency(item.get("currency"))
        created = utc_timestamp(item.get("createdAt"), "createdAt")
        return {
            "id": item_id,
            "status": _enum(item.get("status"), settings.INVOICE_STATUSES, "status"),
            "payment_status": _enum(
                item.get("paymentStatus"), settings.PAYMENT_STATUSES, "paymentStatus"
            ),
            "currency": currency,
            "gross_total": major_money(item.get("grossTotal"), currency, "grossTotal"),
            # The list's order key (creation time, then id): what is newer than a sync's mark.
            "created_key": [created.isoformat() if created else "", item_id],
        }
    raise AssertionError("unreachable")  # record_errors re-raises


def invoice_record(
    summary: dict[str, Any], detail: Any, lines: list[Any], fingerprint_: str
) -> dict[str, Any]:
    """The loaded form of one invoice (its detail and line items); BadRecordError names it."""
    with record_errors(SOURCE, summary["id"]):
        return _invoice_record(summary, detail, lines, fingerprint_)
    raise AssertionError("unreachable")


def _line(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    period = raw.get("servicePeriod") or {}
    return {
        "line_id": raw["id"],
        "line_index": whole_number(raw.get("index"), "lineItems.index"),
        "group_id": raw.get("groupId"),
        "title": raw.get("title"),
        "description": raw.get("description"),
        "quantity": _decimal(raw.get("quantity"), "lineItems.quantity"),
        "rate": _decimal(raw.get("rate"), "lineItems.rate"),
        "rate_display": raw.get("rateDisplay"),
        "tax_rate": _decimal(raw.get("taxRate"), "lineItems.taxRate"),
        "net_total": major_money(raw.get("netTotal"), currency, "lineItems.netTotal"),
        "total_tax": major_money(raw.get("totalTax"), currency, "lineItems.totalTax"),
        "gross_total": major_money(raw.get("grossTotal"), currency, "lineItems.grossTotal"),
        "period_start": iso_date(
            period.get("startDate") or raw.get("servicePeriodStart"), "servicePeriod.startDate"
        ),
        "period_end": iso_date(
            period.get("endDate") or raw.get("servicePeriodEnd"), "servicePeriod.endDate"
        ),
    }


def _allocation(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "payment_id": raw["paymentId"],
        "amount": major_money(raw.get("amount"), currency, "paymentAllocations.amount"),
        "origin": _enum(raw.get("origin"), settings.PAYMENT_ORIGINS, "paymentAllocations.origin"),
        "paid_at": utc_timestamp(raw.get("paidAt"), "paymentAllocations.paidAt"),
        "allocated_at": utc_timestamp(raw.get("allocatedAt"), "paymentAllocations.allocatedAt"),
    }


def _credit_note(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "credit_note_id": raw["id"],
        "credit_note_number": raw.get("creditNoteNumber"),
        "net_total": major_money(raw.get("netTotal"), currency, "appliedCreditNotes.netTotal"),
        "total_tax": major_money(raw.get("totalTax"), currency, "appliedCreditNotes.totalTax"),
        "gross_total": major_money(
            raw.get("grossTotal"), currency, "appliedCreditNotes.grossTotal"
        ),
    }


def _credit_grant(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "credit_grant_id": raw.get("creditGrantId"),
        "credit_grant_name": raw.get("creditGrantName"),
        "amount": major_money(raw.get("amount"), currency, "appliedCreditGrants.amount"),
        "tax_amount": _optional_money(
            raw.get("taxAmount"), currency, "appliedCreditGrants.taxAmount"
        ),
        "status": _enum(
            raw.get("status"), settings.CREDIT_GRANT_STATUSES, "appliedCreditGrants.status"
        ),
    }


def _invoice_record(
    summary: dict[str, Any], detail: Any, lines: list[Any], fingerprint_: str
) -> dict[str, Any]:
    if not isinstance(detail, dict) or detail.get("id") != summary["id"]:
        raise FieldError(f"the detail is not this invoice: {str(detail)[:120]}")
    currency = _currency(detail.get("currency"))
    allocations = [_allocation(a, currency) for a in _list(detail, "paymentAllocations")]
    credit_notes = [_credit_note(c, currency) for c in _list(detail, "appliedCreditNotes")]
    grants = [_credit_grant(g, currency) for g in _list(detail, "appliedCreditGrants")]
    period = detail.get("billingPeriod") or {}
    return {
        "id": detail["id"],
        "invoice_number": detail.get("invoiceNumber"),
        "status": _enum(detail.get("status"), settings.INVOICE_STATUSES, "status"),
        "payment_status": _enum(
            detail.get("paymentStatus"), settings.PAYMENT_STATUSES, "paymentStatus"
        ),
        "customer_id": detail.get("customerId"),
        "customer_name": detail.get("customerLegalCompanyName"),
        "customer_tax_status": _optional_enum(
            detail.get("customerTaxStatus"), settings.TAX_STATUSES, "customerTaxStatus"
        ),
        "currency": currency,
        "issue_date": iso_date(detail.get("issueDate"), "issueDate"),
        "accounting_date": iso_date(detail.get("accountingDate"), "accountingDate"),
        "due_date": iso_date(detail.get("dueDate"), "dueDate"),
        "period_start": iso_date(period.get("start"), "billingPeriod.start"),
        "period_end": iso_date(period.get("endInclusive"), "billingPeriod.endInclusive"),
        "net_total": major_money(detail.get("netTotal"), currency, "netTotal"),
        "total_tax": major_money(detail.get("totalTax"), currency, "totalTax"),
        "gross_total": major_money(detail.get("grossTotal"), currency, "grossTotal"),
        "balance": _optional_money(detail.get("balance"), currency, "balance"),
        # Derived sums (see the README): Sequence sends the parts, not the totals.
        "amount_allocated": sum((a["amount"] for a in allocations), Decimal(0)),
        "amount_credited": sum((c["gross_total"] for c in credit_notes), Decimal(0)),
        "amount_credit_grants": sum(
            (g["amount"] for g in grants if g["status"] == "APPLIED"), Decimal(0)
        ),
        "list_gross_total": summary["gross_total"],
        "created_at": utc_timestamp(detail.get("createdAt"), "createdAt"),
        "updated_at": utc_timestamp(detail.get("updatedAt"), "updatedAt"),
        "memo": detail.get("memo"),
        "reference": detail.get("reference"),
        "purchase_order_number": detail.get("purchaseOrderNumber"),
        "billing_schedule_id": detail.get("billingScheduleId"),
        "detail_fingerprint": fingerprint_,
        "line_items": [_line(line, currency) for line in lines],
        "payment_allocations": allocations,
        "credit_notes": credit_notes,
        "credit_grants": grants,
    }


def error_message(body: Any) -> str | None:
    """Sequence's error body: {"status": 401, "message": "..."} (a plain `error` is tolerated)."""
    if not isinstance(body, dict):
        return None
    text = body.get("message") or body.get("error")
    return str(text) if text else None


def vendor_total_record(row: Any) -> dict[str, Any]:
    """One currency of `GET /invoices/summary`: the vendor's own count and gross total."""
    try:
        return {
            "currency": row["currency"],
            "invoice_count": whole_number(row["invoiceCount"], "invoiceCount", required=True),
            "gross_total": parse_decimal(row["grossTotal"]),
        }
    except (KeyError, TypeError, ValueError) as err:
        raise SyncError(
            SOURCE,
            f"malformed /invoices/summary row {str(row)[:120]!r}: {err}",
            "the API answered in an unexpected format; check SOURCES__SEQUENCE__BASE_URL",
        ) from None
