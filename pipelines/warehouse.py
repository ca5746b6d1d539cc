"""The warehouse readers open, and the private one a sync writes: publishing, adoption, locking.

DuckDB lets one process write a file, or many read it, never both. BI tools keep their
connections open all day, so a sync never writes the file at `--db`. It writes a private
working warehouse in the sync's working folder (`.<db name>.dlt/warehouse.duckdb`, beside
dlt's pipelines), and when it ends it publishes it: a checkpointed copy is written next to
`--db` and renamed over it. A rename is atomic: a reader that opens `--db` gets the old file
or the new one, whole; a reader that has the old file open keeps reading it (its inode lives
on until the last reader closes it) and sees the new data once it reconnects.

Only one sync of a warehouse runs at a time: it holds an exclusive `flock` on
`.<db name>.dlt/sync.lock` for the whole run. The kernel releases it when the process ends,
however it ends, so a killed sync never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
from dlt.common.runtime import signals

from pipelines.tuning import warehouse_connection

DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
DEFAULT_LOCK_WAIT = 600.0  # seconds a sync waits for another sync of the same warehouse
LOCK_POLL = 0.5  # seconds between attempts to take the lock


class WarehouseError(RuntimeError):
    """A problem with `--db` itself; the message is one line for the user."""


class SyncBusy(WarehouseError):
    """Another sync of this warehouse held the lock for longer than we could wait."""


@dataclass(frozen=True)
class Warehouse:
    """The published file at `--db` and the sync's private files beside it."""

    published: Path

    @classmethod
    def at(cls, db_path: str | Path) -> Warehouse:
        return cls(Path(db_path).expanduser().absolute())

    @property
    def folder(self) -> Path:
        """The sync's working folder: dlt's pipelines, the working warehouse, the lock."""
        return self.published.parent / f".{self.published.name}.dlt"

    @property
    def working(self) -> Path:
        return self.folder / "warehouse.duckdb"

    @property
    def lock_file(self) -> Path:
        return self.folder / "sync.lock"

    @property
    def demo_mark(self) -> Path:
        """A file the demo leaves in the working folder (`made_by_demo`)."""
        return self.folder / "made-by-demo"

    @property
    def staged_copy(self) -> Path:
        """Where the next published file is written before it is renamed over `published`."""
        return self.published.parent / f".{self.published.name}.publishing"


