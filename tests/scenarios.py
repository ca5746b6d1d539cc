"""Random billing histories interleaved with syncs, for property-based tests of every vendor.

A scenario is a list of steps: ledger changes (new invoices, payments, partial payments,
failed payments, voids, finalisations, write-offs, refunds), clean syncs, syncs during which
changes arrive after a given number of requests, and syncs killed at a given stage. After
every clean sync the warehouse must equal the emulator's ground truth invoice by invoice;
after a sync with changes arriving mid-way, nothing that existed when it started may be
missing and nothing may be doubled; a scenario always ends with a clean sync.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import strategies as st

from pipelines.destinations import Destination, as_destination
from pipelines.sandbox import environment
from pipelines.summary import SUMMARY_COLUMNS
from pipelines.sync import pipeline_for, sync
from sources.common.sandbox.ledger import DRAFT, OPEN, PAID, Ledger
from sources.common.sandbox.server import SandboxServer
from sources.common.sandbox.truth import ar_summary
from sources.common.vendor import Vendor

# A change: (name, which eligible invoice, as an index taken modulo their number).
CHANGES = ("create", "pay", "partial", "fail", "void", "finalize", "uncollectible", "refund")
KILL_STAGES = ("extract", "normalize", "requests")
SUMMARY_KEYS = SUMMARY_COLUMNS[2:]  # the figures, after source and currency

change = st.tuples(st.sampled_from(CHANGES), st.integers(0, 10_000))
# Past days to check after every sync, as days before the ledger's today (its seeded history
# goes back about 200 days).
days_back = st.lists(st.integers(1, 210), min_size=1, max_size=2)
step = st.one_of(
    change,
    change,
    st.just(("sync",)),
    st.tuples(
        st.just("sync_with_changes"), st.integers(1, 4), st.lists(change, min_size=1, max_size=3)
    ),
    st.tuples(st.just("killed_sync"), st.sampled_from(KILL_STAGES), st.integers(1, 4)),
)
scenarios = st.lists(step, min_size=1, max_size=8)


def apply_change(ledger: Ledger, name: str, pick: int) -> None:
    """Apply one change to an eligible invoice; a change nothing is eligible for does nothing."""
    eligible = {
        "pay": (OPEN,),
        "partial": (OPEN,),
        "fail": (OPEN,),
        "void": (DRAFT, OPEN),
        "finalize": (DRAFT,),
        "uncollectible": (OPEN,),
        "refund": (PAID,),
    }
    if name == "create":
        ledger.create_invoices(1 + pick % 3)
        return
    candidates = sorted(ledger.find(*eligible[name]), key=lambda inv: inv.id)
    if not candidates:
        return
    invoice = candidates[pick % len(candidates)]
    if name == "partial":
        ledger.pay(invoice.id, max(invoice.amount_due // 3, 1))
    else:
        action: Callable[[str], Any] = {
            "pay": ledger.pay,
            "fail": ledger.fail_payment,
            "void": ledger.void,
            "finalize": ledger.finalize,
            "uncollectible": ledger.mark_uncollectible,
            "refund": ledger.refund,
        }[name]
        action(invoice.id)


@dataclass
class Run:
    """One scenario's emulator, server and warehouse."""

    vendor: Vendor
    server: SandboxServer
    db: Path | Destination
    source_options: dict[str, Any]

    @property
    def emulator(self) -> Any:
        return self.server.mounts[0][1]

    @property
    def settings(self) -> dict[str, str]:
        return self.emulator.settings(self.server.base_url(self.emulator))

    def sync(self) -> bool:
        with environment(self.settings):
            [result] = sync(
                [self.vendor], self.db, source_options={self.vendor.name: self.source_options}
            )
        if result.ok:  # what the sync was served is what the warehouse now holds
            self.emulator.sync_landed()
        return result.ok

    def kill_sync(self, stage: str, after: int) -> None:
        """Stop a sync part-way, as a killed process would leave it."""
        with environment(self.settings):
            if stage == "requests":  # the network goes away after `after` requests
                self.emulator.after_requests(
                    after, lambda _: self.emulator.faults.inject(*["drop"] * 50)
                )
                [result] = sync(
                    [self.vendor], self.db, source_options={self.vendor.name: self.source_options}
                )
                if result.ok:  # a sync shorter than `after` never tripped it
                    self.emulator.sync_landed()
                self.emulator.cancel_scheduled()
                self.emulator.faults.queued.clear()
                return
            pipeline = pipeline_for(self.vendor.name, self.db)
            source = self.vendor.source(**self.source_options)
            pipeline.extract(source, loader_file_format=as_destination(self.db).loader_file_format)
            if stage == "normalize":
                pipeline.normalize()

    def connect_read_only(self) -> Any:
        if isinstance(self.db, Destination):
            return self.db.connect_read_only()
        return duckdb.connect(str(self.db), read_only=True)

    def loaded(self) -> dict[str, tuple]:
        con = self.connect_read_only()
        try:
            rows = con.execute(
                "SELECT invoice_id, status, currency, total, amount_paid, amount_due, due_date "
                "FROM billing.invoices WHERE source = ?",
                [self.vendor.name],
            ).fetchall()
        finally:
            con.close()
        by_id: dict[str, tuple] = {}
        for invoice_id, *values in rows:
            assert invoice_id not in by_id, f"{invoice_id} is doubled"
            by_id[invoice_id] = tuple(values)
        return by_id

    def truth(self) -> dict[str, tuple]:
        return {
            t.invoice_id: (t.status, t.currency, t.total, t.amount_paid, t.amount_due, t.due_date)
            for t in self.emulator.truth()
        }

    def check_past(self, days_back: list[int]) -> None:
        """On each of these past days, every invoice and the summary are what the vendor's
        dates and the warehouse's history can know (`Emulator.truth(as_of)`; the aging is
        tested against it per vendor in tests/test_point_in_time.py)."""
        con = self.connect_read_only()
        try:
            for back in days_back:
                day = self.emulator.ledger.today - timedelta(days=back)
                truth = self.emulator.truth(day)
                invoices = con.execute(
                    "SELECT invoice_id, status, amount_paid, amount_due "
                    "FROM billing.ar_invoices_at(?) WHERE source = ?",
                    [day, self.vendor.name],
                ).fetchall()
                assert {i: tuple(v) for i, *v in invoices} == {
                    t.invoice_id: (t.status, t.amount_paid, t.amount_due) for t in truth
                }, day
                summary = con.execute("SELECT * FROM billing.ar_summary_at(?)", [day]).fetchall()
                assert {
                    (r[0], r[1]): dict(zip(SUMMARY_KEYS, r[2:], strict=True)) for r in summary
                } == (ar_summary(truth, day)), day
        finally:
            con.close()


