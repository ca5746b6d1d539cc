"""Where the warehouse lives: a DuckDB file, a PostgreSQL database, or MotherDuck.

Everything that differs between them is here, behind one small interface that the sync, the
change counts, the views, `summary`, `report` and `query` use: how to connect (a DB-API
connection with DuckDB's `execute(sql, params)`), the SQL dialect of the views, the dlt
destination and the file format loaded into it, the lock that lets one sync of a warehouse run
at a time, and what a sync does when it ends (DuckDB: publish the file; elsewhere: nothing).

- DuckDB (`--db FILE`): as `pipelines/warehouse.py` describes. The sync writes a private
  working warehouse and publishes it atomically; a `flock` serialises syncs on one machine.
- PostgreSQL: dlt loads each vendor's schema, the views are built in the server's own dialect
  (`pipelines/dialects.py`). Readers are never blocked by a load: the server's MVCC gives
  each query a snapshot, and each dlt merge and each view rebuild is a transaction, so there
  is nothing to publish. One sync of a database at a time, from any machine: the sync holds
  a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own, which
  the server releases when that session ends, however it ends.
  dlt's working folders and the run journal are local to the machine that syncs, in a folder
  derived from the server and database (`working_folder`); dlt keeps its incremental state in
  the database as well, so a sync from another machine carries on from it.
- MotherDuck: DuckDB's dialect on a server; untested here (no account, no network).

Credentials are dlt's: `DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:pass@host:5432/db`
or `[destination.postgres] credentials = "..."` in `.dlt/secrets.toml`; the same for
`motherduck` (`md:database?motherduck_token=...`). Messages name a database without its
password (`label`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import dlt
import duckdb
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.runtime import signals

from pipelines.tuning import warehouse_connection
from pipelines.warehouse import (
    DEFAULT_LOCK_WAIT,
    LOCK_POLL,
    SyncBusy,
    Warehouse,
    WarehouseError,
    adopt_published,
    check_writable_location,
    connect_read_only,
    first_line,
    sync_lock,
)

DESTINATIONS = ("duckdb", "postgres", "motherduck")
DEFAULT_DESTINATION = "duckdb"
DESTINATION_KEY = "invoice_sync.destination"  # in .dlt/config.toml, or INVOICE_SYNC__DESTINATION
WORKING_DIR_KEY = "invoice_sync.working_dir"


class DatabaseError(RuntimeError):
    """A statement failed on a server (not DuckDB); the message is the server's first line."""


class MissingObject(DatabaseError):
    """The statement names a table, view, function or schema that does not exist."""


# What a failed statement raises, on any destination; and when it named something missing.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (duckdb.Error, DatabaseError)
MISSING_OBJECT: tuple[type[BaseException], ...] = (duckdb.CatalogException, MissingObject)


