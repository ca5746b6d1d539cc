"""dlt settings tuned for syncing nested invoices into a local DuckDB file.

They are registered as dlt's last configuration provider, so anything a user sets in
`.dlt/config.toml` or the environment (`DATA_WRITER__BUFFER_MAX_ITEMS=...`) still wins, and
they apply wherever `invoice-sync` runs, not only beside this repository's `.dlt/` folder.
Measured with `benchmarks/performance.py` (README, "Performance"):

- dlt gzips its intermediate files by default; ours live a few seconds on local disk, so
  compression only costs time (a fifth of a 20,000-invoice Meteroid sync).
- Meteroid and Exsited hand dlt arrow tables (`sources/common/tables.py`), which dlt loads
  without its JSON normaliser. dlt adds `_dlt_load_id` to arrow rows only when asked; we
  ask, as JSON-normalised rows always carry it.
- dlt buffers 5,000 items per table before writing; one invoice item of a JSON source carries
  ~20 nested rows, so extraction buffers 500. An extracted file holds up to 25,000 items
  (invoices of a JSON source, rows of an arrow one): few load jobs, yet enough files for
  normaliser workers to share a big JSON sync. Normalised rows are written 5,000 to a parquet
  row group, and a new file starts every 250,000 rows, because a parquet writer keeps every
  row group's metadata until the file closes: with small groups in one endless file, memory
  grew with the number of invoices.
- Arrow allocates through malloc while syncing (`allocate_so_that_freed_memory_returns`),
  glibc's threshold for giving freed big blocks back is fixed, and threads share two malloc
  heaps (`pipelines/__init__.py`): with arrow's bundled mimalloc, glibc's rising threshold,
  or a heap per extract worker, what the columnar conversion of Meteroid's pages freed
  stayed with the process.
- dlt logs every setting it looks up until a step's trace ends, and each intermediate file
  looks up its writer's settings again: at 200,000 invoices the log held 47,000 lookups and
  pinned 20 MB, so a sync's steps run without it (`settings_lookups_unlogged`).
- dlt normalises in one process unless `normalize.workers` is set (`normalize_workers` in
  `pipelines/sync.py`).
- dlt's extract workers run up to 20 deferred items at once; an item here is a batch of
  1,000 invoices fetched and converted in a worker, so five are enough to keep the workers
  busy and keep memory flat (three slowed a Meteroid sync by a third). Sources stagger the
  first five (`sources.common.tables.PARALLEL_BATCHES`), so their conversions don't collide.
- DuckDB may use 80% of the machine's memory by default, and dlt loads up to 20 files at once.
  The load needs far less, and two files at a time; DuckDB spills to disk beyond its limit,
  but it keeps the blocks it read and wrote cached up to the limit, so a big sync's load sits
  at it. What a big INSERT cannot spill grows with DuckDB's threads (each builds its own
  row group): Exsited's 200,000-invoice merge mostly ran out of memory under 64 MB on two
  threads, and under 96 MB on eight. So the sync runs DuckDB on one thread
  (`DUCKDB_THREADS`), capped at 32 MB plus 32 MB a thread (`duckdb_memory_limit`: 64 MB).
  On two cores, one thread under 64 MB instead of two under 96 MB lowered Meteroid's
  200,000-invoice load from 293 MB to 253-258 MB, and slowed it from 11-12 s to 16-18 s (of
  a 65-85 s sync; the 20,000-invoice load, 0.1 s). 48 MB lowered full syncs of 20,000 and
  200,000 invoices by another 12-20 MB, but Meteroid's full sync of 1,000,000 then ran out
  of memory in its load (`benchmarks/README.md`, "2026-12-01, late morning"). Since the
  staged rows stay in the instance until the load's one checkpoint (`checkpointed_once`),
  its merges run out of memory under 64 MB too, and run again under 122 MiB
  (`load_with_memory_headroom`; "2026-12-02, early morning"). The sync's own queries
  (change counts, views) run under the same settings (`warehouse_connection`).
- A merge that deletes rows scattered over a big warehouse also holds DuckDB memory it cannot
  spill (about 10 bytes for every row of each 2,048-row vector it touches, until the
  transaction ends). At 1,000,000 invoices, replacing 1% of them picked at random across the
  history ran out of memory under 128 MB. A load that runs out of memory stops at once and
  is run again in a new DuckDB instance with twice the cap, up to half the machine's memory
  (`load_with_memory_headroom`), with a warning: in the same instance, the rows a rolled-back
  merge had begun to delete cannot be deleted again (`LoadJobOutOfMemory`). The cap that
  passed is kept in the pipeline's local state, and later loads start under it: at 1,000,000
  invoices every hourly load would otherwise fail a merge before passing.
- dlt closes DuckDB, which then checkpoints, whenever no load job holds a connection: once
  after the staging copies, writing the staged rows into the file for the merge to read back,
  where they stayed until the next sync. A connection held through the load
  (`checkpointed_once`) and dlt emptying the staging tables when a package is complete
  (`load.truncate_staging_dataset`) leave one checkpoint, of the merged tables: a
  20,000-invoice Meteroid load took 3.1-3.3 s instead of 3.9-4.2 s, a 200,000-invoice one
  28 s instead of 31 s, and their warehouse files were half as big (22 and 187 MB).
- dlt validates the table schema of every arrow item, looking up the type hints of the same
  TypedDicts again for each column; they are looked up once (`validate_with_type_hints_cached`).
- dlt's merge SQL is used with two changes. Rows that were staged once, as they are in every
  sync but one resumed after a crash, are not deduplicated by row id: that sorted step was
  most of the merge (`MergeOfRowsStagedOnce`; a 200,000-invoice load went from 33 s to 10 s).
  Rows staged twice are, and a load job run again after a crash no longer doubles invoices
  (`MergeOfRowsStagedAgain`).

Replacing dlt code is pinned to the dlt release it was written for (`DLT_CHECKED`, and the
pin in pyproject.toml): each replacement is made only if the dlt functions it replaces or
builds on still have the source they had then (`DLT_CODE`); otherwise dlt's own code runs,
with one warning, and `tests/test_tuning.py` fails until the replacement is checked again.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import hashlib
import inspect
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dlt
import dlt.common.validation
import duckdb
import pyarrow
import pyarrow.parquet
from dlt.common import logger
from dlt.common.configuration.providers import CustomLoaderDocProvider
from dlt.common.configuration.utils import get_resolved_traces
from dlt.common.destination.client import FollowupJobRequest, LoadJob, RunnableLoadJob
from dlt.common.destination.exceptions import DestinationTerminalException
from dlt.common.destination.typing import PreparedTableSchema
from dlt.common.pipeline import LoadInfo
from dlt.common.schema.typing import C_DLT_ID, TSortOrder
from dlt.common.schema.utils import get_columns_names_with_prop
from dlt.common.storages.load_package import LoadJobInfo
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.sql_client import SqlClientBase
from dlt.destinations.sql_jobs import SqlMergeFollowupJob
from dlt.pipeline.exceptions import PipelineStepFailed

from sources.common.errors import error_chain

PROVIDER_NAME = "invoice-sync defaults"
ESCAPED_ROW_ID = f'"{C_DLT_ID}"'  # how dlt names the row id column in DuckDB SQL


DUCKDB_THREADS = 1  # while syncing; DuckDB would run one per core


def duckdb_memory_limit(threads: int = DUCKDB_THREADS) -> str:
    """DuckDB's cap while syncing: 32 MB, and 32 MB for each thread it runs."""
    return f"{32 * (1 + threads)}MB"


