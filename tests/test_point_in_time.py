"""Point in time: the `_at` macros give each invoice as it stood on a past day, from the vendor's
dated events and the warehouse's own history (billing.invoice_history), for every vendor."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

import pipelines.sync
from pipelines import cli, history
from pipelines.registry import VENDORS
from sources.common.sandbox.ledger import OPEN, PAID, UNCOLLECTIBLE, VOID
from sources.press.emulator import press_name
from sources.revolv3.emulator import last_update
from tests.clock import TODAY

PAST = [TODAY - timedelta(days=n) for n in (1, 6, 20, 45, 90, 160)]


def _invoices_at(sb, day: date) -> dict[str, tuple]:
    rows = sb.query(
        "SELECT invoice_id, status, amount_paid, amount_due FROM billing.ar_invoices_at(?)", [day]
    )
    return {invoice_id: tuple(values) for invoice_id, *values in rows}


def _truth_at(sb, day: date, exact: bool = False) -> dict[str, tuple]:
    rows = sb.emulator.exact_truth(day) if exact else sb.emulator.truth(day)
    return {t.invoice_id: (t.status, t.amount_paid, t.amount_due) for t in rows}


def _history_rows(sb) -> int:
    return sb.query("SELECT count(*) FROM billing.invoice_history")[0][0]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_past_days_equal_what_the_vendor_and_the_history_can_know(make_sandbox, vendor) -> None:
    """After a sync, changes and a second sync, every invoice on every past day is what the
    vendor's dates and the documented inference give (`Emulator.truth(as_of)`), and so are
    the summary and the aging; today's views are the macros at today."""
    sb = make_sandbox(VENDORS[vendor], invoices=70, seed=23)
    sb.sync_ok()
    sb.ledger.random_changes(12)
    sb.sync_ok()
    for day in [*PAST, TODAY]:
        assert _invoices_at(sb, day) == _truth_at(sb, day), day
        assert sb.summary_rows(day) == sb.truth_summary(day), day
        assert sb.aging_rows(day) == sb.truth_aging(day), day
    assert sorted(sb.query("SELECT * FROM billing.ar_summary")) == sorted(
        sb.query("SELECT * FROM billing.ar_summary_at(current_date)")
    )


def test_meteroid_dates_everything_so_every_day_is_exact(make_sandbox) -> None:
    """Meteroid sends finalized_at, paid_at, voided_at, marked_as_uncollectible_at and every
    transaction's processed_at: the past is the ledger's own, whatever the syncs saw."""
    sb = make_sandbox(VENDORS["meteroid"], invoices=90, seed=5)
    sb.ledger.random_changes(10)  # changes before the first sync: no history saw them
    sb.sync_ok()
    sb.ledger.random_changes(10)
    sb.sync_ok()
    for day in [*PAST, TODAY]:
        assert _invoices_at(sb, day) == _truth_at(sb, day, exact=True), day


def test_figures_differ_from_today_and_count_invoices_from_their_issue(make_sandbox) -> None:
    """The failure the issue reports: figures for a past day counted today's invoices in
    today's state. An invoice issued after the day is absent; one paid since is open."""
    sb = make_sandbox(VENDORS["meteroid"], invoices=80, seed=9)
    sb.sync_ok()
    day = TODAY - timedelta(days=8)
    issued_later = {inv.id for inv in sb.ledger.snapshot() if inv.issue_date > day}
    paid_later = [
        inv.id for inv in sb.ledger.find(PAID) if inv.issue_date <= day and inv.paid_at.date() > day
    ]
    assert issued_later and paid_later
    then = _invoices_at(sb, day)
    assert not issued_later & set(then)
    assert all(then[invoice_id][0] == OPEN for invoice_id in paid_later)


