"""Property: whatever happens between and during syncs, the warehouse ends equal to the truth,
today and on random past days (as far as the vendor's dates and the history can know them).

CI (where `CI` is set) runs 60 generated scenarios per vendor, the `ci` profile; a
developer's run uses 15 (`dev`). `HYPOTHESIS_PROFILE=ci` runs CI's amount anywhere. (CI ran
100 until the suite grew by the readers', point-in-time and PostgreSQL tests: 60 keeps the
whole run well under an hour on two cores.)

The same property holds on PostgreSQL, with fewer scenarios, as the rendering of the SQL and
the destination are what differ, not the sync: 15 per vendor in CI, 3 in a developer's run
(`POSTGRES_EXAMPLES`), each in a database of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings

from pipelines.destinations import PostgresDestination
from pipelines.registry import VENDORS
from tests.postgres import PostgresServer
from tests.scenarios import days_back, run_scenario, scenarios

# CI does not shrink: a failure is reported at once, with the example that failed.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
POSTGRES_EXAMPLES = {"ci": 15, "dev": 3}

# Small pages, so scenarios cross page boundaries and paging drift can show.
SOURCE_OPTIONS = {
    "meteroid": {"per_page": 3},
    "sequence": {"limit": 3},
    "exsited": {"limit": 3},
    "revolv3": {"page_size": 3},
    "press": {},
}
# Revolv3: some rows without attempts (completed from their detail), some without a stamp.
EMULATOR_OPTIONS = {"revolv3": {"null_attempts": 3}}


def check_scenarios(
    vendor_name: str,
    warehouse: Callable[[Path], PostgresDestination] | None = None,
    max_examples: int | None = None,
) -> None:
    """Generated scenarios for one vendor, into DuckDB files or the warehouses `warehouse`
    makes; as many as the profile says, or `max_examples`."""
    vendor = VENDORS[vendor_name]

    @given(steps=scenarios, days=days_back)
    # The very first sync stopped part-way, then an invoice leaves Press's snapshot: dlt would
    # have discarded the fetched data when the dataset did not exist yet (found by this test).
    @example(steps=[("killed_sync", "extract", 1), ("uncollectible", 0)], days=[30])
    @example(steps=[("killed_sync", "normalize", 1), ("void", 0)], days=[30])
    def check(steps: list[tuple], days: list[int]) -> None:
        run_scenario(
            vendor,
            steps,
            days_back=days,
            source_options=SOURCE_OPTIONS[vendor_name],
            emulator_options=EMULATOR_OPTIONS.get(vendor_name),
            warehouse=warehouse,
        )

    if max_examples is not None:
        check = settings(max_examples=max_examples)(check)
    check()


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
def test_warehouse_always_ends_equal_to_the_truth(vendor_name: str) -> None:
    check_scenarios(vendor_name)


@pytest.mark.parametrize("vendor_name", sorted(VENDORS))
def test_a_postgres_warehouse_always_ends_equal_to_the_truth(
    vendor_name: str, postgres_server: PostgresServer
) -> None:
    def warehouse(folder: Path) -> PostgresDestination:
        return PostgresDestination.from_url(
            postgres_server.create_database(), working_dir=folder / "working"
        )

    check_scenarios(vendor_name, warehouse, POSTGRES_EXAMPLES[settings.get_current_profile_name()])
