"""Ground truth: what the `billing` AR figures must be for the data an emulator serves.

Plain Python over Decimal, written from the contract's definitions and nothing else, so
tests can hold the SQL views to it.

For any day, two truths (docs/point-in-time.md):
- `as_of` gives an invoice exactly as it stood at the end of a day, from the ledger's dated
  events (every event in the sandbox's ledger is dated);
- `knowable` gives what a warehouse synced from a vendor's API can know of that day: exact
  for what the vendor dates, and for the rest the inference the warehouse documents, applied
  to what each sync saw (the emulator records what it served).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal

from sources.common.sandbox.ledger import (
    DRAFT,
    OPEN,
    PAID,
    PAYMENT,
    REFUND,
    REFUNDED,
    SETTLED,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    Transaction,
)

AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
ZERO = Decimal(0)


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
    rows: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "open_count": 0,
            "outstanding": ZERO,
            "overdue_count": 0,
            "overdue": ZERO,
            "paid_count": 0,
            "paid": ZERO,
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
                (inv.source, inv.currency, bucket), {"invoice_count": 0, "amount_due": ZERO}
            )
        row = rows[(inv.source, inv.currency, aging_bucket(days_past_due(inv, as_of)))]
        row["invoice_count"] += 1
        row["amount_due"] += inv.amount_due
    return rows


# -- the exact truth: an invoice at the end of a day, from the ledger's dated events ----------


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def by_end_of(moment: datetime | None, day: date) -> bool:
    return moment is not None and utc_day(moment) <= day


def as_of(invoice: Invoice, day: date) -> Invoice | None:
    """The invoice as it stood at the end of `day` (UTC), or None before its issue date.

    A copy with the transactions processed by then, the status it had then (open from its issue
    date if it was ever finalized, even on days before that, and a draft otherwise; paid from
    the payment that settled it, refunded from the refund that gave everything back, void or
    uncollectible from when that happened), and the customer's credit from finalization, when
    the ledger applies it.
    """
    if invoice.issue_date > day:
        return None
    finalized = by_end_of(invoice.finalized_at, day)
    # finalized by now, whenever: it counts from its issue date, as open (a draft never does)
    status = DRAFT if invoice.finalized_at is None else OPEN
    for when, reached in (
        (invoice.finalized_at, OPEN),
        (invoice.paid_at, PAID),
        (invoice.refunded_at, REFUNDED),
        (invoice.uncollectible_at, UNCOLLECTIBLE),
        (invoice.voided_at, VOID),
    ):
        if by_end_of(when, day):
            status = reached
    return replace(
        invoice,
        status=status,
        transactions=[t for t in invoice.transactions if by_end_of(t.processed_at, day)],
        credits=invoice.credits if finalized else 0,
        **{
            name: when if by_end_of(when, day) else None
            for name, when in (
                ("finalized_at", invoice.finalized_at),
                ("paid_at", invoice.paid_at),
                ("refunded_at", invoice.refunded_at),
                ("voided_at", invoice.voided_at),
                ("uncollectible_at", invoice.uncollectible_at),
            )
        },
    )


# -- what a warehouse can know: the vendor's dates, and its own history for the rest ----------


@dataclass(frozen=True, slots=True)
class Figures:
    """An invoice as a warehouse holds it after a sync: contract status and amounts, and the
    credit and refunds in them (what `billing.invoice_history` records)."""

    status: str
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    credited: Decimal = ZERO
    refunded: Decimal = ZERO

    @property
    def tracked(self) -> tuple:
        """What a new history row is written for when it changes."""
        return self.status, self.amount_paid, self.amount_due, self.credited


@dataclass(frozen=True, slots=True)
class Money:
    """A payment or refund as the vendor dates it."""

    id: str
    kind: str  # payment | refund
    amount: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class Transitions:
    """The dates a vendor sends for an invoice's status changes (None: not sent)."""

    finalized: datetime | None = None
    paid: datetime | None = None
    refunded: datetime | None = None
    voided: datetime | None = None
    uncollectible: datetime | None = None

    def latest(self) -> datetime | None:
        moments = [self.finalized, self.paid, self.refunded, self.voided, self.uncollectible]
        return max((m for m in moments if m is not None), default=None)


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one sync landed of an invoice: its figures, the vendor's update stamp, and the
    vendor-dated money and status dates it carried (money seen by earlier syncs included)."""

    seen_at: datetime
    figures: Figures
    stamp: datetime | None
    transitions: Transitions
    money: tuple[Money, ...]


@dataclass(frozen=True, slots=True)
class Observation:
    """A history row: figures valid from a moment until the next row's."""

    valid_from: datetime
    figures: Figures


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def effective_transitions(
    figures: Figures, dated: Transitions, money: Iterable[Money]
) -> Transitions:
    """The vendor's transition dates, completed as `billing.invoice_facts` completes them: a
    paid (or refunded) invoice whose payments are all dated became paid at the last of them;
    a refunded one whose refunds are all dated became refunded at the last of them."""
    payments = [m for m in money if m.kind == PAYMENT]
    refunds = [m for m in money if m.kind == REFUND]
    paid, refunded = dated.paid, dated.refunded
    if (
        paid is None
        and payments
        and figures.status in (PAID, REFUNDED)
        and figures.amount_paid + figures.refunded == sum(m.amount for m in payments)
    ):
        paid = max(m.at for m in payments)
    if (
        refunded is None
        and refunds
        and figures.status == REFUNDED
        and figures.refunded == sum(m.amount for m in refunds)
    ):
        refunded = max(m.at for m in refunds)
    return replace(dated, paid=paid, refunded=refunded)


