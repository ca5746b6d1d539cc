"""billing.sync_runs' new, changed and unchanged invoices, for every vendor.

The oracle is the contract view itself: `billing.invoices` read before and after each sync,
compared row by row. The sync counts only the invoices its loads wrote; these tests check
that this gives the same numbers as comparing everything.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from pipelines.registry import VENDORS
from pipelines.runs import InvoiceCounts
from pipelines.sandbox import environment
from pipelines.sync import sync
from sources.common.sandbox.ledger import DRAFT, OPEN

VENDOR_LIST = list(VENDORS.values())


def _rows(sb: Any) -> dict[str, tuple]:
    rows = sb.query("SELECT * FROM billing.invoices WHERE source = ?", [sb.vendor.name])
    return {row[1]: row for row in rows}


def _compared(before: dict[str, tuple], after: dict[str, tuple]) -> InvoiceCounts:
    new = sum(1 for invoice in after if invoice not in before)
    changed = sum(1 for invoice, row in after.items() if before.get(invoice, row) != row)
    return InvoiceCounts(new, changed, len(after) - new - changed, len(after))


def _digests(sb: Any) -> list[tuple]:
    return sb.query(
        f'SELECT load_id, count(*) FROM _invoice_sync."digests_{sb.vendor.name}" '
        "GROUP BY load_id ORDER BY load_id NULLS FIRST"
    )


def _change_some(sb: Any) -> None:
    """Pay an open invoice, void a draft or open one, and add three open invoices."""
    sb.ledger.pay(sorted(sb.ledger.find(OPEN), key=lambda inv: inv.id)[0].id)
    sb.ledger.void(sorted(sb.ledger.find(DRAFT, OPEN), key=lambda inv: inv.id)[-1].id)
    sb.ledger.create_invoices(3, status=OPEN)


@pytest.mark.parametrize("vendor", VENDOR_LIST, ids=[v.name for v in VENDOR_LIST])
def test_counts_match_a_comparison_of_every_invoice(make_sandbox, vendor) -> None:
    sb = make_sandbox(vendor, invoices=40)
    first = sb.sync_ok()
    after_first = _rows(sb)
    assert first.counts == _compared({}, after_first)
    assert first.counts.new == len(after_first) > 0

    _change_some(sb)
    second = sb.sync_ok()
    after_second = _rows(sb)
    assert second.counts == _compared(after_first, after_second)
    assert second.counts.new == 3 and second.counts.changed >= 1

    third = sb.sync_ok()
    assert _rows(sb) == after_second
    assert third.counts == InvoiceCounts(0, 0, len(after_second), len(after_second))
    recorded = sb.query(
        "SELECT invoices_new, invoices_changed, invoices_unchanged, invoices_total "
        "FROM billing.sync_runs ORDER BY started_at"
    )
    counts = (first.counts, second.counts, third.counts)
    assert recorded == [(c.new, c.changed, c.unchanged, c.total) for c in counts]


@pytest.mark.parametrize(
    ("vendor_name", "invoices", "options"),
    [("exsited", 200, {"limit": 10}), ("revolv3", 40, {})],
    ids=["exsited", "revolv3"],
)
def test_only_invoices_an_incremental_sync_loaded_are_hashed_again(
    make_sandbox, vendor_name, invoices, options
) -> None:
    """Sources that read only what changed: the other invoices keep their first digest."""
    sb = make_sandbox(VENDORS[vendor_name], invoices=invoices)
    first = sb.sync_ok(**options)
    [(first_load, _)] = _digests(sb)
    _change_some(sb)
    second = sb.sync_ok(**options)
    reloaded = second.rows["invoices"] - second.counts.new  # read again, changed or not
    digests = dict(_digests(sb))
    assert digests[first_load] == first.counts.total - reloaded > first.counts.total // 2
    assert sum(digests.values()) == second.counts.total == first.counts.total + 3


def test_a_failed_sync_leaves_its_changes_to_the_next_count(make_sandbox) -> None:
    sb = make_sandbox(VENDORS["meteroid"], invoices=30)
    sb.sync_ok()
    before = _rows(sb)
    _change_some(sb)
    with environment({**sb.settings, "SOURCES__METEROID__API_KEY": "rotated"}):
        [failed] = sync([sb.vendor], sb.db)
    assert not failed.ok and failed.counts is None
    sb.ledger.pay(sorted(sb.ledger.find(OPEN), key=lambda inv: inv.id)[0].id)
    after = sb.sync_ok()
    assert after.counts == _compared(before, _rows(sb))
    assert after.counts.new == 3 and after.counts.changed >= 2


def test_a_warehouse_without_digests_compares_every_invoice_once(make_sandbox) -> None:
    """As after an upgrade from a version that kept none: the first count builds them."""
    sb = make_sandbox(VENDORS["exsited"], invoices=30)
    sb.sync_ok()
    before = _rows(sb)
    with duckdb.connect(str(sb.working_db)) as con:
        con.execute('DROP TABLE _invoice_sync."digests_exsited"')
    _change_some(sb)
    after = sb.sync_ok()
    assert after.counts == _compared(before, _rows(sb))
    assert after.counts.new == 3 and after.counts.changed >= 1


def test_a_full_refresh_counts_against_what_was_there(make_sandbox) -> None:
    sb = make_sandbox(VENDORS["sequence"], invoices=30)
    sb.sync_ok()
    before = _rows(sb)
    _change_some(sb)
    refreshed = sb.sync(full_refresh=True)
    assert refreshed.ok, refreshed.describe()
    after = _rows(sb)
    assert refreshed.counts == _compared(before, after)
    assert sum(count for _, count in _digests(sb)) == len(after)
