"""The sandbox's truth for any past day, on ledgers built by hand (docs/point-in-time.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from sources.common.sandbox.ledger import (
    DRAFT,
    OPEN,
    PAID,
    REFUNDED,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    Ledger,
)
from sources.common.sandbox.truth import (
    Figures,
    Money,
    Observation,
    Sighting,
    Transitions,
    as_of,
    knowable,
    observations,
)

ISSUED = date(2026, 3, 2)


def day(n: int) -> date:
    return ISSUED + timedelta(days=n)


def at_day(ledger: Ledger, n: int) -> None:
    """Move the ledger's clock to 10:00 UTC of day `n` after issue: what happens next is dated
    that day."""
    ledger.now = datetime.combine(day(n), datetime.min.time(), UTC) + timedelta(hours=10)


def draft(ledger: Ledger) -> Invoice:
    return ledger.create_invoices(1, status=DRAFT)[0]


def opened(ledger: Ledger) -> Invoice:
    invoice = draft(ledger)
    ledger.finalize(invoice.id)
    return invoice


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(seed=4, invoices=0, customers=3, today=ISSUED, currencies=("USD",))


def state(invoice: Invoice, n: int) -> tuple | None:
    """(status, amount paid, amount due) at the end of day `n`, in minor units."""
    then = as_of(invoice, day(n))
    return None if then is None else (then.status, then.amount_paid, then.amount_due)


def test_nothing_before_the_issue_date(ledger: Ledger) -> None:
    invoice = opened(ledger)
    assert state(invoice, -1) is None
    assert state(invoice, 0) == (OPEN, 0, invoice.total)


def test_partial_payment_then_the_rest(ledger: Ledger) -> None:
    invoice = opened(ledger)
    part = invoice.total // 3
    at_day(ledger, 5)
    ledger.pay(invoice.id, part)
    at_day(ledger, 12)
    ledger.pay(invoice.id)
    assert state(invoice, 4) == (OPEN, 0, invoice.total)
    assert state(invoice, 5) == (OPEN, part, invoice.total - part)
    assert state(invoice, 11) == (OPEN, part, invoice.total - part)
    assert state(invoice, 12) == (PAID, invoice.total, 0)
    assert state(invoice, 400) == (PAID, invoice.total, 0)


def test_a_refund_counts_from_its_day(ledger: Ledger) -> None:
    invoice = opened(ledger)
    at_day(ledger, 3)
    ledger.pay(invoice.id)
    at_day(ledger, 9)
    ledger.refund(invoice.id)
    assert state(invoice, 8) == (PAID, invoice.total, 0)
    assert state(invoice, 9) == (REFUNDED, 0, 0)
    assert as_of(invoice, day(9)).refunds_settled == invoice.total


def test_a_void_after_a_partial_payment(ledger: Ledger) -> None:
    invoice = opened(ledger)
    part = invoice.total // 4
    at_day(ledger, 3)
    ledger.pay(invoice.id, part)
    at_day(ledger, 6)
    ledger.void(invoice.id)
    assert state(invoice, 5) == (OPEN, part, invoice.total - part)
    assert state(invoice, 6) == (VOID, part, 0)


def test_a_write_off_counts_from_its_day(ledger: Ledger) -> None:
    invoice = opened(ledger)
    at_day(ledger, 2)
    ledger.fail_payment(invoice.id)
    at_day(ledger, 40)
    ledger.mark_uncollectible(invoice.id)
    assert state(invoice, 39) == (OPEN, 0, invoice.total)
    assert state(invoice, 40)[0] == UNCOLLECTIBLE
    assert len(as_of(invoice, day(39)).transactions) == 1  # the failed attempt, dated day 2


def test_a_draft_finalized_later_counts_from_its_issue_date(ledger: Ledger) -> None:
    """As aged receivables count an invoice approved late: from its date (issue #34)."""
    invoice = draft(ledger)
    at_day(ledger, 9)
    ledger.finalize(invoice.id)
    assert state(invoice, -1) is None
    assert state(invoice, 0) == (OPEN, 0, invoice.total)
    assert state(invoice, 8) == (OPEN, 0, invoice.total)
    assert state(invoice, 9) == (OPEN, 0, invoice.total)


def test_a_draft_never_counts_as_open(ledger: Ledger) -> None:
    invoice = draft(ledger)
    assert state(invoice, 3) == (DRAFT, 0, 0)


def test_a_draft_voided_was_never_open(ledger: Ledger) -> None:
    invoice = draft(ledger)
    at_day(ledger, 4)
    ledger.void(invoice.id)
    assert state(invoice, 3) == (DRAFT, 0, 0)
    assert state(invoice, 4) == (VOID, 0, 0)


def test_credit_applies_from_finalization(ledger: Ledger) -> None:
    invoice = draft(ledger)
    invoice.credits = invoice.total // 10  # the customer's balance, applied when finalized
    at_day(ledger, 2)
    ledger.finalize(invoice.id)
    at_day(ledger, 7)
    ledger.pay(invoice.id)
    assert as_of(invoice, day(1)).credits == 0
    assert state(invoice, 2) == (OPEN, 0, invoice.total - invoice.credits)
    assert state(invoice, 7) == (PAID, invoice.total - invoice.credits, 0)


def test_the_seeded_history_is_dated_in_order() -> None:
    """Every seeded invoice's events follow each other (a refund never precedes its payment),
    so its truth on any day is a state it really passed through."""
    ledger = Ledger(seed=11, invoices=300)
    for invoice in ledger.snapshot():
        moments = [t.processed_at for t in invoice.transactions]
        assert moments == sorted(moments), invoice.id
        assert all(m <= ledger.now for m in moments)
        for when in (invoice.paid_at, invoice.refunded_at, invoice.voided_at):
            assert when is None or when >= (invoice.finalized_at or when)
        for back in range(0, 210, 7):
            then = as_of(invoice, ledger.today - timedelta(days=back))
            assert then is None or (then.amount_paid >= 0 and then.amount_due >= 0), invoice.id
        assert as_of(invoice, ledger.today).status == invoice.status


# -- what a warehouse can know ---------------------------------------------------------------

T = datetime(2026, 3, 2, 9, tzinfo=UTC)
TOTAL = Decimal(100)


def sighting(hours: int, figures: Figures, stamp_hours: int | None = None, **dated) -> Sighting:
    stamp = None if stamp_hours is None else T + timedelta(hours=stamp_hours)
    money = tuple(dated.pop("money", ()))
    return Sighting(T + timedelta(hours=hours), figures, stamp, Transitions(**dated), money)


def test_history_rows_are_dated_by_the_moved_stamp_else_the_sync() -> None:
    open_ = Figures(OPEN, TOTAL, Decimal(0), TOTAL)
    void = Figures(VOID, TOTAL, Decimal(0), Decimal(0))
    rows = observations(
        [
            sighting(24 * 30, open_, stamp_hours=5),  # first seen 30 days after its stamp
            sighting(24 * 31, open_, stamp_hours=6),  # stamp moved, figures did not: no row
            sighting(24 * 32, void, stamp_hours=24 * 31 + 1),  # stamp moved: dated by it
            sighting(24 * 33, void, stamp_hours=24 * 31 + 1),
        ],
        date(2026, 3, 1),
    )
    assert rows == [
        Observation(T + timedelta(hours=5), open_),
        Observation(T + timedelta(hours=24 * 31 + 1), void),
    ]
    unstamped = observations([sighting(24 * 30, open_), sighting(24 * 32, void)], date(2026, 3, 1))
    assert [row.valid_from for row in unstamped] == [
        datetime(2026, 3, 1, tzinfo=UTC),  # no stamp: what was so at first is so from issue
        T + timedelta(hours=24 * 32),  # and a change from the sync that saw it
    ]


def test_knowable_moves_the_history_on_by_dated_payments() -> None:
    """A vendor that dates payments but not voids: the partial payment is exact, the void is
    dated by the sync that saw it."""
    paid_part = Money("p1", "payment", Decimal(30), T + timedelta(days=3))
    first = sighting(0, Figures(OPEN, TOTAL, Decimal(0), TOTAL))
    voided = sighting(24 * 10, Figures(VOID, TOTAL, Decimal(30), Decimal(0)), money=[paid_part])
    rows = observations([first, voided], date(2026, 3, 2))

    def then(n: int) -> tuple:
        figures = knowable(voided, rows, date(2026, 3, 2), date(2026, 3, 2) + timedelta(n), False)
        return figures.status, figures.amount_paid, figures.amount_due

    assert then(2) == (OPEN, 0, TOTAL)
    assert then(3) == (OPEN, 30, 70)  # the dated payment, though no sync saw it that day
    assert then(9) == (OPEN, 30, 70)
    assert then(10) == (VOID, 30, 0)
