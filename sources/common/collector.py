"""Python's cyclic garbage collector kept off the objects that live for the whole run.

A full collection walks every tracked object, and a sync triggers one every second or so:
each parsed page is a few thousand dicts that live long enough to be promoted. With dlt,
pyarrow and the schema loaded, a walk took 60-85 ms in a sync, and the sandbox's walk over
a 20,000-invoice ledger took up to 390 ms. Either pause holds the interpreter lock, so no
request goes out (or is answered) meanwhile: at 25 requests/s, every pause of a sync or its
sandbox showed as a gap in the requests the sandbox admitted.

`gc.freeze` moves every object alive now to a generation that collections skip; objects made
later are collected as before, and a frozen object that loses its last reference is still
freed at once. Only garbage cycles among frozen objects wait until `gc.unfreeze`, which the
outermost `objects_alive_now_frozen` calls on the way out.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0


@contextmanager
def objects_alive_now_frozen() -> Iterator[None]:
    """Within the block, full collections skip the objects alive when it began. Nests: the
    sandbox and a sync in one process each freeze, and only the last to leave unfreezes."""
    global _depth
    with _lock:
        gc.collect()
        gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