class Destination:
    """One warehouse, wherever it lives; see the module's docstring."""

    name: ClassVar[str]
    dialect: ClassVar[str]  # of the views and of the queries the code sends: duckdb or postgres
    loader_file_format: ClassVar[str]  # what dlt writes and loads

    @property
    def label(self) -> str:
        """How messages name the warehouse: never with a password."""
        raise NotImplementedError

    @property
    def folder(self) -> Path:
        """The sync's working folder: dlt's pipelines and the journal of runs under way."""
        raise NotImplementedError

    @property
    def sync_target(self) -> Path | Destination:
        """What the sync's own queries (views, counts, runs) connect to."""
        return self

    def connect(self) -> Any:
        """A read-write connection for the sync's own queries."""
        raise NotImplementedError

    def connect_read_only(self) -> Any:
        """A connection for readers (`summary`, `report`, `query`), or one line why not."""
        raise NotImplementedError

    def dlt_destination(self) -> Any:
        raise NotImplementedError

    def check(self) -> None:
        """Refuse, in one line, a warehouse a sync cannot use, before anything is read."""

    def lock(
        self, wait: float = DEFAULT_LOCK_WAIT, on_wait: Callable[[str], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def adopt(self, say: Callable[[str], None]) -> None:
        """Take over what an earlier version left (DuckDB: a warehouse written in place)."""


@dataclass(frozen=True)
class DuckDBDestination(Destination):
    """A DuckDB file that readers open; syncs write a private copy and publish it."""

    warehouse: Warehouse
    name: ClassVar[str] = "duckdb"
    dialect: ClassVar[str] = "duckdb"
    loader_file_format: ClassVar[str] = "parquet"

    @property
    def label(self) -> str:
        return str(self.warehouse.published)

    @property
    def folder(self) -> Path:
        return self.warehouse.folder

    @property
    def sync_target(self) -> Path:
        return self.warehouse.working

    def connect(self) -> duckdb.DuckDBPyConnection:
        return warehouse_connection(self.warehouse.working)

    def connect_read_only(self) -> duckdb.DuckDBPyConnection:
        return connect_read_only(self.warehouse.published)

    def dlt_destination(self) -> Any:
        return dlt.destinations.duckdb(
            str(self.warehouse.working), replace_strategy="insert-from-staging"
        )

    def check(self) -> None:
        check_writable_location(self.warehouse)

    def lock(
        self, wait: float = DEFAULT_LOCK_WAIT, on_wait: Callable[[str], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        return sync_lock(self.warehouse, wait, on_wait)

    def adopt(self, say: Callable[[str], None]) -> None:
        adopt_published(self.warehouse, say)


def configured_credentials(configuration: type, name: str, example: str) -> Any:
    """A destination's credentials, resolved by dlt from the environment and .dlt/ (as its
    pipelines resolve them), or one line saying how to set them."""
    try:
        return resolve_configuration(
            configuration()._bind_dataset_name(dataset_name="billing"),
            sections=("destination", name),
        ).credentials
    except ConfigurationException:
        raise WarehouseError(
            f"--destination {name}: no credentials; set DESTINATION__{name.upper()}__CREDENTIALS="
            f"{example} (or credentials under [destination.{name}] in .dlt/secrets.toml)"
        ) from None


def as_destination(target: str | Path | Destination) -> Destination:
    """A destination as given, or the DuckDB warehouse published at a path."""
    if isinstance(target, Destination):
        return target
    return DuckDBDestination(Warehouse.at(target))


def open_for_sync(target: str | Path | Destination) -> Any:
    """The sync's own connection (views, counts, runs, history): to the DuckDB file at a path,
    under the sync's memory cap, or to the destination."""
    if isinstance(target, Destination):
        return target.connect()
    return warehouse_connection(target)


def open_read_only(target: str | Path | Destination) -> Any:
    """A reader's connection: to the DuckDB file published at a path, or to the destination."""
    if isinstance(target, Destination):
        return target.connect_read_only()
    return connect_read_only(target)


def describe(target: str | Path | Destination) -> str:
    """How messages name a warehouse: the path as given, or the destination's label."""
    return target.label if isinstance(target, Destination) else str(target)


def dialect_of(target: str | Path | Destination) -> str:
    """The dialect of what a sync's query connects to: a path is a DuckDB file."""
    return target.dialect if isinstance(target, Destination) else "duckdb"


# -- PostgreSQL -------------------------------------------------------------------------------

# Errors whose statement named something missing: undefined table, function, schema, column.
_MISSING_SQLSTATES = {"42P01", "42883", "3F000"}
_PLACEHOLDER = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")|(\?)|\$(\d+)|(%)""")


def pyformat(sql: str, params: Sequence[Any]) -> tuple[str, Any]:
    """DuckDB's placeholders (`?`, `$1`) as psycopg2's (`%s`, `%(1)s`), `%` escaped; quoted
    text is left as it is."""
    numbered = False

    def swap(match: re.Match) -> str:
        nonlocal numbered
        quoted, question, number, percent = match.groups()
        if quoted:
            return quoted.replace("%", "%%")
        if question:
            return "%s"
        if number:
            numbered = True
            return f"%({number})s"
        return "%%" if percent else match.group(0)

    converted = _PLACEHOLDER.sub(swap, sql)
    if numbered:
        return converted, {str(i + 1): value for i, value in enumerate(params)}
    return converted, list(params)


class PostgresConnection:
    """A psycopg2 connection that answers like DuckDB's: `execute(sql, params)` returns a
    cursor, with `?` or `$1` placeholders; each statement commits on its own unless a
    `BEGIN` opened a transaction; errors are `DatabaseError` (or `MissingObject`)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.raw.autocommit = True

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        import psycopg2

        cursor = self.raw.cursor()
        try:
            if params:
                cursor.execute(*pyformat(sql, params))
            else:
                cursor.execute(sql)
        except psycopg2.Error as err:
            kind = MissingObject if err.pgcode in _MISSING_SQLSTATES else DatabaseError
            detail = getattr(err.diag, "message_detail", None)
            error = kind(first_line(err) + (f" ({first_line(detail)})" if detail else ""))
            error.pgcode = err.pgcode  # type: ignore[attr-defined]
            raise error from None
        return cursor

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def xdg_state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


def working_folder(kind: str, host: str, port: int | None, database: str) -> Path:
    """This machine's working folder for a warehouse on a server: `invoice_sync.working_dir`
    if set, else `$XDG_STATE_HOME/invoice-sync/<kind>/<host>-<port>/<database>` (by default
    under `~/.local/state`), the same wherever the command runs from (cron, systemd or a shell)."""
    configured = dlt.config.get(WORKING_DIR_KEY)
    if configured:
        return Path(str(configured)).expanduser().absolute()
    server = re.sub(r"[^\w.-]", "_", f"{host}-{port}" if port else host)
    return xdg_state_home() / "invoice-sync" / kind / server / re.sub(r"[^\w.-]", "_", database)


# the advisory lock a sync holds: one per database, so syncs from any machine serialise
SYNC_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"invoice-sync sync").digest()[:8], "big", signed=True
)
# the server drops a lock holder whose machine vanished after about a minute and a half
LOCK_SESSION_SETTINGS = {
    "tcp_keepalives_idle": "60",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
    "idle_session_timeout": "0",  # PostgreSQL 14+: a server-wide timeout must not end the lock
}


@dataclass(frozen=True)
class PostgresDestination(Destination):
    """A PostgreSQL database: one schema per vendor, `staging` and `billing` views."""

    credentials: Any = field(repr=False)  # dlt's PostgresCredentials
    working_dir: Path | None = None
    name: ClassVar[str] = "postgres"
    dialect: ClassVar[str] = "postgres"
    loader_file_format: ClassVar[str] = "csv"  # COPY; parquet would need an ADBC driver

    @classmethod
    def from_config(cls, working_dir: Path | None = None) -> PostgresDestination:
        """From dlt's configuration (environment, .dlt/secrets.toml), or one line why not."""
        from dlt.destinations.impl.postgres.configuration import PostgresClientConfiguration

        credentials = configured_credentials(
            PostgresClientConfiguration, "postgres", "postgresql://user:password@host:5432/database"
        )
        return cls(credentials, working_dir)

    @classmethod
    def from_url(cls, url: str, working_dir: Path | None = None) -> PostgresDestination:
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        credentials = PostgresCredentials()
        credentials.parse_native_representation(url)
        return cls(credentials, working_dir)

    @property
    def label(self) -> str:
        c = self.credentials
        return f"postgresql://{c.username}@{c.host}:{c.port or 5432}/{c.database}"

    @property
    def folder(self) -> Path:
        if self.working_dir is not None:
            return self.working_dir
        c = self.credentials
        return working_folder("postgres", c.host, c.port or 5432, c.database)

    def _raw(self, **options: Any) -> Any:
        import psycopg2

        try:
            return psycopg2.connect(
                self.credentials.to_native_representation(),
                **{"application_name": "invoice-sync", **options},
            )
        except psycopg2.Error as err:
            raise WarehouseError(f"cannot connect to {self.label}: {_one_line(err)}") from None

    def connect(self) -> PostgresConnection:
        """For the sync: in UTC, so that digests of timestamps (pipelines/runs.py) do not
        depend on where the sync runs."""
        return PostgresConnection(self._raw(options="-c TimeZone=UTC"))

    def connect_read_only(self) -> PostgresConnection:
        """Read-only, and one snapshot per transaction (a report reads in one)."""
        con = PostgresConnection(self._raw())
        con.execute(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        )
        return con

    def dlt_destination(self) -> Any:
        # replace from staging: a full refresh swaps the rows in one transaction, so readers
        # never see an empty table, and our views on the tables survive (no table is dropped)
        return dlt.destinations.postgres(
            credentials=self.credentials, replace_strategy="insert-from-staging"
        )

    def check(self) -> None:
        self._raw().close()
        self.folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(
        self, wait: float = DEFAULT_LOCK_WAIT, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the database's sync lock for the block, waiting up to `wait` seconds for it.

        A session-level advisory lock on a connection of its own: the server releases it when
        the session ends (the process exits or is killed; a machine that vanished is noticed by
        TCP keepalives within about 90 s), so a dead sync never blocks the next one."""
        holder = f"invoice-sync sync: pid {os.getpid()} on {socket.gethostname()}"[:63]
        con = PostgresConnection(self._raw(application_name=holder))
        try:
            for setting, value in LOCK_SESSION_SETTINGS.items():
                with contextlib.suppress(DatabaseError):  # older servers lack some settings
                    con.execute(f"SET {setting} = {value}")
            deadline = time.monotonic() + wait
            told = False
            while not con.execute("SELECT pg_try_advisory_lock(?)", [SYNC_LOCK_KEY]).fetchone()[0]:
                held_by = self._lock_holder(con)
                if time.monotonic() >= deadline:
                    raise SyncBusy(
                        f"another invoice-sync sync of {self.label} has been running {held_by}; "
                        f"it still held the lock after {wait:.0f}s (set --wait, or "
                        "INVOICE_SYNC__LOCK_WAIT, to wait longer)"
                    )
                if not told and on_wait is not None:
                    on_wait(
                        f"waiting for another sync of {self.label}, running {held_by} "
                        f"(up to {wait:.0f}s)"
                    )
                    told = True
                signals.raise_if_signalled()
                time.sleep(LOCK_POLL)
            yield
        finally:
            con.close()  # ends the session, which releases the lock

    @staticmethod
    def _lock_holder(con: PostgresConnection) -> str:
        """'since 10:02 (invoice-sync sync: pid 4711 on host)', as far as the server shows it."""
        unsigned = SYNC_LOCK_KEY & 0xFFFFFFFFFFFFFFFF
        row = con.execute(
            "SELECT a.backend_start, a.application_name FROM pg_locks AS l "
            "JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = CAST(? AS oid) AND l.objid = CAST(? AS oid)",
            [unsigned >> 32, unsigned & 0xFFFFFFFF],
        ).fetchone()
        if not row or row[0] is None:
            return "(holder unknown)"
        since = row[0].astimezone().strftime("%Y-%m-%d %H:%M")
        return f"since {since} ({row[1] or 'holder unknown'})"


def _one_line(error: BaseException) -> str:
    """A psycopg2 connection error in one line (libpq's come on several)."""
    return " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())


# -- MotherDuck (untested here) ---------------------------------------------------------------


@dataclass(frozen=True)
class MotherDuckDestination(Destination):
    """A MotherDuck database: DuckDB's dialect, on MotherDuck's servers. Untested here.

    Nothing is published (readers query MotherDuck directly). The lock is the `flock` of the
    working folder, so it serialises syncs from one machine only: run the scheduled sync from
    one machine."""

    credentials: Any = field(repr=False)  # dlt's MotherDuckCredentials
    working_dir: Path | None = None
    name: ClassVar[str] = "motherduck"
    dialect: ClassVar[str] = "duckdb"
    loader_file_format: ClassVar[str] = "parquet"

    @classmethod
    def from_config(cls, working_dir: Path | None = None) -> MotherDuckDestination:
        from dlt.destinations.impl.motherduck.configuration import (
            MotherDuckClientConfiguration,
        )

        credentials = configured_credentials(
            MotherDuckClientConfiguration, "motherduck", "md:database?motherduck_token=..."
        )
        return cls(credentials, working_dir)

    @property
    def label(self) -> str:
        return f"md:{self.credentials.database}"

    @property
    def folder(self) -> Path:
        if self.working_dir is not None:
            return self.working_dir
        return working_folder("motherduck", "md", None, self.credentials.database)

    def connect(self) -> duckdb.DuckDBPyConnection:
        token = self.credentials.password
        config = {"motherduck_token": str(token)} if token else {}
        try:
            return duckdb.connect(f"md:{self.credentials.database}", config=config)
        except duckdb.Error as err:
            raise WarehouseError(f"cannot connect to {self.label}: {first_line(err)}") from None

    def connect_read_only(self) -> duckdb.DuckDBPyConnection:
        return self.connect()

    def dlt_destination(self) -> Any:
        return dlt.destinations.motherduck(
            credentials=self.credentials, replace_strategy="insert-from-staging"
        )

    def check(self) -> None:
        self.connect().close()

    def lock(
        self, wait: float = DEFAULT_LOCK_WAIT, on_wait: Callable[[str], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        return sync_lock(_LocalLock(self.folder, self.label), wait, on_wait)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _LocalLock:
    """What `sync_lock` needs of a warehouse, for a server's working folder."""

    folder: Path
    name: str

    @property
    def lock_file(self) -> Path:
        return self.folder / "sync.lock"

    @property
    def published(self) -> _LocalLock:
        return self


def resolve(
    name: str | None, db: str | Path | None, default_db: str | Path, working_dir: Path | None = None
) -> Destination:
    """The destination a command names (`--destination`, else `invoice_sync.destination`,
    else DuckDB) with `--db` for DuckDB; one line (`WarehouseError`) when that cannot be."""
    chosen = name or dlt.config.get(DESTINATION_KEY) or DEFAULT_DESTINATION
    if chosen not in DESTINATIONS:
        raise WarehouseError(
            f"unknown destination {chosen!r} (from {DESTINATION_KEY}); choose from "
            f"{', '.join(DESTINATIONS)}"
        )
    if chosen == "duckdb":
        return DuckDBDestination(Warehouse.at(db if db is not None else default_db))
    if db is not None:
        raise WarehouseError(
            f"--db names a DuckDB file; --destination {chosen} takes its database from "
            f"DESTINATION__{chosen.upper()}__CREDENTIALS"
        )
    if chosen == "postgres":
        return PostgresDestination.from_config(working_dir)
    return MotherDuckDestination.from_config(working_dir)
