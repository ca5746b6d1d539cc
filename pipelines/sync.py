"""Runs vendors' dlt sources into one DuckDB file, then rebuilds the views.

One dlt pipeline per vendor, dataset named after the vendor. Its working folder sits beside
the database (`.<db name>.dlt/`), so a load that failed part-way is finished by the next run
and state always matches the warehouse it describes. Loading goes through parquet files:
dlt's default insert statements are far slower on nested invoices.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import requests
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.history import record_history
from pipelines.registry import VENDORS
from pipelines.runs import InvoiceCounts, count_changes, keep_digests, record_run
from pipelines.tuning import (
    allocate_so_that_freed_memory_returns,
    load_with_memory_headroom,
    out_of_memory,
    register_defaults,
    release_freed_memory,
    settings_lookups_unlogged,
    use_duckdb_merge_jobs,
    validate_with_type_hints_cached,
)
from pipelines.views import build_views
from sources.common.collector import objects_alive_now_frozen
from sources.common.columnar import batches_by_path
from sources.common.errors import SyncError, error_chain
from sources.common.http import counting_requests, http_failure
from sources.common.vendor import Vendor

DEFAULT_DB = "invoices.duckdb"


@dataclass
class SourceResult:
    vendor: str
    error: SyncError | None = None
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    requests: int = 0
    counts: InvoiceCounts | None = None
    # batches of pages converted, and how many of them record by record (the slow way)
    batches: int = 0
    record_batches: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        if self.error:
            return self.error.one_line()
        if self.counts is None:
            loaded = ", ".join(f"{n} {table}" for table, n in sorted(self.rows.items()))
            return f"{self.vendor}: synced in {self.seconds:.1f}s ({loaded or 'no changes'})"
        c = self.counts
        return (
            f"{self.vendor}: synced in {self.seconds:.1f}s with {self.requests} requests: "
            f"{c.new} new, {c.changed} changed, {c.unchanged} unchanged invoices ({c.total} in all)"
            f"{self._slow_path()}"
        )

    def _slow_path(self) -> str:
        if not self.record_batches:
            return ""
        return (
            f"; {self.record_batches} of {self.batches} batches of pages converted record by "
            "record, 3-4x slower (a value the column-by-column path does not convert: "
            f"sources/{self.vendor}/README.md)"
        )


def pipeline_for(vendor: str, db_path: str | Path) -> dlt.Pipeline:
    register_defaults()
    use_duckdb_merge_jobs()
    validate_with_type_hints_cached()
    allocate_so_that_freed_memory_returns()
    db = Path(db_path).resolve()
    return dlt.pipeline(
        pipeline_name=f"invoice_sync_{vendor}",
        destination=dlt.destinations.duckdb(str(db), replace_strategy="insert-from-staging"),
        dataset_name=vendor,
        pipelines_dir=str(db.parent / f".{db.name}.dlt"),
    )


def load_pending(pipeline: dlt.Pipeline) -> None:
    """Load what a sync stopped part-way left extracted or normalised, before reading again.

    As dlt's `run` does it, with two differences. State is compared with the destination
    only once a sync has landed: when the stopped sync was the first one, the dataset does
    not exist yet, and dlt takes that for a deleted warehouse and discards the working
    folder, with the invoices already fetched (Press serves some of them only once). And the
    load gets memory headroom: what stopped it may have been DuckDB running out of memory.
    """
    if pipeline.config.restore_from_destination and not pipeline.first_run:
        pipeline.sync_destination()
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    load_with_memory_headroom(pipeline)


def normalize_workers(pipeline: dlt.Pipeline) -> int:
    """How many normaliser processes to start: dlt's `normalize.workers` (1 unless set), but
    no more than the extracted files of the largest table, so a small sync never forks.

    Workers pay off for sources that dlt normalises from JSON (Press, Revolv3, Sequence): a
    second one made a 20,000-invoice sync ~15% faster on two cores for ~80 MB of memory.
    Meteroid and Exsited hand dlt arrow tables, which need almost no normalising.
    """
    wanted = int(dlt.config.get("normalize.workers") or 1)
    files: Counter[str] = Counter()
    for load_id in pipeline.list_extracted_load_packages():
        for job in pipeline.get_load_package_info(load_id).jobs["new_jobs"]:
            files[job.job_file_info.table_name] += 1
    return max(1, min(wanted, max(files.values(), default=1)))


def configured_value(vendor: str, key: str) -> Any:
    """A source setting from dlt's providers (environment, .dlt/*.toml), or None."""
    try:
        return dlt.secrets.get(f"sources.{vendor}.{key}") or dlt.config.get(
            f"sources.{vendor}.{key}"
        )
    except Exception:  # a provider that cannot parse a value is "not configured" here
        return None