def _sync_on(sb, monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """A sync as if it ran at noon on `day`: the history dates what it saw then."""
    moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    monkeypatch.setattr(
        pipelines.sync,
        "record_history",
        lambda db, source, _: history.record_history(db, source, moment),
    )
    sb.sync_ok(landed_at=moment)


def test_press_changes_are_dated_by_the_sync_that_saw_them(
    make_sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Press dates nothing: a payment between two daily syncs shows from the second."""
    sb = make_sandbox(VENDORS["press"], invoices=50, seed=3)
    _sync_on(sb, monkeypatch, TODAY - timedelta(days=20))
    invoice = next(inv for inv in sb.ledger.find(OPEN) if inv.issue_date < TODAY - timedelta(30))
    sb.ledger.pay(invoice.id)
    _sync_on(sb, monkeypatch, TODAY - timedelta(days=10))
    name = press_name(invoice)
    assert _invoices_at(sb, TODAY - timedelta(days=11))[name][0] == OPEN
    assert _invoices_at(sb, TODAY - timedelta(days=10))[name][0] == PAID
    for day in (TODAY - timedelta(days=n) for n in (25, 15, 10, 5, 0)):
        assert sb.summary_rows(day) == sb.truth_summary(day), day
        assert _invoices_at(sb, day) == _truth_at(sb, day), day


def test_exsited_keeps_a_last_payment_it_stops_sending(make_sandbox) -> None:
    """Exsited sends only an invoice's last payment: the partial payment a first sync saw
    stays dated (billing.payment_history) once the rest replaces it."""
    sb = make_sandbox(VENDORS["exsited"], invoices=80, seed=7)
    partial = next(
        inv
        for inv in sb.ledger.find(OPEN)
        if inv.payments_settled and inv.transactions[-1].processed_at.date() < TODAY - timedelta(2)
    )
    paid_on = partial.transactions[-1].processed_at.date()
    sb.sync_ok()
    sb.ledger.pay(partial.id)
    sb.sync_ok()
    kept = sb.query(
        "SELECT payment_id FROM billing.payment_history WHERE invoice_id = ? "
        "EXCEPT SELECT payment_id FROM billing.payments WHERE invoice_id = ?",
        [partial.number, partial.number],
    )
    assert kept == [(partial.transactions[-2].id,)]
    status, paid, due = _invoices_at(sb, paid_on)[partial.number]
    assert (status, paid) == (OPEN, partial.major(partial.transactions[-2].amount))
    assert due == partial.major(partial.total - partial.credits) - paid
    assert _invoices_at(sb, paid_on - timedelta(days=1))[partial.number][1] == 0
    assert _invoices_at(sb, paid_on) == _truth_at(sb, paid_on, exact=True) == _truth_at(sb, paid_on)


def test_an_unchanged_sync_adds_no_history_and_full_refresh_keeps_it(make_sandbox) -> None:
    sb = make_sandbox(VENDORS["meteroid"], invoices=40)
    sb.sync_ok()
    first = _history_rows(sb)
    payments = sb.query("SELECT count(*) FROM billing.payment_history")[0][0]
    assert first == 40 and payments > 0
    sb.sync_ok()  # Meteroid rewrites every invoice: all compared, none changed
    assert _history_rows(sb) == first
    sb.sync(full_refresh=True)
    assert _history_rows(sb) == first
    assert sb.query("SELECT count(*) FROM billing.payment_history")[0][0] == payments
    changed = sb.ledger.pay(sb.ledger.find(OPEN)[0].id)
    sb.sync_ok()
    assert _history_rows(sb) == first + 1
    rows = sb.query(
        "SELECT status, valid_from, valid_to FROM billing.invoice_history "
        "WHERE invoice_id = ? ORDER BY valid_from",
        [changed.id],
    )
    assert [row[0] for row in rows] == [OPEN, PAID]
    assert rows[0][2] == rows[1][1] and rows[1][2] is None  # contiguous, the last one open


def test_loads_the_history_has_not_recorded_count_until_it_does(
    make_sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync that stopped after loading but before writing the history: the macros read the
    loaded rows as the history will record them, and the next sync records them."""
    sb = make_sandbox(VENDORS["sequence"], invoices=40)
    sb.sync_ok()
    sb.ledger.void(sb.ledger.find(OPEN)[0].id)
    sb.ledger.pay(sb.ledger.find(OPEN)[0].id)
    rows = _history_rows(sb)
    monkeypatch.setattr(pipelines.sync, "record_history", lambda *_: 0)
    sb.sync_ok()
    assert _history_rows(sb) == rows
    for day in (TODAY, TODAY - timedelta(days=3)):
        assert sb.summary_rows(day) == sb.truth_summary(day)
    monkeypatch.undo()
    sb.sync_ok()
    assert _history_rows(sb) == rows + 2
    for day in (TODAY, TODAY - timedelta(days=3)):
        assert sb.summary_rows(day) == sb.truth_summary(day)


def test_amounts_stay_exact_decimals(make_sandbox) -> None:
    sb = make_sandbox(VENDORS["meteroid"], invoices=20)
    sb.sync_ok()
    [(kind,)] = sb.query(
        "SELECT DISTINCT typeof(amount_due) FROM billing.ar_invoices_at(current_date - 30)"
    )
    assert kind == "DECIMAL(18,4)"
    assert all(isinstance(v[1], Decimal) for v in _invoices_at(sb, TODAY - timedelta(9)).values())


def test_summary_of_a_past_day_says_what_is_exact_and_what_inferred(
    make_sandbox, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    press = make_sandbox(VENDORS["press"], invoices=20)
    first = TODAY - timedelta(days=10)
    _sync_on(press, monkeypatch, first)
    day = TODAY - timedelta(days=30)
    assert cli.main(["summary", "--db", str(press.db), "--as-of", day.isoformat()]) == 0
    header, note, blank = capsys.readouterr().out.splitlines()[:3]
    assert header.startswith(f"Accounts receivable as of {day}")
    assert note == (
        f"  press: dates of payments and status changes unknown before the first sync, {first} "
        "(taken as each invoice's issue date)"
    )
    assert blank == ""
    args = ["summary", "--db", str(press.db), "--as-of", str(first), "--format", "json"]
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exactness"] == [
        f"press: payments and status changes dated by the sync that saw them (syncs since {first})"
    ]
    meteroid = make_sandbox(VENDORS["meteroid"], invoices=10)
    meteroid.sync_ok()
    assert cli.main(["summary", "--db", str(meteroid.db), "--as-of", day.isoformat()]) == 0
    assert capsys.readouterr().out.splitlines()[1] == (
        "  meteroid: exact (the vendor dates every change)"
    )
    assert cli.main(["summary", "--db", str(meteroid.db)]) == 0  # today: no notes
    assert capsys.readouterr().out.splitlines()[1] == ""
    revolv3 = make_sandbox(VENDORS["revolv3"], invoices=12)  # every third row unstamped
    revolv3.sync_ok()
    with duckdb.connect(str(revolv3.db), read_only=True) as con:
        [seen] = con.execute(
            "SELECT DISTINCT CAST(seen_at AT TIME ZONE 'UTC' AS DATE) FROM billing.invoice_history"
        ).fetchall()
        assert history.exactness_notes(con, seen[0], ["revolv3"]) == [
            "revolv3: voids, write-offs and payments made outside Revolv3 dated by each "
            "invoice's last update where the vendor sent one, else the sync that saw them "
            f"(syncs since {seen[0]})"
        ]


@pytest.mark.parametrize("vendor", ["meteroid", "sequence"])
def test_a_draft_finalized_later_counts_from_its_issue_date(make_sandbox, vendor) -> None:
    """A draft issued 30 days ago and finalized today was outstanding, in full, 10 days ago:
    whether the vendor dates the finalization (Meteroid) or the history saw the draft
    (Sequence). A draft still a draft never counts."""
    sb = make_sandbox(VENDORS[vendor], invoices=40, seed=3)
    drafts = [inv for inv in sb.ledger.find("draft") if (TODAY - inv.issue_date).days > 12]
    late, still = drafts[0], drafts[1]
    sb.sync_ok()
    sb.ledger.finalize(late.id)
    sb.sync_ok()
    day = TODAY - timedelta(days=10)
    rows = _invoices_at(sb, day)
    assert rows[late.id] == ("open", Decimal(0), late.major(late.total))  # no credit applied yet
    assert rows[still.id][0] == "draft"
    assert rows == _truth_at(sb, day)
    outstanding = sb.query(
        "SELECT count(*) FROM billing.ar_outstanding_at(?) WHERE invoice_id = ?", [day, late.id]
    )
    assert outstanding == [(1,)]


def test_revolv3_dates_a_write_off_or_void_by_its_last_update(make_sandbox) -> None:
    """Revolv3 dates no void or write-off, but a row's `lastUpdateDate` does when it was the
    invoice's last change: a first sync shows such an invoice open, with its amount due, on
    the days before, and void or written off from that day (not since its billing date)."""
    sb = make_sandbox(VENDORS["revolv3"], invoices=120, seed=7, last_update_date="all")
    ended = [
        inv
        for inv in sb.ledger.find(VOID, UNCOLLECTIBLE)
        if last_update(inv) == (inv.voided_at or inv.uncollectible_at)
        and (last_update(inv).date() - inv.issue_date).days > 1
    ]
    assert ended
    sb.sync_ok()
    for inv in ended:
        number, ended_on = str(int(inv.id.split("_")[1])), last_update(inv).date()
        day_before = ended_on - timedelta(days=1)
        before = _invoices_at(sb, day_before)[number]
        assert before[0] == OPEN and before[2] > 0
        assert before == _truth_at(sb, day_before, exact=True)[number]
        assert _invoices_at(sb, ended_on)[number] == _truth_at(sb, ended_on, exact=True)[number]
        assert _invoices_at(sb, ended_on)[number][0] == inv.status
    for day in PAST:
        assert _invoices_at(sb, day) == _truth_at(sb, day), day