def is_duckdb_file(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False


def check_writable_location(warehouse: Warehouse) -> None:
    """Refuse, in one line, a `--db` a sync could not publish to."""
    path, parent = warehouse.published, warehouse.published.parent
    if path.is_dir():
        raise WarehouseError(
            f"--db {path} is a directory; pass a file name, e.g. {path / 'invoices.duckdb'}"
        )
    if not parent.is_dir():
        raise WarehouseError(
            f"--db {path}: the folder {parent} does not exist; create it or pass another --db"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WarehouseError(
            f"--db {path}: cannot write in {parent} (permission denied); pass a --db in a "
            "folder you can write to"
        )
    if path.exists() and path.stat().st_size and not is_duckdb_file(path):
        raise WarehouseError(
            f"--db {path} exists and is not a DuckDB database; pass another file name"
        )


def check_readable(path: str | Path) -> Path:
    """The published warehouse to read, or one line saying why there is none."""
    db = Path(path)
    if db.is_dir():
        raise WarehouseError(f"--db {db} is a directory, not a DuckDB database")
    if not db.exists():
        raise WarehouseError(
            f"no database at {db}: run `invoice-sync sync` or `invoice-sync demo` first"
        )
    if not is_duckdb_file(db):
        raise WarehouseError(f"--db {db} is not a DuckDB database")
    return db


def connect_read_only(path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse, or one line saying why not."""
    db = check_readable(path)
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.IOException as err:
        raise WarehouseError(f"cannot open {db}: {first_line(err)}") from None


DEMO_MARKER = "invoice_sync_demo"  # a schema the demo creates in its database


def made_by_demo(warehouse: Warehouse) -> bool:
    """Whether this warehouse (published, or only written so far) is the demo's.

    Asked before a sync takes the lock, so it never opens the working warehouse: a sync
    running would fail to open it for writing while we held it, even read-only. The published
    file carries the demo's schema; the working folder, a file that says so."""
    return warehouse.demo_mark.exists() or is_demo_warehouse(warehouse.published)


def is_demo_warehouse(path: str | Path) -> bool:
    """Whether the published warehouse at `path` was made by `invoice-sync demo`."""
    db = Path(path)
    if not db.is_file() or not is_duckdb_file(db):
        return False
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            [(found,)] = con.execute(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?",
                [DEMO_MARKER],
            ).fetchall()
    except duckdb.Error:
        return False
    return bool(found)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else error.__class__.__name__


# -- the lock ---------------------------------------------------------------------------------


def _holder(lock_file: Path) -> str:
    """Who holds the lock, as its holder wrote it: 'since 10:02 (pid 4711)'."""
    try:
        held = json.loads(lock_file.read_text())
        since = datetime.fromisoformat(held["since"]).astimezone().strftime("%Y-%m-%d %H:%M")
        return f"since {since} (pid {held['pid']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "(holder unknown)"


@contextlib.contextmanager
def sync_lock(
    warehouse: Warehouse,
    wait: float = DEFAULT_LOCK_WAIT,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold this warehouse's sync lock for the block, waiting up to `wait` seconds for it."""
    warehouse.folder.mkdir(exist_ok=True)
    fd = os.open(warehouse.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(warehouse.lock_file)
                if time.monotonic() >= deadline:
                    raise SyncBusy(
                        f"another invoice-sync sync of {warehouse.published.name} has been "
                        f"running {holder}; it still held the lock after {wait:.0f}s (set "
                        "--wait, or INVOICE_SYNC__LOCK_WAIT, to wait longer)"
                    ) from None
                if not told and on_wait is not None:
                    on_wait(
                        f"waiting for another sync of {warehouse.published.name}, running "
                        f"{holder} (up to {wait:.0f}s)"
                    )
                    told = True
                signals.raise_if_signalled()
                time.sleep(LOCK_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps(
                {"pid": os.getpid(), "since": datetime.now().astimezone().isoformat()}
            ).encode(),
            0,
        )
        yield
    finally:
        os.close(fd)  # releases the lock


# -- adoption and publishing ------------------------------------------------------------------


def adopt_published(warehouse: Warehouse, say: Callable[[str], None]) -> None:
    """Make a warehouse of an earlier version (where `--db` was written in place) the working
    warehouse: copied as it is, with its write-ahead log if it has one, so nothing is read
    from the APIs again and dlt's incremental state (stored in it) carries on."""
    if warehouse.working.exists() or not warehouse.published.exists():
        return
    if not warehouse.published.stat().st_size:
        return
    wal = warehouse.published.with_name(warehouse.published.name + ".wal")
    warehouse.folder.mkdir(exist_ok=True)
    staged = warehouse.working.with_name(warehouse.working.name + ".adopting")
    shutil.copyfile(warehouse.published, staged)
    if wal.exists():
        shutil.copyfile(wal, staged.with_name(warehouse.working.name + ".wal"))
    os.replace(staged, warehouse.working)
    say(
        f"{warehouse.published.name}: adopted as the working warehouse "
        f"({warehouse.working}); from now on syncs write there and publish {warehouse.published}"
    )


@dataclass
class Publication:
    seconds: float
    bytes: int


def publish(warehouse: Warehouse) -> Publication:
    """Checkpoint the working warehouse and put a copy of it at `published`, atomically.

    The copy is written next to `published` (same file system, so the rename is atomic),
    flushed to disk, then renamed over it. A sync killed part-way leaves the old file in
    place and a stale copy that the next publication overwrites.
    """
    started = time.monotonic()
    with warehouse_connection(warehouse.working) as con:  # under the sync's memory cap
        con.execute("CHECKPOINT")
    if warehouse.working.with_name(warehouse.working.name + ".wal").exists():
        raise WarehouseError(f"{warehouse.working} kept a write-ahead log after a checkpoint")
    staged = warehouse.staged_copy
    with warehouse.working.open("rb") as source, staged.open("wb") as target:
        shutil.copyfileobj(source, target, 16 * 2**20)
        target.flush()
        os.fsync(target.fileno())
    stale_wal = warehouse.published.with_name(warehouse.published.name + ".wal")
    with contextlib.suppress(FileNotFoundError):
        stale_wal.unlink()  # left by an earlier version's writer: it belongs to the old file
    os.replace(staged, warehouse.published)
    _fsync_folder(warehouse.published.parent)
    return Publication(time.monotonic() - started, warehouse.published.stat().st_size)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename is still atomic
    finally:
        os.close(fd)


def stderr_line(message: str) -> None:
    print(f"invoice-sync: {message}", file=sys.stderr, flush=True)
