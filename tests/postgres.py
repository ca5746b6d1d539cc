"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package, a cluster made
by `initdb` in a temporary folder and started on a free port of 127.0.0.1, one database per
test. The server refuses to run as root, so as root it runs as the `postgres` user.

It is tuned for tests, not for keeping data: no fsync, no synchronous commit, no full-page
writes (`durable=True` keeps PostgreSQL's defaults, for benchmarks). Passwords are checked
(scram-sha-256 over TCP), as on a real server.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "invoice_sync", "s3cret-pw"
SERVER_SETTINGS = {"listen_addresses": "127.0.0.1", "max_connections": "100"}
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """No server could be started here; the message says why."""


def server_binaries() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps them versioned)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (apt-get install postgresql; .ci/run does this)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    """The user to run the server as: `postgres` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root and there is no `postgres` user") from None
    return "postgres"


@dataclass
class PostgresServer:
    folder: Path
    port: int
    process: subprocess.Popen
    _numbers = itertools.count(1)

    @classmethod
    def start(cls, durable: bool = False) -> PostgresServer:
        binaries = server_binaries()
        user = _run_as()
        folder = Path(tempfile.mkdtemp(prefix="invoice-sync-pg-"))
        data, sockets = folder / "data", folder / "sockets"
        sockets.mkdir()
        (folder / "password").write_text(PASSWORD + "\n")
        if user:
            for path in (folder, sockets, folder / "password"):
                shutil.chown(path, user)
        initdb = subprocess.run(
            [
                binaries / "initdb",
                "-D",
                data,
                "-U",
                USER,
                "--pwfile",
                folder / "password",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=user,
            timeout=120,
        )
        if initdb.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise PostgresUnavailable(f"initdb failed: {initdb.stderr.strip()[-500:]}")
        port = _free_port()
        chosen = SERVER_SETTINGS if durable else {**SERVER_SETTINGS, **FAST_SETTINGS}
        settings = [arg for k, v in chosen.items() for arg in ("-c", f"{k}={v}")]
        log = (folder / "server.log").open("w")
        if user:
            shutil.chown(folder / "server.log", user)
        process = subprocess.Popen(
            [binaries / "postgres", "-D", data, "-p", str(port), "-k", sockets, *settings],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
        )
        server = cls(folder, port, process)
        server._wait_until_ready()
        return server

    def _wait_until_ready(self, timeout: float = 60) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                log = (self.folder / "server.log").read_text()[-800:]
                self.stop()
                raise PostgresUnavailable(f"the server exited at start: {log}")
            try:
                psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresUnavailable("the server did not accept connections") from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        import psycopg2

        name = f"warehouse_{os.getpid()}_{next(self._numbers)}"
        con = psycopg2.connect(self.url("postgres"))
        con.autocommit = True
        try:
            con.cursor().execute(f"CREATE DATABASE {name} TEMPLATE template0")
        finally:
            con.close()
        return self.url(name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
