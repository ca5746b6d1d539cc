"""Runs vendors' dlt sources into the working warehouse, rebuilds the views, publishes.

One dlt pipeline per vendor, dataset named after the vendor. Pipelines and the working
warehouse share the sync's working folder beside the published database (`.<db name>.dlt/`,
`pipelines/warehouse.py`), so a load that failed part-way is finished by the next run and
state always matches the warehouse it describes. Loading goes through parquet files: dlt's
default insert statements are far slower on nested invoices.

The same runs into PostgreSQL or MotherDuck (`pipelines/destinations.py`): `sync` takes a
`Destination` where it takes a path; there is nothing to publish, the lock is the server's,
the working folder is local to the machine, and PostgreSQL loads CSV files with COPY.
"""

from __future__ import annotations

import errno
import json
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import requests
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.exceptions import SignalReceivedException
from dlt.common.runtime import signals
from dlt.common.runtime.collector import Collector, NullCollector
from dlt.common.storages import LoadStorage, LoadStorageConfiguration, NormalizeStorage
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.destinations import (
    DATABASE_ERRORS,
    Destination,
    DuckDBDestination,
    as_destination,
)
from pipelines.history import record_history
from pipelines.progress import Progress
from pipelines.registry import VENDORS
from pipelines.runs import InvoiceCounts, RunJournal, count_changes, keep_digests, record_run
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
from pipelines.views import ViewBuildError, build_views
from pipelines.warehouse import DEFAULT_LOCK_WAIT, Warehouse, first_line, publish
from sources.common.collector import objects_alive_now_frozen
from sources.common.columnar import batches_by_path
from sources.common.errors import SyncError, error_chain
from sources.common.http import counting_requests, http_failure, retries_reported_to
from sources.common.partial import PartWay, take_part_way
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
    interrupted: bool = False  # by SIGINT or SIGTERM
    views_failed: bool = False  # its data loaded, but the views could not be rebuilt

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        """As billing.sync_runs has it: succeeded, failed or interrupted."""
        if self.interrupted:
            return "interrupted"
        return "succeeded" if self.ok else "failed"

    def describe(self) -> str:
        if self.error:
            return self.error.one_line()
        if self.counts is None:
            loaded = ", ".join(f"{n} {table}" for table, n in sorted(self.rows.items()))
            return f"{self.vendor}: synced in {self.seconds:.1f}s ({loaded or 'no changes'})"
        c = self.counts
        return (
            f"{self.vendor}: synced in {self.seconds:.1f}s with {self.requests} "
            f"request{'' if self.requests == 1 else 's'}: "
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


def pipeline_name(vendor: str) -> str:
    return f"invoice_sync_{vendor}"


def pipeline_for(
    vendor: str, db_path: str | Path | Destination, progress: Collector | None = None
) -> dlt.Pipeline:
    """The vendor's dlt pipeline into the working warehouse of the one published at `db_path`,
    or into the destination given."""
    destination = as_destination(db_path)
    register_defaults()
    if isinstance(destination, DuckDBDestination):
        use_duckdb_merge_jobs()
    validate_with_type_hints_cached()
    allocate_so_that_freed_memory_returns()
    return dlt.pipeline(
        pipeline_name=pipeline_name(vendor),
        destination=destination.dlt_destination(),
        dataset_name=vendor,
        pipelines_dir=str(destination.folder),
        progress=progress or NullCollector(),
    )


def load(pipeline: dlt.Pipeline) -> None:
    """dlt's load: into a DuckDB file with memory headroom (`pipelines/tuning.py`)."""
    if pipeline.destination.destination_type == "dlt.destinations.duckdb":
        load_with_memory_headroom(pipeline)
    else:
        pipeline.load()


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
    load(pipeline)


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


def configured_vendors() -> list[Vendor]:
    """The sources `invoice-sync sync` syncs when none is named: those with every setting, and
    those with some of their credentials but not all they need, so that the sync says what is
    missing instead of leaving them out without a word."""
    wanted = []
    for vendor in VENDORS.values():
        settings = {key: configured_value(vendor.name, key) for key in vendor.config_keys}
        if all(settings.values()) or any(settings.get(key) for key in vendor.credential_keys):
            wanted.append(vendor)
    return wanted


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
    if warehouse := warehouse_failure(error):
        return SyncError(
            vendor.name,
            f"the warehouse failed: {warehouse}",
            "check that the database server is up and reachable; the next sync completes this one",
        )
    if duckdb_message := out_of_memory(error):
        return SyncError(
            vendor.name,
            f"DuckDB ran out of memory: {duckdb_message[:200]}",
            "give DuckDB more memory, e.g. DESTINATION__DUCKDB__CREDENTIALS__"
            'GLOBAL_CONFIG=\'{"memory_limit": "1GB"}\'; the next sync completes this one',
        )
    if disk := disk_full(error):
        return SyncError(vendor.name, f"the disk is full ({disk})", DISK_FULL_HINT)
    if isinstance(cause, ConfigFieldMissingException):
        missing = ", ".join(f"SOURCES__{vendor.name.upper()}__{f.upper()}" for f in cause.fields)
        return SyncError(
            vendor.name,
            f"not configured: {missing} not set",
            f"set {'them' if len(cause.fields) > 1 else 'it'} in .dlt/config.toml, "
            ".dlt/secrets.toml or the environment",
        )
    return SyncError(
        vendor.name,
        f"unexpected error: {cause.__class__.__name__}: {first_line(cause)[:300]}",
        "please report this with the command you ran",
    )


DISK_FULL_HINT = "free some space and run the sync again; it completes this one"


def warehouse_failure(error: BaseException) -> str | None:
    """The server's first line, if `error` came of the connection to a PostgreSQL warehouse
    failing (the server went away, refused, or ran out of room)."""
    import psycopg2

    for cause in error_chain(error):
        if isinstance(cause, psycopg2.OperationalError):
            return first_line(cause)[:300]
    return None


def disk_full(error: BaseException) -> str | None:
    """What ran out of space, if `error` came of a full disk; else None."""
    for cause in error_chain(error):
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return f"No space left on device: {cause.filename or 'writing the working files'}"
        if isinstance(cause, duckdb.Error) and "No space left on device" in str(cause):
            return first_line(cause)[:200]
    return None


def interruption(error: BaseException) -> Interrupted | None:
    """The SIGINT or SIGTERM behind `error`, however dlt wrapped it."""
    for cause in error_chain(error):
        if isinstance(cause, Interrupted):
            return cause
        if isinstance(cause, SignalReceivedException):
            return Interrupted(cause.signal_code)
        if isinstance(cause, KeyboardInterrupt):
            return Interrupted(signal.SIGINT)
    return None


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) or SIGTERM (what cron, systemd and Airflow send on a timeout) stopped
    the run. A BaseException, like KeyboardInterrupt, so that nothing that handles errors
    takes it for a source's failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.source: str | None = None  # the source being synced when it came

    @property
    def exit_status(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return (
            "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name
        )


def set_aside_damaged_packages(working: Path, source: str, say: Callable[[str], None]) -> None:
    """Move a pipeline's working folder aside if a pending load package in it is damaged.

    However it came about (a disk that filled up, two syncs of an earlier version writing one
    folder), a package without a readable schema can be neither loaded nor discarded by dlt,
    and would fail every later sync of the source. Setting the whole working folder aside
    makes dlt start the pipeline afresh from the state the warehouse holds, which describes
    exactly the data that landed: what the damaged package held is read again.
    """
    pending = [
        *(working / "normalize" / NormalizeStorage.EXTRACTED_FOLDER).glob("*"),
        *(working / "load" / LoadStorage.NORMALIZED_FOLDER).glob("*"),
    ]
    damaged = [p for p in pending if p.is_dir() and not _readable_json(p / "schema.json")]
    if not damaged:
        return
    aside = working.parent / "set-aside" / f"{working.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    aside.parent.mkdir(exist_ok=True)
    shutil.move(working, aside)
    say(
        f"{source}: set aside a damaged load package ({damaged[0].relative_to(working)} has "
        f"no readable schema.json) with its working folder, in {aside}; what it held is read "
        "again"
    )


def _readable_json(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def forget_loaded_packages(pipeline: dlt.Pipeline) -> None:
    """Delete the load packages dlt has loaded, through dlt's own storage class.

    dlt keeps each one (its data files, schema and state) for good, so the working folder
    grew with every hourly sync; its `load.delete_completed_jobs` removes only the data files.
    The warehouse holds all that a loaded package recorded (data, state, schema).
    """
    volume = str(Path(pipeline.working_dir) / "load")
    storage = LoadStorage(False, [], LoadStorageConfiguration(load_volume_path=volume))
    for load_id in pipeline.list_completed_load_packages():
        storage.delete_loaded_package(load_id)


def sync_vendor(
    vendor: Vendor,
    db_path: str | Path | Destination,
    full_refresh: bool = False,
    progress: Progress | None = None,
    **source_options: Any,
) -> SourceResult:
    """Sync one vendor; never raises for an expected failure (it is in the result).

    Raises `Interrupted` when SIGINT or SIGTERM stopped it.
    """
    started = time.monotonic()
    result = SourceResult(vendor.name)
    converted_before = batches_by_path()
    progress = progress or Progress(quiet=True)
    try:
        source = vendor.source(**source_options)
        destination = as_destination(db_path)
        working = destination.folder / pipeline_name(vendor.name)
        set_aside_damaged_packages(working, vendor.name, progress.say)
        pipeline = pipeline_for(vendor.name, destination, progress)
        take_part_way(vendor.name)  # a stale report of an earlier, failed extraction
        with (
            objects_alive_now_frozen(),
            settings_lookups_unlogged(),
            counting_requests(vendor.name) as requests_made,
            retries_reported_to(progress.retrying),
            progress.source(vendor.name, requests_made, full_refresh),
        ):
            try:
                if pipeline.has_pending_data:
                    load_pending(pipeline)
                # dlt's `run`, step by step, to size the normaliser pool to what was extracted.
                if pipeline.config.restore_from_destination:
                    pipeline.sync_destination()
                pipeline.extract(
                    source,
                    loader_file_format=destination.loader_file_format,
                    write_disposition="replace" if full_refresh else None,
                )
            finally:
                result.requests = requests_made()
                converted = batches_by_path() - converted_before
                result.batches = converted.total()
                result.record_batches = converted["records"]
            normalize = pipeline.normalize(workers=normalize_workers(pipeline))
            release_freed_memory()
            load(pipeline)
            forget_loaded_packages(pipeline)
        if normalize is not None:
            result.rows = {
                table: count
                for table, count in normalize.row_counts.items()
                if not table.startswith("_dlt")
            }
        if part_way := take_part_way(vendor.name):
            result.error = stopped_part_way_error(vendor, part_way)
    except (
        ConfigFieldMissingException,
        PipelineStepFailed,
        SyncError,
        requests.RequestException,
        OSError,
        *DATABASE_ERRORS,
    ) as error:
        if stop := interruption(error):
            raise stop from None
        result.error = explain(vendor, error)
    except KeyboardInterrupt as error:  # dlt's SignalReceivedException is one too
        raise interruption(error) from None
    result.seconds = time.monotonic() - started
    return result


def stopped_part_way_error(vendor: Vendor, part_way: PartWay) -> SyncError:
    """The failure that ended a read early, with what was kept of it."""
    failure = explain(vendor, part_way.error)
    return SyncError(
        vendor.name,
        f"{failure.message}; stopped part-way: the {part_way.kept} invoices read before it "
        "were loaded",
        "the next sync reads on from there",
    )


def interrupted_result(vendor: str, stop: Interrupted, seconds: float) -> SourceResult:
    return SourceResult(
        vendor,
        SyncError(
            vendor,
            f"interrupted by {stop.name}",
            "nothing half-done was kept; the next sync completes it",
        ),
        seconds=seconds,
        interrupted=True,
    )


def finish_source(
    db_path: Path | Destination, result: SourceResult, started_at: datetime, full_refresh: bool
) -> None:
    """After one source's sync: the views (if it loaded), its change counts, its row in
    billing.sync_runs."""
    if result.ok:
        try:
            build_views(db_path, list(VENDORS))
        except ViewBuildError as err:
            result.error = SyncError(
                result.vendor, f"{err}; the previous views were kept", "please report this"
            )
            result.views_failed = True
    if result.ok:
        result.counts = count_changes(db_path, result.vendor, full_refresh)
        record_history(db_path, result.vendor, started_at)
    record_run(
        db_path,
        result.vendor,
        started_at,
        started_at + timedelta(seconds=result.seconds),
        full_refresh=full_refresh,
        requests=result.requests,
        counts=result.counts,
        error=result.error.one_line() if result.error else None,
        status=result.status,
    )


def publish_unless_the_disk_is_full(warehouse: Warehouse, results: list[SourceResult]) -> None:
    """Publish the working warehouse; if the disk is too full for the copy, remove what was
    copied and, when a source already said the disk is full, leave it at that (the next sync
    publishes): one problem, one line."""
    try:
        publish(warehouse)
    except OSError as error:
        warehouse.staged_copy.unlink(missing_ok=True)
        said = any(result.error and result.error.hint == DISK_FULL_HINT for result in results)
        if not (disk_full(error) and said):
            raise


def sync(
    vendors: Iterable[Vendor],
    db_path: str | Path | Destination = DEFAULT_DB,
    full_refresh: bool = False,
    source_options: dict[str, dict[str, Any]] | None = None,
    *,
    progress: Progress | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> list[SourceResult]:
    """Sync each vendor in turn into the working warehouse, recording each run in
    billing.sync_runs, then publish the warehouse at `db_path` (pipelines/warehouse.py); or
    into the destination given (pipelines/destinations.py).

    One sync of a warehouse at a time: this waits up to `lock_wait` seconds for another
    (`SyncBusy` past it). On SIGINT or SIGTERM it records and publishes what was done, then
    raises `Interrupted`. Raises `WarehouseError` for a `db_path` it cannot use.
    """
    progress = progress or Progress(quiet=True)
    destination = as_destination(db_path)
    destination.check()
    with destination.lock(lock_wait, on_wait=progress.say):
        destination.adopt(progress.say)
        working = destination.sync_target
        journal = RunJournal(destination.folder / "runs-under-way.json")
        if journal.path.exists():
            journal.record_leftovers(working)
        results: list[SourceResult] = []
        stop: Interrupted | None = None
        for vendor in vendors:
            started_at, started = datetime.now(UTC), time.monotonic()
            journal.begin(vendor.name, started_at, full_refresh)
            options = (source_options or {}).get(vendor.name, {})
            try:
                keep_digests(working, vendor.name)
                result = sync_vendor(vendor, destination, full_refresh, progress, **options)
            except Interrupted as interrupted:
                stop = interrupted
                stop.source = vendor.name
                result = interrupted_result(vendor.name, stop, time.monotonic() - started)
            if result.error:
                journal.note(vendor.name, result.error.one_line())
            finish_source(working, result, started_at, full_refresh)
            journal.done(vendor.name)
            results.append(result)
            if not result.interrupted:  # the command says it was, in one line
                progress.result(result.describe(), result.ok)
            if stop is not None or signals.was_signal_received():
                stop = stop or Interrupted(signals.exception_for_signal().signal_code)
                break
        if not any(result.ok or result.views_failed for result in results):
            build_views(working, list(VENDORS))  # no source loaded: the billing schema, even so
        if isinstance(destination, DuckDBDestination):
            publish_unless_the_disk_is_full(destination.warehouse, results)
    if stop is not None:
        raise stop
    return results
