"""Shared test machinery: a loopback sandbox per test, a real DuckDB file, ground truth helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.destinations import PostgresDestination
from pipelines.sandbox import environment
from pipelines.summary import SUMMARY_COLUMNS
from pipelines.sync import SourceResult, sync
from pipelines.warehouse import Warehouse
from sources.common.sandbox.ledger import Ledger
from sources.common.sandbox.server import Emulator, Faults, SandboxServer
from sources.common.sandbox.truth import ar_aging, ar_summary
from sources.common.vendor import Vendor
from tests.clock import TODAY
from tests.postgres import PostgresServer, PostgresUnavailable

# Fast retries in tests: real back-off would make fault tests slow, not more truthful.
os.environ.setdefault("RUNTIME__REQUEST_MAX_ATTEMPTS", "4")
os.environ.setdefault("RUNTIME__REQUEST_BACKOFF_FACTOR", "0.05")
os.environ.setdefault("RUNTIME__REQUEST_MAX_RETRY_DELAY", "2")
os.environ.setdefault("RUNTIME__REQUEST_TIMEOUT", "10")


@dataclass
class Sandbox:
    """One vendor's emulator on loopback, and a DuckDB file to sync it into."""

    vendor: Vendor
    emulator: Emulator
    server: SandboxServer
    db: Path | PostgresDestination

    @property
    def working_db(self) -> Path:
        """The private warehouse a sync writes (the published `db` is a copy of it)."""
        return Warehouse.at(self.db).working

    @property
    def ledger(self) -> Ledger:
        return self.emulator.ledger

    @property
    def settings(self) -> dict[str, str]:
        return self.emulator.settings(self.server.base_url(self.emulator))

    def sync(
        self, full_refresh: bool = False, landed_at: datetime | None = None, **source_options: Any
    ) -> SourceResult:
        """Sync this vendor into `db` and rebuild the views; returns the vendor's result.
        `landed_at`: when the emulator's truth takes the sync to have run (default now)."""
        with environment(self.settings):
            [result] = sync(
                [self.vendor],
                self.db,
                full_refresh,
                {self.vendor.name: source_options} if source_options else None,
            )
        if result.ok:  # what the sync was served is what the warehouse now holds
            self.emulator.sync_landed(landed_at)
        return result

    def sync_ok(self, landed_at: datetime | None = None, **source_options: Any) -> SourceResult:
        result = self.sync(landed_at=landed_at, **source_options)
        assert result.ok, result.describe()
        return result

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        if isinstance(self.db, PostgresDestination):
            con = self.db.connect_read_only()
        else:
            con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def summary_rows(self, as_of: date) -> dict[tuple[str, str], dict]:
        rows = self.query(
            "SELECT * FROM billing.ar_summary_at(CAST(? AS DATE))", [as_of.isoformat()]
        )
        keys = SUMMARY_COLUMNS[2:]  # the figures, after source and currency
        return {(r[0], r[1]): dict(zip(keys, r[2:], strict=True)) for r in rows}

    def aging_rows(self, as_of: date) -> dict[tuple[str, str, str], dict]:
        rows = self.query("SELECT * FROM billing.ar_aging_at(CAST(? AS DATE))", [as_of.isoformat()])
        return {(r[0], r[1], r[2]): {"invoice_count": r[3], "amount_due": r[4]} for r in rows}

    def truth_summary(self, as_of: date) -> dict:
        """The emulator's truth at the end of `as_of`, as the syncs so far can know it."""
        return ar_summary(self.emulator.truth(as_of), as_of)

    def truth_aging(self, as_of: date) -> dict:
        return ar_aging(self.emulator.truth(as_of), as_of)


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator:
    """make_sandbox(vendor, invoices=60, seed=7, faults=None, warehouse=None, **emulator_options)
    -> Sandbox; its warehouse a DuckDB file, or the PostgreSQL one given."""
    servers: list[SandboxServer] = []

    def make(
        vendor: Vendor,
        invoices: int = 60,
        seed: int = 7,
        faults: Faults | None = None,
        mount: str = "",
        warehouse: PostgresDestination | None = None,
        **options: Any,
    ) -> Sandbox:
        emulator = vendor.emulator(
            vendor.make_ledger(seed=seed, invoices=invoices, today=TODAY), faults, **options
        )
        server = SandboxServer({mount: emulator}).start()
        servers.append(server)
        db = warehouse or tmp_path / f"{vendor.name}-{len(servers)}.duckdb"
        return Sandbox(vendor, emulator, server, db)

    yield make
    for server in servers:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The property tests take minutes each: start them first so the workers share them."""
    items.sort(key=lambda item: "test_properties" not in item.nodeid)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test process (tests/postgres.py). Skipped, saying why,
    where none can be started, but under CI (`CI` set) that fails the tests instead."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {why}")
        pytest.skip(f"no PostgreSQL server could be started: {why}")
    yield server
    server.stop()


@pytest.fixture
def postgres(postgres_server: PostgresServer, tmp_path: Path) -> PostgresDestination:
    """A new, empty PostgreSQL warehouse, its working folder in the test's folder."""
    return PostgresDestination.from_url(
        postgres_server.create_database(), working_dir=tmp_path / "pg-working"
    )
