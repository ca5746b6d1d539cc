"""Entry points: the `invoice-sync` CLI, sync orchestration, view building, demo and sandbox.

Arrow's C++ code picks its allocator once, when pyarrow loads, from
`ARROW_DEFAULT_MEMORY_POOL`; `pyarrow.set_memory_pool` later changes only what pyarrow's
Python calls use. The parquet writers of dlt's extract and normalise steps allocate from the
C++ one: with arrow's bundled mimalloc it kept about 20 MB of their freed buffers for the
rest of the sync. So malloc is asked for here, before anything imports pyarrow, unless the
environment names an allocator (`allocate_so_that_freed_memory_returns` in `tuning.py`).

glibc gives a thread that allocates while others do a heap of its own, up to eight per
core, and a heap keeps its high-water mark resident: each of dlt's extract workers built
its batches in its own, and the extraction crept up over a long sync. Two heaps for all
threads lowered Meteroid's extraction from 205-213 MB to 194-202 MB at 20,000 invoices, at
the same speed. glibc fixes its limit once a process has more than eight heaps (a DuckDB
query alone added nine), so it is set here, unless `MALLOC_ARENA_MAX` is. So is the size from
which glibc maps a block on its own and unmaps it when freed: glibc raises it with each such
free, up to 32 MiB, after which the batches' arrow buffers were carved from the heaps of
five threads and a 200,000-invoice sync crept from 245 to 287 MB over 40 s; with the
threshold fixed at 128 KiB it stayed within 238-263 MB. `MALLOC_MMAP_THRESHOLD_` wins.
"""

import contextlib
import ctypes
import os

GLIBC_MALLOPT_SETTINGS = {  # environment variable: mallopt's parameter number, our value
    "MALLOC_ARENA_MAX": (-8, 2),
    "MALLOC_MMAP_THRESHOLD_": (-3, 128 * 1024),  # glibc's default, kept from rising
}

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
for variable, (parameter, value) in GLIBC_MALLOPT_SETTINGS.items():
    if variable not in os.environ:
        with contextlib.suppress(AttributeError, OSError):  # glibc only
            ctypes.CDLL(None).mallopt(parameter, value)
