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
- dlt normalises in one process unless `normalize.workers` is set (`normalize_workers` in
  `pipelines/sync.py`).
- dlt's extract workers keep up to 20 finished items waiting for the main thread; a
  finished item here is a batch of 1,000 invoices, so five are enough to keep the workers
  busy and keep memory flat.
- DuckDB may use 80% of the machine's memory by default, and dlt loads up to 20 files at once.
  The load needs far less: 128 MB and two files at a time keep a 200,000-invoice sync under
  400 MB, and DuckDB spills to disk beyond its limit instead of growing with the data.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
from typing import Any

import dlt
import pyarrow
from dlt.common.configuration.providers import CustomLoaderDocProvider

PROVIDER_NAME = "invoice-sync defaults"

DEFAULTS: dict[str, Any] = {
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
    "load": {"workers": 2},
    "destination": {
        "duckdb": {"credentials": {"global_config": {"memory_limit": "128MB"}}},
    },
}


def register_defaults() -> None:
    """Make DEFAULTS the fallback for every dlt setting they name (once per process)."""
    if any(p.name == PROVIDER_NAME for p in dlt.config.config_providers):
        return
    dlt.config.register_provider(
        CustomLoaderDocProvider(PROVIDER_NAME, lambda: DEFAULTS, supports_secrets=False)
    )


def release_freed_memory() -> None:
    """Hand memory that extraction freed back to the system before DuckDB loads.

    Python's allocator, glibc's and arrow's keep freed memory for reuse; DuckDB allocates its
    own, so what they keep would add to the load's peak (about 70 MB at 20,000 invoices).
    """
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(AttributeError, OSError):  # glibc only; elsewhere nothing to call
        ctypes.CDLL(None).malloc_trim(0)
