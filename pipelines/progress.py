"""What a sync says while it runs: a line as each source starts, how far it has got at least
every 10 seconds (a live line on a terminal), and each source's result line.

dlt reports its steps and the rows it extracts to a progress collector (`dlt.pipeline(...,
progress=...)`); `Progress` is one, so the invoice counts are dlt's own. A ticker thread
prints on time even when nothing arrives (an API that does not answer, retries waiting out
an outage), with the request count and what the last retry waits for.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from dlt.common.runtime.collector import Collector

PLAIN_PERIOD = 10.0  # seconds between progress lines written to a file or pipe
LIVE_PERIOD = 0.5  # seconds between redraws of the live line on a terminal
ROOT_TABLE = "invoices"  # every vendor's invoices land in a root table of this name
STEPS = {"Extract": "reading", "Normalize": "normalising", "Load": "loading"}


class Progress(Collector):
    """Progress and result lines on `stream` (standard output by default), failures on
    standard error, one line each, and nothing else there.

    `quiet` keeps only failures. `live` (default: whether `stream` is a terminal) redraws one
    line in place; otherwise a plain line is written every `period` seconds.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        live: bool | None = None,
        period: float | None = None,
        prefix: str = "",
        results: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.results = results or self.stream
        self.quiet = quiet
        self.live = self.stream.isatty() if live is None else live
        self.period = period or (LIVE_PERIOD if self.live else PLAIN_PERIOD)
        self.prefix = prefix
        self.step: str | None = None
        self._source: str | None = None
        self._invoices = 0
        self._requests: Callable[[], int] = lambda: 0
        self._started = 0.0
        self._retry_note: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None
        self._drawn = False
        self._stream_lock = threading.Lock()

    # -- what the sync tells it ------------------------------------------------------------

    @contextlib.contextmanager
    def source(
        self, name: str, requests: Callable[[], int], full_refresh: bool = False
    ) -> Iterator[None]:
        """Progress of one source while the block runs."""
        with self._lock:
            self._source, self._invoices, self._requests = name, 0, requests
            self._started, self._retry_note, self.step = time.monotonic(), None, None
        self.say(f"{name}: syncing{' (full refresh: reading everything)' if full_refresh else ''}")
        self._done.clear()
        self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
        self._ticker.start()
        try:
            yield
        finally:
            self._done.set()
            self._ticker.join()
            self._clear_live_line()
            with self._lock:
                self._source = None

    def retrying(self, note: str) -> None:
        """What the HTTP client waits for before its next attempt (shown with the progress)."""
        with self._lock:
            self._retry_note = note

    def say(self, line: str) -> None:
        """A line of progress (not shown when quiet)."""
        if not self.quiet:
            self._write(self.stream, line)

    def result(self, line: str, ok: bool) -> None:
        """A source's result: successes on `results`, failures on standard error."""
        if ok and not self.quiet:
            self._write(self.results, line)
        elif not ok:
            self._write(sys.stderr, line)

    def status(self) -> str:
        """Where the current source has got: `meteroid: reading, 12,000 invoices, ...`."""
        with self._lock:
            elapsed = time.monotonic() - self._started
            phase = STEPS.get((self.step or "Extract").split()[0], "working")
            rate = f", {self._invoices / elapsed:,.0f}/s" if elapsed > 1 and self._invoices else ""
            line = (
                f"{self._source}: {phase}, {self._invoices:,} invoices read{rate}, "
                f"{self._requests():,} requests, {elapsed:.0f}s"
            )
            if self._retry_note:
                line += f" ({self._retry_note})"
            return line

    # -- dlt's collector interface -----------------------------------------------------------

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        if name == ROOT_TABLE and (self.step or "").startswith("Extract"):
            with self._lock:
                self._invoices += inc
                self._retry_note = None  # data arrives: whatever was retried went through

    def _start(self, step: str) -> None:
        self.step = step

    def _stop(self) -> None:
        pass

    # -- output ------------------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._done.wait(self.period):
            if self.quiet:
                continue
            if self.live:
                with self._stream_lock:
                    self.stream.write("\r\x1b[K" + self.prefix + self.status())
                    self.stream.flush()
                    self._drawn = True
            else:
                self._write(self.stream, self.status())

    def _clear_live_line(self) -> None:
        if self.live and self._drawn:
            with self._stream_lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._drawn = False

    def _write(self, stream: TextIO, line: str) -> None:
        with self._stream_lock:
            if self.live and self._drawn and stream is self.stream:
                stream.write("\r\x1b[K")
                self._drawn = False
            stream.write(self.prefix + line + "\n")
            stream.flush()


class OneLineLog(logging.StreamHandler):
    """dlt's log (and ours, which goes through it) as invoice-sync prints it: one line per
    record, never a traceback, without what the sync reports better itself.

    dlt logs a load job's exception with its traceback, and retries it; if it still fails,
    the source's result line says why. dlt reuses a handler already on its logger (setting
    its formatter, which this one does not use), so installing it once is enough.
    """

    NOISE = (
        "Transient exception in job",  # retried; a final failure is the source's line
        "Terminal exception in job",  # the source's result line says it
        "retried in load",  # dlt's note that a job is run again, with its traceback
        "was not fully loaded",  # a load that stopped: the source's result line says why
        'The "dedup_sort" column hint',  # a full refresh replaces: the hint has no use
        "Exiting runner due to signal",  # the CLI's one line says what was interrupted
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self.NOISE)

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines() or [""]
        return f"invoice-sync: {lines[0]}"


def log_in_one_line_per_record(stream: TextIO | None = None) -> None:
    logging.getLogger("dlt").handlers[:] = [OneLineLog(stream or sys.stderr)]