DEFAULTS: dict[str, Any] = {
    # dlt's retrying HTTP client: 10 attempts, waits doubling from 1 s up to 60 s (4 minutes
    # in all), so a long sync outlives a passing outage instead of losing its run to it
    "runtime": {
        "request_max_attempts": 10,
        "request_backoff_factor": 1,
        "request_max_retry_delay": 60,
    },
    "data_writer": {"disable_compression": True},
    # extraction: invoices with their nested lists (JSON sources) or arrow tables
    "sources": {"data_writer": {"buffer_max_items": 500, "file_max_items": 25_000}},
    # normalisation: flat rows, written as parquet row groups of 5,000, files of 250,000;
    # arrow rows get a load id, as JSON-normalised rows do
    "normalize": {
        "data_writer": {"buffer_max_items": 5000, "file_max_items": 250_000},
        "parquet_normalizer": {"add_dlt_load_id": True},
    },
    # batches fetched by dlt's extract workers wait in memory until the main thread takes them
    "extract": {"max_parallel_items": 5},
    # the staging tables are emptied once their rows are merged (`checkpointed_once`)
    "load": {"workers": 2, "truncate_staging_dataset": True},
    "destination": {
        "duckdb": {
            "credentials": {
                "global_config": {"threads": DUCKDB_THREADS, "memory_limit": duckdb_memory_limit()}
            }
        },
    },
}


