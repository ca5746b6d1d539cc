"""Speed: dlt defaults we change, normaliser workers, read-ahead paging, sandbox caching."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import dlt.common.configuration.utils
import duckdb
import pyarrow
import pyarrow.compute
import pytest
import requests
from dlt.common.exceptions import DictValidationException
from dlt.common.schema.typing import TColumnSchema, TTableSchema
from dlt.common.validation import validate_dict_ignoring_xkeys
from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

import pipelines.destinations
import pipelines.runs
import pipelines.sync
import pipelines.views
from pipelines import tuning
from pipelines.sandbox import environment
from pipelines.tuning import PROVIDER_NAME, register_defaults
from sources.common import collector
from sources.common.collector import objects_alive_now_frozen
from sources.common.http import READ_AHEAD_SWITCH_INTERVAL, json_decoded_with, read_ahead
from sources.meteroid import VENDOR as METEROID
from sources.revolv3 import VENDOR as REVOLV3
from sources.sequence import VENDOR as SEQUENCE
from tests.clock import TODAY


def test_defaults_apply_but_user_settings_win(monkeypatch) -> None:
    register_defaults()
    register_defaults()  # once per process, however often called
    assert [p.name for p in dlt.config.config_providers].count(PROVIDER_NAME) == 1
    assert dlt.config.get("data_writer.disable_compression") is True
    assert dlt.config.get("sources.data_writer.buffer_max_items") == 500
    monkeypatch.setenv("SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS", "42")
    assert dlt.config.get("sources.data_writer.buffer_max_items", int) == 42


def test_duckdb_memory_is_capped(make_sandbox) -> None:
    sb = make_sandbox(METEROID, invoices=5)
    sb.sync_ok()
    pipeline = pipelines.sync.pipeline_for("meteroid", sb.db)
    with pipeline.sql_client() as client:
        [(limit, threads)] = client.execute_sql(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        )
    assert (limit, threads) == (_as_duckdb_shows("64MB"), 1)


def _as_duckdb_shows(limit: str) -> str:
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{limit}'")
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_the_cap_is_sized_for_duckdbs_threads() -> None:
    """What DuckDB cannot spill in a big INSERT grows with its threads; the sync runs one."""
    assert tuning.duckdb_memory_limit() == "64MB"
    assert tuning.duckdb_memory_limit(threads=4) == "160MB"
    assert tuning.DEFAULTS["destination"]["duckdb"]["credentials"]["global_config"] == {
        "threads": 1,
        "memory_limit": "64MB",
    }


def test_the_syncs_own_queries_run_under_the_same_cap(make_sandbox, monkeypatch) -> None:
    """Change counts, run records and views: DuckDB would otherwise take 80% of the memory."""
    limits: list[str] = []

    def spy(db_path: str | Path) -> Any:
        con = tuning.warehouse_connection(db_path)
        [(limit, threads)] = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchall()
        limits.append(f"{limit} on {threads}")
        return con

    monkeypatch.setattr(pipelines.destinations, "warehouse_connection", spy)
    sb = make_sandbox(METEROID, invoices=5)
    sb.sync_ok()
    # snapshot before, the views, counts after, the history, the run's record
    assert len(limits) == 5 and set(limits) == {f"{_as_duckdb_shows('64MB')} on 1"}
    limits.clear()
    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "256MB"}'
    )
    sb.sync_ok()
    assert len(limits) == 5 and {limit.split(" on ")[0] for limit in limits} == {"244.1 MiB"}
    assert sb.query("SELECT count(*) FROM billing.invoices") == [(5,)]


def test_a_load_checkpoints_once_as_it_ends_and_keeps_no_staged_rows(
    make_sandbox, monkeypatch
) -> None:
    """The staged rows are merged from memory and the write-ahead log, never written into the
    file: dlt empties the staging tables, then DuckDB checkpoints the merged ones."""
    log_sizes: list[int] = []
    load = dlt.Pipeline.load

    def spied(self: dlt.Pipeline, *args: Any, **kwargs: Any) -> Any:
        info = load(self, *args, **kwargs)
        log_sizes.append(Path(f"{sb.working_db}.wal").stat().st_size)
        return info

    monkeypatch.setattr(dlt.Pipeline, "load", spied)
    sb = make_sandbox(METEROID, invoices=300)
    sb.sync_ok()
    [log_size] = log_sizes
    assert log_size > 0  # the load's rows were in the log when dlt's load ended
    assert not Path(f"{sb.working_db}.wal").exists()  # and checkpointed once it had
    assert sb.query("SELECT count(*) FROM meteroid.invoices") == [(300,)]
    lines = sum(len(invoice.lines) for invoice in sb.ledger.snapshot())
    assert sb.query("SELECT count(*) FROM meteroid.invoices__line_items") == [(lines,)]
    staged = sb.query(
        "SELECT table_name, estimated_size FROM duckdb_tables() "
        "WHERE schema_name = 'meteroid_staging' AND table_name LIKE 'invoices%'"
    )
    assert len(staged) == 6 and {rows for _, rows in staged} == {0}


def test_dlt_looks_up_each_typeddicts_hints_once_and_still_validates(monkeypatch) -> None:
    looked_up: list[Any] = []
    lookup = tuning._DLT_GET_TYPE_HINTS
    monkeypatch.setattr(
        tuning,
        "_DLT_GET_TYPE_HINTS",
        lambda spec, *args, **kwargs: looked_up.append(spec) or lookup(spec, *args, **kwargs),
    )
    monkeypatch.setattr(tuning, "_TYPE_HINTS", {})
    tuning.validate_with_type_hints_cached()
    table = {
        "name": "invoices",
        "columns": {
            "id": {"name": "id", "data_type": "text", "nullable": False},
            "amount_due": {"name": "amount_due", "data_type": "decimal", "precision": 38},
        },
    }
    for _ in range(3):
        validate_dict_ignoring_xkeys(TTableSchema, table, "invoices")
    assert looked_up.count(TTableSchema) == 1 and looked_up.count(TColumnSchema) == 1
    table["columns"]["amount_due"]["data_type"] = "money"
    with pytest.raises(DictValidationException, match="data_type"):
        validate_dict_ignoring_xkeys(TTableSchema, table, "invoices")


@dlt.resource(name="rows", primary_key="id", write_disposition="merge")
def _numbered_rows(ids: range, version: str) -> Iterator[pyarrow.Table]:
    numbers = pyarrow.array(ids, pyarrow.int64())
    yield pyarrow.table(
        {"id": numbers, "x": pyarrow.compute.multiply(numbers, 2), "version": [version] * len(ids)}
    )


def test_a_merge_out_of_memory_part_way_through_its_deletes_loads_again_in_a_new_instance(
    tmp_path, monkeypatch, caplog, capfd
) -> None:
    """Replacing rows scattered over a big table can need more memory than the cap.

    Under 8 MB, this merge runs out of memory part-way through its DELETE; run again in the
    same DuckDB instance, even under 1 GB, every attempt fails with "Conflict on tuple
    deletion!" (DuckDB 2.0). The load stops at the first attempt and runs again in a new
    instance under twice the cap, until it passes.
    """
    pipeline = pipelines.sync.pipeline_for("merge_probe", tmp_path / "w.duckdb")
    pipeline.extract(_numbered_rows(range(1_000_000), "first"), loader_file_format="parquet")
    pipeline.normalize()
    tuning.load_with_memory_headroom(pipeline)

    monkeypatch.setenv(
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "8MB", "threads": 2}'
    )
    attempts: list[int] = []
    load = dlt.Pipeline.load
    monkeypatch.setattr(
        dlt.Pipeline, "load", lambda self, *a, **k: attempts.append(1) or load(self, *a, **k)
    )
    every_97th = _numbered_rows(range(0, 1_000_000, 97), "second")
    pipeline.extract(every_97th, loader_file_format="parquet")
    pipeline.normalize()
    tuning.load_with_memory_headroom(pipeline)

    assert len(attempts) >= 2
    with pipeline.sql_client() as client:
        counts = client.execute_sql("SELECT version, count(*) FROM rows GROUP BY 1 ORDER BY 1")
    assert counts == [("first", 1_000_000 - 10_310), ("second", 10_310)]
    assert not pipeline.has_pending_data
    # dlt's logger writes to stderr; whether pytest sees it there or as a log record depends
    # on when dlt set its handler up (xdist workers differ)
    warning = capfd.readouterr().err + caplog.text
    assert "DuckDB ran out of memory under 8 MiB loading invoice_sync_merge_probe" in warning
    assert "loading again under 15 MiB" in warning

    # the next load starts under the cap that passed, and runs once
    needed = pipeline.get_local_state_val(tuning.CAP_NEEDED_KEY)
    assert needed["configured"] == "8MB" and needed["bytes"] >= 15 * 2**20
    attempts.clear()
    every_89th = _numbered_rows(range(0, 1_000_000, 89), "third")
    pipeline.extract(every_89th, loader_file_format="parquet")
    pipeline.normalize()
    tuning.load_with_memory_headroom(pipeline)
    assert len(attempts) == 1
    with pipeline.sql_client() as client:
        [(third,)] = client.execute_sql("SELECT count(*) FROM rows WHERE version = 'third'")
    assert third == 11_236

    # a cap configured anew is not overridden by one raised from another
    assert tuning.cap_needed_before(pipeline, "8MB") == needed["bytes"]
    assert tuning.cap_needed_before(pipeline, "16MB") is None


def test_out_of_memory_is_explained_and_the_next_sync_completes(make_sandbox, monkeypatch) -> None:
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1MB"}')
    monkeypatch.setattr(tuning, "memory_ceiling", lambda: 2 * 2**20)  # give up after 2 MiB
    sb = make_sandbox(METEROID, invoices=300)
    result = sb.sync()
    assert result.error is not None
    message = result.error.one_line()
    assert message.startswith("meteroid: DuckDB ran out of memory: Out of Memory Error")
    assert "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG" in message
    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG")
    sb.sync_ok()
    assert sb.query("SELECT count(*) FROM billing.invoices") == [(300,)]
    assert sb.query("SELECT status FROM billing.sync_runs ORDER BY finished_at") == [
        ("failed",),
        ("succeeded",),
    ]


def test_freed_memory_is_released_before_the_load(make_sandbox, monkeypatch) -> None:
    steps: list[str] = []
    release = pipelines.sync.release_freed_memory
    monkeypatch.setattr(
        pipelines.sync, "release_freed_memory", lambda: steps.append("release") or release()
    )
    load = dlt.Pipeline.load
    monkeypatch.setattr(
        dlt.Pipeline, "load", lambda self, *a, **k: steps.append("load") or load(self, *a, **k)
    )
    sb = make_sandbox(METEROID, invoices=5)
    sb.sync_ok()
    assert steps == ["release", "load"]
    assert sb.query("SELECT count(*) FROM billing.invoices") == [(5,)]


def _collected_generations_hold(marker: object) -> bool:
    return any(any(o is marker for o in gc.get_objects(generation)) for generation in range(3))


def test_objects_alive_when_a_block_begins_are_frozen_until_the_outermost_block_ends(
    monkeypatch,
) -> None:
    monkeypatch.setattr(collector, "_depth", 0)  # whatever another test left running
    marker: list[int] = []
    with objects_alive_now_frozen():
        assert not _collected_generations_hold(marker)
        later: list[int] = []
        with objects_alive_now_frozen():
            pass
        assert not _collected_generations_hold(marker)  # the inner block does not unfreeze
        assert not _collected_generations_hold(later)  # it froze what was made since
    assert gc.get_freeze_count() == 0
    assert _collected_generations_hold(marker)


def test_the_sandbox_and_a_sync_keep_their_long_lived_objects_out_of_collections(
    make_sandbox, monkeypatch
) -> None:
    """A full collection's walk over them paused serving or syncing (`collector.py`)."""
    monkeypatch.setattr(collector, "_depth", 0)  # whatever another test left running
    frozen_while_extracting: list[int] = []
    extract = dlt.Pipeline.extract
    monkeypatch.setattr(
        dlt.Pipeline,
        "extract",
        lambda self, *a, **k: (
            frozen_while_extracting.append(gc.get_freeze_count()) or extract(self, *a, **k)
        ),
    )
    sb = make_sandbox(METEROID, invoices=5)
    serving = gc.get_freeze_count()
    assert serving > 0
    sb.sync_ok()
    assert frozen_while_extracting[0] > serving  # the sync froze what it had set up
    assert gc.get_freeze_count() > 0  # and left the sandbox's frozen
    sb.server.stop()
    assert gc.get_freeze_count() == 0
    assert sb.query("SELECT count(*) FROM billing.invoices") == [(5,)]


