"""A source that loses the API part-way keeps what it read.

A request that outlives its retries used to throw away the source's whole run: a first
Sequence sync of 20,000 invoices is 40,000 requests. A source whose state can describe a
prefix of its read (`sources/sequence/`) catches the failure, hands dlt what it read with
state for exactly that, and reports the failure here; the sync loads it, then reports the
source as failed with what was kept. The next sync reads on from there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

_lock = threading.Lock()
_stops: dict[str, PartWay] = {}


@dataclass(frozen=True)
class PartWay:
    error: BaseException
    kept: int  # invoices read before the failure, loaded with state saying so


def stopped_part_way(source: str, error: BaseException, kept: int) -> None:
    """Called by a source that ended its read early because of `error`."""
    with _lock:
        _stops[source] = PartWay(error, kept)


def take_part_way(source: str) -> PartWay | None:
    """How `source`'s last read stopped early, if it did; forgets it."""
    with _lock:
        return _stops.pop(source, None)