def run_scenario(
    vendor: Vendor,
    steps: list[tuple],
    *,
    days_back: list[int] = (),
    invoices: int = 8,
    seed: int = 3,
    source_options: dict[str, Any] | None = None,
    emulator_options: dict[str, Any] | None = None,
    warehouse: Callable[[Path], Destination] | None = None,
) -> None:
    """Play `steps` against a fresh emulator and warehouse (a DuckDB file, or what
    `warehouse(folder)` makes); assert after every sync (on the past days `days_back` too,
    after every sync that succeeded)."""
    ledger = vendor.make_ledger(seed=seed, invoices=invoices)
    emulator = vendor.emulator(ledger, None, **(emulator_options or {}))
    with tempfile.TemporaryDirectory() as folder, SandboxServer({"": emulator}) as server:
        db = warehouse(Path(folder)) if warehouse else Path(folder) / "w.duckdb"
        run = Run(vendor, server, db, source_options or {})
        for step in [*steps, ("sync",)]:
            kind = step[0]
            if kind in CHANGES:
                apply_change(ledger, kind, step[1])
            elif kind == "sync":
                assert run.sync(), "a clean sync failed"
                assert run.loaded() == run.truth()
                run.check_past(days_back)
            elif kind == "sync_with_changes":
                before = set(run.truth())
                for name, pick in step[2]:
                    emulator.after_requests(
                        step[1], lambda lg, n=name, p=pick: apply_change(lg, n, p)
                    )
                assert run.sync(), "a sync with changes arriving mid-way failed"
                missing = before - set(run.loaded())
                assert not missing, f"lost while paging: {sorted(missing)}"
                emulator.cancel_scheduled()
                run.check_past(days_back)
            elif kind == "killed_sync":
                run.kill_sync(step[1], step[2])