def last_event(transitions: Transitions, money: Iterable[Money]) -> datetime | None:
    moments = [transitions.latest(), *(m.at for m in money)]
    return max((m for m in moments if m is not None), default=None)


def observations(sightings: Sequence[Sighting], issue_date: date) -> list[Observation]:
    """The history rows the sightings make, as `pipelines/history.py` writes them: a row when
    status, amount paid, amount due or credit changed; valid from the vendor's update stamp
    when it moved (for the first row: the stamp, else the issue date), else from the sync,
    and never before a dated event the sync already saw, nor before the previous row."""
    rows: list[Observation] = []
    stamp: datetime | None = None
    for sighting in sightings:
        if rows and sighting.figures.tracked == rows[-1].figures.tracked:
            continue
        if not rows:
            candidate = sighting.stamp or midnight(issue_date)
        elif sighting.stamp is not None and stamp is not None and sighting.stamp > stamp:
            candidate = sighting.stamp
        else:
            candidate = sighting.seen_at
        effective = effective_transitions(sighting.figures, sighting.transitions, sighting.money)
        moments = [candidate, last_event(effective, sighting.money)]
        if rows:
            moments.append(rows[-1].valid_from)
        rows.append(Observation(max(m for m in moments if m is not None), sighting.figures))
        stamp = sighting.stamp
    return rows


def knowable(
    now: Sighting,
    rows: Sequence[Observation],
    issue_date: date,
    day: date,
    finalization_dated: bool,
) -> Figures | None:
    """The invoice at the end of `day` as the warehouse answers it (`billing.ar_invoices_at`).

    From the last history row on or before the day, moved on by the vendor's dated events
    after that row up to the day; before the first row, from the vendor's dated events alone.
    An invoice finalized by now counts from its issue date, as open (a draft row before its
    finalization too). None before the issue date.
    """
    if issue_date > day or not rows:
        return None
    seen = next((row for row in reversed(rows) if utc_day(row.valid_from) <= day), None)
    after = seen.valid_from if seen else None

    def happened(moment: datetime | None) -> bool:
        return by_end_of(moment, day) and (after is None or moment > after)

    dated = effective_transitions(now.figures, now.transitions, now.money)
    # finalized by now (a draft finalized later counts from its issue date, as open)
    finalized = dated.finalized is not None or any(
        row.figures.status not in (DRAFT, VOID) for row in rows
    )
    if seen is not None and not (seen.figures.status == DRAFT and finalized):
        base = seen.figures.status
    else:
        base = OPEN if finalized else DRAFT
    status = base
    for reached, when in (
        (OPEN, dated.finalized),
        (PAID, dated.paid),
        (REFUNDED, dated.refunded),
        (UNCOLLECTIBLE, dated.uncollectible),
        (VOID, dated.voided),
    ):
        if base == reached or happened(when):
            status = reached
    paid_in = sum((m.amount for m in now.money if m.kind == PAYMENT and happened(m.at)), ZERO)
    paid_back = sum((m.amount for m in now.money if m.kind == REFUND and happened(m.at)), ZERO)
    paid = (seen.figures.amount_paid if seen else ZERO) + paid_in - paid_back
    due = ZERO
    if status in (OPEN, UNCOLLECTIBLE):
        if seen is not None and seen.figures.status in (OPEN, UNCOLLECTIBLE):
            due = max(seen.figures.amount_due - paid_in, ZERO)
        elif finalization_dated and not by_end_of(dated.finalized, day):
            credited = ZERO  # the credit is applied on finalization, which came after the day
            received = (seen.figures.amount_paid if seen else ZERO) + paid_in
            due = max(now.figures.total - credited - received, ZERO)
        else:
            credited = (seen or rows[0]).figures.credited
            received = (seen.figures.amount_paid if seen else ZERO) + paid_in
            due = max(now.figures.total - credited - received, ZERO)
    return Figures(status, now.figures.total, paid, due)


def written(moment: datetime | None, precision: str) -> datetime | None:
    """`moment` as a vendor writes it: to the microsecond (`us`), millisecond (`ms`) or
    second (`s`), cut, not rounded, as `isoformat` and `strftime` cut it."""
    if moment is None or precision == "us":
        return moment
    if precision == "ms":
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return moment.replace(microsecond=0)


def settled_money(
    invoice: Invoice, shown: Iterable[Transaction], precision: str = "us"
) -> tuple[Money, ...]:
    """The settled payments and refunds among `shown` (the transactions a vendor shows of
    `invoice`), in major units, dated as the vendor writes times (`written`)."""
    return tuple(
        Money(t.id, t.kind, invoice.major(t.amount), written(t.processed_at, precision))
        for t in shown
        if t.status == SETTLED and t.processed_at is not None and t.kind in (PAYMENT, REFUND)
    )