def test_a_sync_keeps_no_log_of_the_settings_it_looks_up(make_sandbox, monkeypatch) -> None:
    """Every file a sync writes looked its writer's settings up again, and dlt logged each
    lookup until the extraction ended: memory that grew with the invoices (tuning.py)."""
    in_step: list[str] = []
    for name in ("extract", "normalize", "load"):
        step = getattr(dlt.Pipeline, name)

        def stepping(self: dlt.Pipeline, *args: Any, _step: Any = step, **kwargs: Any) -> Any:
            in_step.append(_step.__name__)
            try:
                return _step(self, *args, **kwargs)
            finally:
                in_step.pop()

        monkeypatch.setattr(dlt.Pipeline, name, stepping)
    traces = dlt.common.configuration.utils.TraceLogContext
    logged: list[bool] = []  # for each lookup in a step of the sync, whether dlt logged it
    log = traces.log

    def spied_log(self: Any, trace: Any) -> None:
        if in_step and threading.current_thread() is threading.main_thread():
            logged.append(self.logging_enabled)
        log(self, trace)

    monkeypatch.setattr(traces, "log", spied_log)
    sb = make_sandbox(METEROID, invoices=40)
    sb.sync_ok()
    assert len(logged) >= 100  # the writers' settings, among others
    assert not any(logged)
    assert dlt.common.configuration.utils.get_resolved_traces().logging_enabled  # as it was
    assert sb.query("SELECT count(*) FROM billing.invoices") == [(40,)]