def is_configured(vendor: Vendor) -> bool:
    return all(configured_value(vendor.name, key) for key in vendor.config_keys)


def configured_vendors() -> list[Vendor]:
    return [vendor for vendor in VENDORS.values() if is_configured(vendor)]


def _root_cause(error: BaseException) -> BaseException:
    """The first SyncError or requests error behind dlt's wrappers, else the innermost error."""
    last = error
    for current in error_chain(error):
        if isinstance(current, SyncError | requests.RequestException):
            return current
        last = current
    return last


def explain(vendor: Vendor, error: BaseException) -> SyncError:
    """One line for the user about why `vendor` failed to sync."""
    cause = _root_cause(error)
    if isinstance(cause, SyncError):
        return cause
    if isinstance(cause, requests.RequestException):
        return http_failure(
            vendor.name,
            cause,
            base_url=str(configured_value(vendor.name, "base_url")),
            credential_keys=list(vendor.credential_keys),
            extract_message=vendor.error_message,
        )
    if duckdb_message := out_of_memory(error):
        return SyncError(
            vendor.name,
            f"DuckDB ran out of memory: {duckdb_message[:200]}",
            "give DuckDB more memory, e.g. DESTINATION__DUCKDB__CREDENTIALS__"
            'GLOBAL_CONFIG=\'{"memory_limit": "1GB"}\'; the next sync completes this one',
        )
    if isinstance(cause, ConfigFieldMissingException):
        missing = ", ".join(f"SOURCES__{vendor.name.upper()}__{f.upper()}" for f in cause.fields)
        return SyncError(
            vendor.name,
            f"not configured: {missing} not set",
            "set them in .dlt/secrets.toml or the environment",
        )
    return SyncError(
        vendor.name,
        f"unexpected error: {cause.__class__.__name__}: {str(cause).splitlines()[0][:300]}",
        "please report this with the command you ran",
    )


def sync_vendor(
    vendor: Vendor, db_path: str | Path, full_refresh: bool = False, **source_options: Any
) -> SourceResult:
    """Sync one vendor; never raises for an expected failure (it is in the result)."""
    started = time.monotonic()
    result = SourceResult(vendor.name)
    converted_before = batches_by_path()
    try:
        source = vendor.source(**source_options)
        pipeline = pipeline_for(vendor.name, db_path)
        with (
            objects_alive_now_frozen(),
            settings_lookups_unlogged(),
            counting_requests(vendor.name) as requests_made,
        ):
            try:
                if pipeline.has_pending_data:
                    load_pending(pipeline)
                # dlt's `run`, step by step, to size the normaliser pool to what was extracted.
                if pipeline.config.restore_from_destination:
                    pipeline.sync_destination()
                pipeline.extract(
                    source,
                    loader_file_format="parquet",
                    write_disposition="replace" if full_refresh else None,
                )
            finally:
                result.requests = requests_made()
                converted = batches_by_path() - converted_before
                result.batches = converted.total()
                result.record_batches = converted["records"]
            normalize = pipeline.normalize(workers=normalize_workers(pipeline))
            release_freed_memory()
            load_with_memory_headroom(pipeline)
        if normalize is not None:
            result.rows = {
                table: count
                for table, count in normalize.row_counts.items()
                if not table.startswith("_dlt")
            }
    except (
        ConfigFieldMissingException,
        PipelineStepFailed,
        SyncError,
        requests.RequestException,
    ) as error:
        result.error = explain(vendor, error)
    result.seconds = time.monotonic() - started
    return result


def sync(
    vendors: Iterable[Vendor],
    db_path: str | Path = DEFAULT_DB,
    full_refresh: bool = False,
    source_options: dict[str, dict[str, Any]] | None = None,
) -> list[SourceResult]:
    """Sync each vendor in turn, rebuild every view (even if some vendor failed), and record
    each vendor's run in billing.sync_runs."""
    results, started = [], {}
    for vendor in vendors:
        keep_digests(db_path, vendor.name)
        started[vendor.name] = datetime.now(UTC)
        options = (source_options or {}).get(vendor.name, {})
        results.append(sync_vendor(vendor, db_path, full_refresh, **options))
    build_views(db_path, list(VENDORS))
    for result in results:
        if result.ok:
            result.counts = count_changes(db_path, result.vendor, full_refresh)
            record_history(db_path, result.vendor, started[result.vendor])
        record_run(
            db_path,
            result.vendor,
            started[result.vendor],
            started[result.vendor] + timedelta(seconds=result.seconds),
            full_refresh=full_refresh,
            requests=result.requests,
            counts=result.counts,
            error=result.error.one_line() if result.error else None,
        )
    return results