def register_defaults() -> None:
    """Make DEFAULTS the fallback for every dlt setting they name (once per process)."""
    if any(p.name == PROVIDER_NAME for p in dlt.config.config_providers):
        return
    dlt.config.register_provider(
        CustomLoaderDocProvider(PROVIDER_NAME, lambda: DEFAULTS, supports_secrets=False)
    )


DUCKDB_SETTINGS_KEY = "destination.duckdb.credentials.global_config"


def duckdb_settings() -> dict[str, Any]:
    """The DuckDB settings dlt loads under: DEFAULTS, unless configured otherwise."""
    register_defaults()
    return dict(dlt.config.get(DUCKDB_SETTINGS_KEY, dict) or {})


def warehouse_connection(db_path: str | Path) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse under the settings dlt loads under.

    Without them DuckDB may take 80% of the machine's memory: counting the changes of a
    1,000,000-invoice sync peaked at 406 MB. Set like dlt sets them (`SET GLOBAL` after
    connecting), so either may open the file first.
    """
    con = duckdb.connect(str(db_path))
    try:
        for name, value in duckdb_settings().items():
            con.execute(f"SET GLOBAL {name} = ?", [value])
    except duckdb.Error:
        con.close()
        raise
    return con


class MergeOfRowsStagedOnce(SqlMergeFollowupJob):
    """dlt's merge SQL without its deduplication by row id, for rows that were staged once.

    dlt numbers staged rows per row id (`ROW_NUMBER() OVER (PARTITION BY _dlt_id ORDER BY
    (SELECT NULL))`) and keeps the first, in case a load job ran twice. DuckDB sorts for that:
    17 s of a 33 s merge of 200,000 invoices, and the merge's peak memory. When the staging
    tables hold exactly the rows of the chain's load files (`rows_staged_once`), every row id
    is there once, and the rows are inserted as they are. Deduplication by primary key (an
    invoice listed twice while pages shifted) is kept: it is narrow and sorts on `dedup_sort`.
    """

    @classmethod
    def gen_select_from_dedup_sql(
        cls,
        table_name: str,
        primary_keys: Sequence[str],
        columns: Sequence[str],
        dedup_sort: tuple[str, TSortOrder] | None = None,
        condition: str | None = None,
        condition_columns: Sequence[str] | None = None,
        skip_dedup: bool = False,
    ) -> str:
        by_row_id = dedup_sort is None and list(primary_keys) == [ESCAPED_ROW_ID]
        return super().gen_select_from_dedup_sql(
            table_name,
            primary_keys,
            columns,
            dedup_sort,
            condition,
            condition_columns,
            skip_dedup or by_row_id,
        )


class MergeOfRowsStagedAgain(SqlMergeFollowupJob):
    """dlt's merge SQL, with the root rows of a table chain deduplicated like its nested rows.

    A merge can find rows staged twice: every row of a load job that ran again after a crash
    (its copy was committed, its completion was not recorded). For a root table with nested
    tables, dlt 1.31 picks one row id per primary key, then inserts every staged row with a
    picked id, so such invoices went in twice (their nested rows were deduplicated by row
    id). Here the root insert is deduplicated by row id as well. It rewrites dlt's statement
    for that insert; if a dlt upgrade changes its shape, `tests/test_tuning.py` fails
    (`test_a_merge_keeps_one_copy_of_each_staged_row`).

    dlt numbers rows `ORDER BY (SELECT NULL)` to keep any one; DuckDB sorts on it. `ORDER BY
    NULL` avoids the sort, but DuckDB then plans a hash-based step that does not spill: under
    a 128 MB cap it ran out of memory on 1,000,000 invoice rows. The sort spills to disk, so
    it stays, for this rare case only.
    """

    @classmethod
    def gen_merge_sql(
        cls, table_chain: Sequence[PreparedTableSchema], sql_client: SqlClientBase[Any]
    ) -> list[str]:
        statements = super().gen_merge_sql(table_chain, sql_client)
        if len(table_chain) == 1:  # dlt deduplicates a lone root table by its primary key
            return statements
        root = table_chain[0]
        escape = sql_client.escape_column_name
        table, staging = sql_client.get_qualified_table_names(root["name"])
        columns = [escape(name) for name in get_columns_names_with_prop(root, "name")]
        row_key = escape(
            cls.get_row_key_col(
                table_chain,
                root,
                sql_client.fully_qualified_dataset_name(),
                sql_client.fully_qualified_dataset_name(staging=True),
            )
        )
        into = f"INSERT INTO {table}({', '.join(columns)}) "
        plain = f"{into}SELECT {', '.join(columns)} FROM {staging} WHERE "
        return [
            into
            + cls.gen_select_from_dedup_sql(staging, [row_key], columns, condition=s[len(plain) :])
            if s.startswith(plain)
            else s
            for s in statements
        ]


def rows_staged_once(
    client: DuckDbClient,
    table_chain: Sequence[PreparedTableSchema],
    jobs: Sequence[LoadJobInfo],
) -> bool:
    """Whether each staging table of the chain holds exactly the rows of its load files.

    Every completed load job committed its rows at least once, so equal counts mean none did
    twice. Counting is cheap: DuckDB keeps table counts, parquet files keep theirs in the
    footer. Anything else (another file format, a file not found) answers no, and the merge
    deduplicates.
    """
    expected: Counter[str] = Counter()
    for job in jobs:
        path = _load_file(job.file_path)
        if job.job_file_info.file_format != "parquet" or path is None:
            return False
        expected[job.job_file_info.table_name] += pyarrow.parquet.read_metadata(path).num_rows
    with client.sql_client as sql_client:
        for table in table_chain:
            _, staging = sql_client.get_qualified_table_names(table["name"])
            [(staged,)] = sql_client.execute_sql(f"SELECT count(*) FROM {staging}")
            if staged != expected[table["name"]]:
                return False
    return True


def _load_file(path: str) -> Path | None:
    """The load file at `path`, or where it is while its job is still being completed.

    dlt asks for follow-up jobs before it moves the last job of a chain from `started_jobs`
    to `completed_jobs`, yet names it by where it is going.
    """
    done = Path(path)
    for candidate in (done, done.parent.parent / "started_jobs" / done.name):
        if candidate.is_file():
            return candidate
    return None


_DLT_FOLLOWUP_JOBS = DuckDbClient.create_table_chain_completed_followup_jobs


def _duckdb_followup_jobs(
    client: DuckDbClient,
    table_chain: Sequence[PreparedTableSchema],
    completed_table_chain_jobs: Sequence[LoadJobInfo] | None = None,
) -> list[FollowupJobRequest]:
    if table_chain[0]["write_disposition"] != "merge":
        return _DLT_FOLLOWUP_JOBS(client, table_chain, completed_table_chain_jobs)
    once = rows_staged_once(client, table_chain, completed_table_chain_jobs or ())
    merge = MergeOfRowsStagedOnce if once else MergeOfRowsStagedAgain
    return [merge.from_table_chain(table_chain, client.sql_client)]


def use_duckdb_merge_jobs() -> None:
    """Make dlt's DuckDB client merge with the jobs above (dlt 1.31 uses its generic one), and
    stop a load job that runs out of memory at once (`LoadJobOutOfMemory`).

    The same shape as dlt's own clients that need their own merge SQL (mssql, dremio). The
    root-row fix is to be reported upstream, then removed. Each replacement is made only if
    the dlt code it replaces or builds on is still what it was written for (`DLT_CODE`).
    """
    if dlt_code_unchanged("merge jobs"):
        DuckDbClient.create_table_chain_completed_followup_jobs = _duckdb_followup_jobs  # type: ignore[method-assign,assignment]
    if dlt_code_unchanged("out-of-memory load jobs"):
        DuckDbClient.create_load_job = _duckdb_load_job  # type: ignore[method-assign]


_DLT_GET_TYPE_HINTS = dlt.common.validation.get_type_hints


_TYPE_HINTS: dict[tuple[type, bool], dict[str, Any]] = {}


def _type_hints_once(
    spec: type, globalns: Any = None, localns: Any = None, include_extras: bool = False
) -> dict[str, Any]:
    if localns is not None:
        return _DLT_GET_TYPE_HINTS(spec, globalns, localns, include_extras)
    key = (spec, include_extras)
    if key not in _TYPE_HINTS:  # a race computes the same hints twice, harmlessly
        _TYPE_HINTS[key] = _DLT_GET_TYPE_HINTS(spec, globalns, None, include_extras)
    return dict(_TYPE_HINTS[key])


def validate_with_type_hints_cached() -> None:
    """Make dlt's `validate_dict` look up each TypedDict's type hints once per process.

    dlt validates every table schema it computes, for a column-wise item of every arrow item
    (it keeps no contract cache for arrow tables), and each validation calls Python's slow
    `get_type_hints` for the table's TypedDict and again for every column's (dlt marks it a
    TODO). A TypedDict's hints do not change: they are resolved once, in the names
    `validate_dict` passes the first time (its module's). 0.65 s less CPU in a 20,000-invoice
    Meteroid sync (16.6 s against 17.2 s, four interleaved pairs), all of it on dlt's main
    thread, which holds the interpreter lock that the extract workers' conversions wait for.
    """
    if dlt_code_unchanged("type hints looked up once"):
        dlt.common.validation.get_type_hints = _type_hints_once  # type: ignore[assignment]


class LoadJobOutOfMemory(DestinationTerminalException):
    """DuckDB ran out of memory in a load job.

    Terminal, so that dlt does not run the job again in the same DuckDB instance: after a
    transaction that ran out of memory part-way through its DELETEs is rolled back, DuckDB
    2.0 answers every later delete of those rows in that instance with "Conflict on tuple
    deletion!" (until the database is closed), whatever the cap. dlt stops the load, keeps
    the package pending with the job in it, and closes the database once its other jobs
    are done; `load_with_memory_headroom` then loads again in a new instance.
    """


_DLT_LOAD_JOB = DuckDbClient.create_load_job


def _duckdb_load_job(
    client: DuckDbClient,
    table: PreparedTableSchema,
    file_path: str,
    load_id: str,
    restore: bool = False,
) -> LoadJob:
    job = _DLT_LOAD_JOB(client, table, file_path, load_id, restore)
    if isinstance(job, RunnableLoadJob):
        job.run = functools.partial(_stop_when_out_of_memory, job.run)  # type: ignore[method-assign]
    return job


def _stop_when_out_of_memory(run: Callable[[], None]) -> None:
    try:
        run()
    except Exception as error:
        if out_of_memory(error):
            # DuckDB's first line only, not the chain: dlt logs this with its traceback
            raise LoadJobOutOfMemory(str(error).splitlines()[0]) from None
        raise


def load_with_memory_headroom(pipeline: dlt.Pipeline) -> LoadInfo:
    """dlt's load; if DuckDB runs out of memory, load again under twice the cap.

    Each attempt is a new `pipeline.load` in a block of its own (`checkpointed_once`), which
    opens the database anew (dlt closed it when the failed load ended), so the job that ran
    out of memory runs in a fresh DuckDB instance (`LoadJobOutOfMemory` says why it must).
    Jobs that completed stay completed. Gives up at half the machine's memory, raising
    dlt's error.

    A raised cap that let the load pass is remembered in the pipeline's local state, and the
    next load starts there, as long as the configured cap is still the one it was raised
    from: a warehouse that outgrew the cap once will outgrow it every hour, and each time a
    merge would fail part-way before passing.
    """
    # dlt keeps credentials passed to a load for the pipeline's later loads, so each load
    # passes its own settings, read afresh from the user's configuration and ours
    credentials: DuckDbCredentials = pipeline.destination_client().config.credentials
    settings = duckdb_settings()
    configured = settings.get("memory_limit")
    remembered = cap = cap_needed_before(pipeline, configured)
    if cap is not None:
        logger.info(
            f"Loading {pipeline.pipeline_name} under {cap / 2**20:.0f} MiB, which an earlier "
            f"load needed (configured: {configured})."
        )
    while True:
        credentials.global_config = (
            settings if cap is None else {**settings, "memory_limit": f"{cap // 2**20}MiB"}
        )
        try:
            with checkpointed_once(credentials.database):
                info = pipeline.load(credentials=credentials)
        except PipelineStepFailed as failure:
            if not out_of_memory(failure):
                raise
            tried = memory_bytes(credentials.global_config.get("memory_limit"))
            if tried >= memory_ceiling():
                raise
            cap = min(2 * tried, memory_ceiling())
            logger.warning(
                f"DuckDB ran out of memory under {tried / 2**20:.0f} MiB loading "
                f"{pipeline.pipeline_name}; loading again under {cap / 2**20:.0f} MiB. Later "
                f"loads start there; to start elsewhere, set memory_limit in "
                f"{DUCKDB_SETTINGS_KEY}."
            )
            continue
        if cap is not None and cap != remembered:  # raised in this load: write the state once
            remember_cap_needed(pipeline, configured, cap)
        return info


CAP_NEEDED_KEY = "duckdb_memory_limit_needed"  # in the pipeline's local state


def cap_needed_before(pipeline: dlt.Pipeline, configured: str | None) -> int | None:
    """The cap (bytes) an earlier load needed beyond `configured`, if it was raised from it."""
    try:
        remembered = pipeline.get_local_state_val(CAP_NEEDED_KEY)
    except KeyError:
        return None
    if remembered.get("configured") != configured:
        return None
    return int(remembered["bytes"])


def remember_cap_needed(pipeline: dlt.Pipeline, configured: str | None, needed: int) -> None:
    pipeline.set_local_state_val(CAP_NEEDED_KEY, {"configured": configured, "bytes": needed})


@contextlib.contextmanager
def checkpointed_once(database: str) -> Iterator[None]:
    """Keep the warehouse's DuckDB instance open through a load, which DuckDB then
    checkpoints once, as this block ends, with the staging tables already emptied.

    dlt closes DuckDB whenever no load job holds a connection, and DuckDB checkpoints as it
    closes (dlt sets no other checkpoint below 1 GB of write-ahead log). So the staged rows
    were written into the database file after the staging copies (0.7 s of a 20,000-invoice
    Meteroid load) only for the merge to read them back, and the file kept them until the
    next sync (184 of a 200,000-invoice warehouse's 368 MB). Held open, the load keeps its
    rows in memory (spilled to DuckDB's temporary files beyond its cap) and in the log; dlt
    empties the staging tables once the package is complete (`load.truncate_staging_dataset`),
    and the checkpoint as this connection closes writes the merged tables alone. A crash
    before it loses nothing: DuckDB replays the log on the next open.
    """
    con = warehouse_connection(database)
    try:
        yield
    finally:
        con.close()


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def memory_bytes(limit: str | None) -> int:
    """A DuckDB memory limit (`'96MB'`, `'1GiB'`; None for DuckDB's default) in bytes."""
    with duckdb.connect() as con:
        if limit is not None:
            con.execute("SET memory_limit = ?", [limit])
        [(setting,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    number, unit = setting.split()  # DuckDB reports e.g. '91.5 MiB'
    return int(float(number) * _UNITS[unit])


def memory_ceiling() -> int:
    """The most `load_with_memory_headroom` gives DuckDB: half the machine's memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def out_of_memory(error: BaseException) -> str | None:
    """DuckDB's message, if `error` came of DuckDB running out of memory; else None."""
    for cause in error_chain(error):
        if isinstance(cause, duckdb.OutOfMemoryException | LoadJobOutOfMemory):
            return str(cause).splitlines()[0]
    return None


def allocate_so_that_freed_memory_returns() -> None:
    """pyarrow's Python calls allocate with malloc, not arrow's bundled mimalloc.

    Meteroid's pages are converted with arrow compute in several threads
    (`sources/common/columnar.py`). mimalloc kept what they freed: the 20,000-invoice sync's
    peak went from 256 MB to 342 MB. Through malloc it is no higher than before, at the same
    speed. Importing `pipelines` asks the same of arrow's C++ code and sets glibc's malloc up
    (`pipelines/__init__.py`); this covers the case where pyarrow was imported first. A
    user's `ARROW_DEFAULT_MEMORY_POOL` wins.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system") == "system":
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def release_freed_memory() -> None:
    """Hand memory that extraction freed back to the system before DuckDB loads.

    Python's allocator, glibc's and arrow's keep freed memory for reuse; DuckDB allocates its
    own, so what they keep would add to the load's peak (about 70 MB at 20,000 invoices).
    """
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(AttributeError, OSError):  # glibc only; elsewhere nothing to call
        ctypes.CDLL(None).malloc_trim(0)


@contextlib.contextmanager
def settings_lookups_unlogged() -> Iterator[None]:
    """dlt does not log, for the pipeline's trace, the settings it looks up in this thread
    within the block.

    dlt logs every lookup of every setting until the trace ends, each with the configuration
    object it filled. Every intermediate file a sync opens looks up its writer's settings
    again, about 300 lookups: a 200,000-invoice Meteroid extraction opened 136 files and held
    47,000 lookups at the end, against 10,000 at 20,000 invoices. They were made all through
    the extraction, so Python could not give back the arenas its pages had filled: 59 instead
    of 49 (1 MiB each), and 20 MB more memory when the load began.
    """
    traces = get_resolved_traces()
    logging = getattr(traces, "logging_enabled", None)
    if logging is None:  # a dlt that keeps no such log, or calls it otherwise
        yield
        return
    traces.logging_enabled = False
    try:
        yield
    finally:
        traces.logging_enabled = logging


# -- what the replacements of dlt code above were written for ---------------------------------

DLT_CHECKED = "1.31.0"  # the dlt release they were written and measured against (pyproject)


def _dlt_code() -> dict[str, tuple[Callable[..., Any], ...]]:
    """Per replacement, the dlt functions it replaces or whose behaviour it builds on: the
    originals, captured at import, before any replacement."""
    return {
        "merge jobs": (
            _DLT_FOLLOWUP_JOBS,
            SqlMergeFollowupJob.gen_merge_sql.__func__,  # type: ignore[attr-defined]
            SqlMergeFollowupJob.gen_select_from_dedup_sql.__func__,  # type: ignore[attr-defined]
        ),
        "out-of-memory load jobs": (_DLT_LOAD_JOB,),
        "type hints looked up once": (dlt.common.validation.validate_dict,),
    }


# sha256 of each function's source in dlt 1.31.0, first 16 hex digits
DLT_CODE = {
    "merge jobs": ("302eb44819bcf276", "a56e54aeeccca15d", "b8886bb330f93b2f"),
    "out-of-memory load jobs": ("67f01df5f4e950e2",),
    "type hints looked up once": ("7e0b389b42c1f659",),
}
_warned: set[str] = set()


def source_digest(function: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def dlt_code_unchanged(replacement: str) -> bool:
    """Whether the dlt code `replacement` was written for is what is installed; if not, says
    so once, and the caller leaves dlt's own code in place."""
    found = tuple(source_digest(function) for function in _dlt_code()[replacement])
    if found == DLT_CODE[replacement]:
        return True
    if replacement not in _warned:
        _warned.add(replacement)
        logger.warning(
            f"dlt {dlt.__version__} changed code that invoice-sync replaces ({replacement}, "
            f"written for dlt {DLT_CHECKED}): using dlt's own (pipelines/tuning.py)"
        )
    return False