def test_a_sync_allocates_arrow_memory_with_malloc(make_sandbox, monkeypatch) -> None:
    """mimalloc, arrow's default, kept what the columnar conversion freed (pipelines/tuning.py)."""
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.setattr(pyarrow, "set_memory_pool", lambda pool: chosen.append(pool.backend_name))
    chosen: list[str] = []
    make_sandbox(METEROID, invoices=3).sync_ok()
    assert chosen == ["system"]
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")  # a user's choice wins
    chosen.clear()
    make_sandbox(METEROID, invoices=3).sync_ok()
    assert chosen == []


HEAPS_AFTER_A_DUCKDB_QUERY = """
import ctypes, os
import pipelines, duckdb
duckdb.connect().execute("SELECT 1").fetchall()  # without the limit, this added nine heaps
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
read, write = os.pipe()
stream = ctypes.c_void_p(libc.fdopen(write, b"w"))
libc.malloc_info(0, stream)
libc.fclose(stream)
print(os.read(read, 1 << 20).decode().count("<heap nr="))
"""


def _printed_by_a_new_interpreter(code: str, variable: str, value: str | None) -> str:
    """What `code` prints in a new Python run from the project, with `variable` set to
    `value` (None: unset)."""
    env = {name: setting for name, setting in os.environ.items() if name != variable}
    if value:
        env[variable] = value
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.parametrize(("configured", "most"), [(None, 2), ("1", 1)])
def test_importing_pipelines_limits_glibc_to_two_heaps(configured: str | None, most: int) -> None:
    """Extract workers share two malloc heaps instead of keeping one each at its high-water
    mark (pipelines/__init__.py). A user's MALLOC_ARENA_MAX wins. In a new interpreter:
    glibc fixes the limit once a process has more than eight heaps."""
    heaps = _printed_by_a_new_interpreter(
        HEAPS_AFTER_A_DUCKDB_QUERY, "MALLOC_ARENA_MAX", configured
    )
    assert 1 <= int(heaps) <= most


