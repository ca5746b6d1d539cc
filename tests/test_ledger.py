"""The sandbox ledger's own behaviour (it is what every emulator serves)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sources.common.sandbox.ledger import DRAFT, OPEN, Ledger
from sources.common.sandbox.server import dump_json


def _random_changes_rebuilding_lists(ledger: Ledger, count: int) -> list[str]:
    """`Ledger.random_changes` as first written: the open and draft lists rebuilt for every
    change. The kept-current lists must pick exactly the same invoices."""
    done = []
    for _ in range(count):
        opens, drafts = ledger.find(OPEN), ledger.find(DRAFT)
        action = ledger.rng.choice(("create", "pay", "partial", "void", "finalize", "fail"))
        if action == "pay" and opens:
            done.append(f"paid {ledger.pay(ledger.rng.choice(opens).id).id}")
        elif action == "partial" and opens:
            invoice = ledger.rng.choice(opens)
            ledger.pay(invoice.id, max(invoice.amount_due // 2, 1))
            done.append(f"part-paid {invoice.id}")
        elif action == "void" and (opens or drafts):
            done.append(f"voided {ledger.void(ledger.rng.choice(opens + drafts).id).id}")
        elif action == "finalize" and drafts:
            done.append(f"finalized {ledger.finalize(ledger.rng.choice(drafts).id).id}")
        elif action == "fail" and opens:
            done.append(
                f"failed a payment on {ledger.fail_payment(ledger.rng.choice(opens).id).id}"
            )
        else:
            done.append(f"created {ledger.create_invoices(1)[0].id}")
    return done


def _state(ledger: Ledger) -> list[tuple]:
    return [
        (inv.id, inv.status, inv.version, inv.amount_due, len(inv.transactions))
        for inv in ledger.snapshot()
    ]


@pytest.mark.parametrize(
    ("seed", "invoices", "history", "changes"),
    [(1, 40, "mixed", 300), (9, 200, "mature", 150), (5, 3, "mixed", 60), (2, 0, "mixed", 20)],
)
def test_random_changes_pick_as_rebuilt_lists_would(
    seed: int, invoices: int, history: str, changes: int
) -> None:
    """Seeded data stays what it was (demo output, tests), only faster."""
    kept, rebuilt = (Ledger(seed=seed, invoices=invoices, history=history) for _ in range(2))
    done = kept.random_changes(changes)
    assert done == _random_changes_rebuilding_lists(rebuilt, changes)
    assert _state(kept) == _state(rebuilt)
    kinds = {line.split()[0] for line in done}
    assert kinds >= {"created", "paid", "voided"}  # the lists really changed under the picks


def test_the_sandbox_writes_decimals_as_json_numbers_with_their_digits() -> None:
    body = {"total": Decimal("150.0000"), "tax": Decimal("-0.10"), "name": "Café", "n": 3}
    assert dump_json(body) == '{"total":150.0000,"tax":-0.10,"name":"Café","n":3}'.encode()
