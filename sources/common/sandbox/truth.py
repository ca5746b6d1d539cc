"""Ground truth: what the `billing` AR figures must be for the data an emulator serves.

Plain Python over Decimal, written from the contract's definitions and nothing else, so
tests can hold the SQL views to it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


@dataclass(frozen=True, slots=True)
class TruthInvoice:
    """One invoice as the contract sees it (amounts in major units)."""

    source: str
    invoice_id: str
    currency: str
    status: str
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    due_date: date | None


def days_past_due(invoice: TruthInvoice, as_of: date) -> int | None:
    return None if invoice.due_date is None else (as_of - invoice.due_date).days


def aging_bucket(days: int | None) -> str:
    if days is None or days <= 0:
        return "current"
    if days <= 30:
        return "1-30"
    if days <= 60:
        return "31-60"
    if days <= 90:
        return "61-90"
    return "90+"


def is_outstanding(invoice: TruthInvoice) -> bool:
    return invoice.status == "open" and invoice.amount_due > 0


def is_overdue(invoice: TruthInvoice, as_of: date) -> bool:
    return is_outstanding(invoice) and invoice.due_date is not None and invoice.due_date < as_of


def ar_summary(invoices: list[TruthInvoice], as_of: date) -> dict[tuple[str, str], dict]:
    """`billing.ar_summary_at(as_of)` as a dict keyed by (source, currency)."""
    zero = Decimal(0)
    rows: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "open_count": 0,
            "outstanding": zero,
            "overdue_count": 0,
            "overdue": zero,
            "paid_count": 0,
            "paid": zero,
            "draft_count": 0,
            "void_count": 0,
        }
    )
    for inv in invoices:
        row = rows[(inv.source, inv.currency)]
        if is_outstanding(inv):
            row["open_count"] += 1
            row["outstanding"] += inv.amount_due
        if is_overdue(inv, as_of):
            row["overdue_count"] += 1
            row["overdue"] += inv.amount_due
        if inv.status == "paid":
            row["paid_count"] += 1
        if inv.status != "void":
            row["paid"] += inv.amount_paid
        row["draft_count"] += inv.status == "draft"
        row["void_count"] += inv.status == "void"
    return dict(rows)


def ar_aging(invoices: list[TruthInvoice], as_of: date) -> dict[tuple[str, str, str], dict]:
    """`billing.ar_aging_at(as_of)`: every bucket of every (source, currency) with money due."""
    rows: dict[tuple[str, str, str], dict] = {}
    for inv in invoices:
        if not is_outstanding(inv):
            continue
        for bucket in AGING_BUCKETS:
            rows.setdefault(
                (inv.source, inv.currency, bucket), {"invoice_count": 0, "amount_due": Decimal(0)}
            )
        row = rows[(inv.source, inv.currency, aging_bucket(days_past_due(inv, as_of)))]
        row["invoice_count"] += 1
        row["amount_due"] += inv.amount_due
    return rows