MAPPED_AFTER_A_BIGGER_BLOCK_WAS_FREED = """
import ctypes
import pipelines
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.mallinfo2.restype = Mallinfo2
libc.free(ctypes.c_void_p(libc.malloc(4 << 20)))  # glibc's own rule: threshold now 4 MiB
mapped = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblks - mapped)
"""


@pytest.mark.parametrize(("configured", "mapped"), [(None, "1"), (str(8 << 20), "0")])
def test_importing_pipelines_keeps_glibc_s_mmap_threshold_from_rising(
    configured: str | None, mapped: str
) -> None:
    """A 1 MiB block is mapped on its own even after a 4 MiB one was freed, so freeing it
    gives it back to the system (pipelines/__init__.py). A user's MALLOC_MMAP_THRESHOLD_
    wins: under 8 MiB, the block comes from a heap."""
    assert mapped == _printed_by_a_new_interpreter(
        MAPPED_AFTER_A_BIGGER_BLOCK_WAS_FREED, "MALLOC_MMAP_THRESHOLD_", configured
    )


@pytest.mark.parametrize(("configured", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_importing_pipelines_makes_arrow_s_cpp_code_allocate_with_malloc(
    configured: str | None, expected: str
) -> None:
    """dlt's parquet writers allocate from the pool arrow's C++ code picked when pyarrow loaded;
    with mimalloc, about 20 MB of their freed buffers stayed for the rest of the sync. A
    user's choice wins. In a new interpreter: this one loaded pyarrow long ago."""
    backend = _printed_by_a_new_interpreter(
        "import pipelines, pyarrow; print(pyarrow.default_memory_pool().backend_name)",
        "ARROW_DEFAULT_MEMORY_POOL",
        configured,
    )
    assert backend == expected


@pytest.mark.parametrize("copies", [1, 2])
def test_a_merge_keeps_one_copy_of_each_staged_row(make_sandbox, monkeypatch, copies) -> None:
    """A load job run again after a crash stages its rows twice; the merge keeps one of each.

    dlt 1.31's own merge SQL inserted such invoices twice (their nested rows were not):
    `MergeOfRowsStagedAgain` deduplicates both. Rows staged once are merged without
    deduplication by row id (`MergeOfRowsStagedOnce`), which is what every sync but a
    resumed one does.
    """
    sb = make_sandbox(METEROID, invoices=6)
    sb.sync_ok()
    tables = [
        name
        for (name,) in sb.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'meteroid' AND table_name LIKE 'invoices%'"
        )
    ]
    count = "SELECT count(*), count(DISTINCT _dlt_id) FROM meteroid.{}"
    before = {t: sb.query(count.format(t))[0] for t in tables}
    assert before["invoices"] == (6, 6) and before["invoices__line_items__sub_line_items"][0] > 0

    copy = DuckDbCopyJob.run
    monkeypatch.setattr(DuckDbCopyJob, "run", lambda job: [copy(job) for _ in range(copies)])
    answers: list[bool] = []
    check = tuning.rows_staged_once
    monkeypatch.setattr(
        tuning, "rows_staged_once", lambda *a: answers.append(check(*a)) or answers[-1]
    )
    pipeline = pipelines.sync.pipeline_for("meteroid", sb.db)
    with environment(sb.settings):
        pipeline.extract(METEROID.source(), loader_file_format="parquet")
    pipeline.normalize()
    pipeline.load()

    assert answers == [copies == 1]
    assert {t: sb.query(count.format(t))[0] for t in tables} == before
    [package] = pipeline.list_completed_load_packages()[-1:]
    [merge] = Path(pipeline.pipelines_dir).rglob(f"loaded/{package}/completed_jobs/*.sql")
    merge_sql = merge.read_text()
    assert 'partition BY "id" ORDER BY "updated_at" DESC' in merge_sql  # an invoice listed twice
    assert ('partition BY "_dlt_id"' in merge_sql) is (copies == 2)


def test_a_page_decoded_by_a_hook_is_freed_without_waiting_for_the_cycle_collector() -> None:
    """A page's body leaves memory as soon as the page is done, not when gc next runs."""
    response = requests.Response()
    response._content = b'{"data": [1, 2]}'
    json_decoded_with(lambda r: bytes(reversed(r.content)).decode())(response)
    assert response.json() == '}]2 ,1[ :"atad"{'
    freed = weakref.ref(response)
    gc.disable()
    try:
        del response
        assert freed() is None
    finally:
        gc.enable()


def test_read_ahead_keeps_requests_in_order_and_overlaps_the_work() -> None:
    events: list[str] = []
    lock = threading.Lock()

    def log(event: str) -> None:
        with lock:
            events.append(event)

    def pages() -> Iterator[int]:
        for page in range(4):
            log(f"request {page}")
            yield page

    for page in read_ahead(pages()):
        log(f"work {page}")
    requests = [e for e in events if e.startswith("request")]
    assert requests == [f"request {n}" for n in range(4)]
    for page in range(1, 4):  # a page is asked for only once the one before has arrived
        assert events.index(f"request {page}") > events.index(f"request {page - 1}")
        assert events.index(f"request {page}") < events.index(f"work {page}")


def test_read_ahead_switches_threads_often_while_it_runs() -> None:
    before = sys.getswitchinterval()
    seen = [sys.getswitchinterval() for _ in read_ahead(iter(range(2)))]
    assert seen == [READ_AHEAD_SWITCH_INTERVAL] * 2
    assert sys.getswitchinterval() == before


def test_read_ahead_passes_errors_on() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise ValueError("page 2 is malformed")

    got = []
    with pytest.raises(ValueError, match="page 2"):
        for page in read_ahead(pages()):
            got.append(page)
    assert got == [1]


@pytest.mark.parametrize(
    ("vendor", "options"),
    [(REVOLV3, {"page_size": 10}), (SEQUENCE, {"limit": 10})],
    ids=["revolv3", "sequence"],
)
def test_normaliser_workers_load_what_one_process_loads(
    make_sandbox, monkeypatch, vendor, options
) -> None:
    """With `normalize.workers` set and several extracted files of a source dlt normalises
    from JSON, dlt's worker pool normalises them; the warehouse must equal the ground truth."""
    chosen: list[int] = []
    original = pipelines.sync.normalize_workers

    def spy(pipeline: dlt.Pipeline) -> int:
        chosen.append(original(pipeline))
        return chosen[-1]

    monkeypatch.setattr(pipelines.sync, "normalize_workers", spy)
    monkeypatch.setenv("NORMALIZE__WORKERS", "2")
    monkeypatch.setenv("SOURCES__DATA_WRITER__FILE_MAX_ITEMS", "20")
    sb = make_sandbox(vendor, invoices=90)
    sb.sync_ok(**options)  # pages of 10 invoices, a new extracted file every 20
    assert chosen == [2]
    assert sb.summary_rows(TODAY) == sb.truth_summary(TODAY)
    assert sb.aging_rows(TODAY) == sb.truth_aging(TODAY)


def test_a_small_sync_stays_in_one_process(make_sandbox, monkeypatch) -> None:
    chosen: list[int] = []
    original = pipelines.sync.normalize_workers
    monkeypatch.setattr(
        pipelines.sync, "normalize_workers", lambda p: chosen.append(original(p)) or chosen[-1]
    )
    monkeypatch.setenv("NORMALIZE__WORKERS", "4")
    sb = make_sandbox(METEROID, invoices=30)
    sb.sync_ok()
    assert chosen == [1]  # one extracted file: forking workers would only cost time


def test_sandbox_lists_are_sorted_again_only_after_a_change() -> None:
    ledger = METEROID.make_ledger(seed=3, invoices=20)
    computed: list[int] = []

    def ordered() -> list[str]:
        computed.append(1)
        return sorted(inv.id for inv in ledger.snapshot())

    assert ledger.memo("ids", ordered) == ledger.memo("ids", ordered)
    assert len(computed) == 1
    ledger.create_invoices(2)
    assert len(ledger.memo("ids", ordered)) == 22
    assert len(computed) == 2


def test_every_replacement_of_dlt_code_matches_the_installed_dlt() -> None:
    """Fails when dlt changes under a replacement: check the replacement against the new dlt
    code, then update `DLT_CODE` and `DLT_CHECKED` (and the pin in pyproject.toml)."""
    import dlt as installed

    assert installed.__version__ == tuning.DLT_CHECKED
    for replacement, digests in tuning.DLT_CODE.items():
        found = tuple(tuning.source_digest(f) for f in tuning._dlt_code()[replacement])
        assert found == digests, f"dlt changed the code behind {replacement}"


def test_changed_dlt_code_is_left_in_place_with_one_warning(monkeypatch) -> None:
    from dlt.destinations.impl.duckdb.duck import DuckDbClient

    warnings: list[str] = []
    monkeypatch.setattr(tuning.logger, "warning", warnings.append)
    monkeypatch.setattr(DuckDbClient, "create_load_job", tuning._DLT_LOAD_JOB)
    monkeypatch.setitem(tuning.DLT_CODE, "out-of-memory load jobs", ("0" * 16,))
    monkeypatch.setattr(tuning, "_warned", set())
    tuning.use_duckdb_merge_jobs()
    tuning.use_duckdb_merge_jobs()
    assert DuckDbClient.create_load_job is tuning._DLT_LOAD_JOB  # dlt's own
    assert DuckDbClient.create_table_chain_completed_followup_jobs is tuning._duckdb_followup_jobs
    assert warnings == [
        f"dlt {tuning.dlt.__version__} changed code that invoice-sync replaces (out-of-memory "
        f"load jobs, written for dlt {tuning.DLT_CHECKED}): using dlt's own (pipelines/tuning.py)"
    ]
