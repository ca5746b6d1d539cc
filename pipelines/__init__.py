"""Entry points: the `invoice-sync` CLI, sync orchestration, view building, demo and sandbox.

Arrow's C++ code picks its allocator once, when pyarrow loads, from
`ARROW_DEFAULT_MEMORY_POOL`; `pyarrow.set_memory_pool` later changes only what pyarrow's
Python calls use. The parquet writers of dlt's extract and normalise steps allocate from the
C++ one: with arrow's bundled mimalloc it kept about 20 MB of their freed buffers for the
rest of the sync. So malloc is asked for here, before anything imports pyarrow, unless the
environment names an allocator (`allocate_so_that_freed_memory_returns` in `tuning.py`).
"""

import os

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
