"""The sandbox's HTTP server: a threaded loopback server that vendor emulators plug into.

One server can host several emulators, each mounted under a path prefix
(`http://127.0.0.1:8765/meteroid/api/v1/invoices`), so one port serves the whole sandbox.
Each emulator brings its routes, its credential check and its vendor's error body; the
base adds what every vendor needs for testing: latency, a rate limit answered with 429 and
`Retry-After`, injected faults (5xx, dropped connections, truncated bodies), request counts
and changes scheduled to happen mid-sync.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from sources.common.collector import objects_alive_now_frozen
from sources.common.sandbox.ledger import Invoice, Ledger
from sources.common.sandbox.truth import (
    Figures,
    Money,
    Sighting,
    Transitions,
    TruthInvoice,
    knowable,
    observations,
)
from sources.common.sandbox.truth import as_of as as_of_day

# "truncate" cuts a body short of its Content-Length (the client sees a broken transfer and
# retries); "cut_json" sends a whole HTTP answer whose JSON body ends part-way (a proxy or a
# server that gave up mid-write: nothing to retry, the body is malformed).
FAULT_KINDS = ("500", "502", "503", "429", "drop", "truncate", "cut_json")


@dataclass
class Request:
    method: str
    path: str  # below the emulator's mount prefix
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status, dump_json(payload), {"Content-Type": "application/json", **(headers or {})}
        )


def _decimal_as_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {value!r}")


def dump_json(payload: Any) -> bytes:
    """JSON with Decimal values written as JSON numbers with their exact digits ("150.0000").

    orjson, not the standard library: at 100 invoices a page, writing the body with `json`
    cost as much CPU as a sync spends reading it, on the machine both share in benchmarks.
    """
    return orjson.dumps(payload, default=_decimal_as_number, option=orjson.OPT_NON_STR_KEYS)


@dataclass
class Faults:
    """What goes wrong, and how slowly, when an emulator answers."""

    latency: float = 0.0  # seconds added to every request
    rate_limit: float | None = None  # requests per second before 429
    # At most this many requests admitted in any this many seconds (a rolling window, such as
    # Revolv3's 20,000 in 15 minutes) before 429, whose Retry-After says when one drops out.
    budget: tuple[int, float] | None = None
    fault_rate: float = 0.0  # chance of a random fault on any request
    queued: deque = field(default_factory=deque)  # faults for the next requests, in order
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tokens = self.rate_limit or 0.0
        self._stamp = time.monotonic()
        self._down_until = 0.0
        self._admitted: deque[float] = deque()  # monotonic times, inside the budget's window
        self._lock = threading.Lock()

    def inject(self, *kinds: str) -> None:
        """Answer the next requests with these faults, one each (see FAULT_KINDS)."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; choose from {FAULT_KINDS}")
            self.queued.append(kind)

    def outage(self, seconds: float) -> None:
        """Drop every connection for the next `seconds` (the API is down)."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def next_fault(self) -> str | None:
        with self._lock:
            if time.monotonic() < self._down_until:
                return "drop"
            if self.queued:
                return self.queued.popleft()
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(("500", "503", "drop", "truncate"))
        return None

    def retry_after(self) -> int | None:
        """None when a request may go ahead, else whole seconds until one may (a token bucket
        for `rate_limit`, a rolling window for `budget`)."""
        if not self.rate_limit and self.budget is None:
            return None
        with self._lock:
            now = time.monotonic()
            spent = self._budget_spent(now)
            if spent is not None:
                return spent
            if self.rate_limit:
                self._tokens = min(
                    self.rate_limit, self._tokens + (now - self._stamp) * self.rate_limit
                )
                self._stamp = now
                if self._tokens < 1:
                    return max(1, math.ceil((1 - self._tokens) / self.rate_limit))
                self._tokens -= 1
            if self.budget is not None:
                self._admitted.append(now)
            return None

    def _budget_spent(self, now: float) -> int | None:
        """Seconds until the budget's window has room again, or None if it has now."""
        if self.budget is None:
            return None
        requests, seconds = self.budget
        while self._admitted and self._admitted[0] <= now - seconds:
            self._admitted.popleft()
        if len(self._admitted) < requests:
            return None
        return max(1, math.ceil(self._admitted[0] + seconds - now))


Handler = Callable[..., Response]


class Emulator:
    """Base of a vendor emulator: routing, counting, faults and scheduled changes.

    Subclasses set `name`, register routes with `route()`, implement `authenticate`,
    `error_body`, `settings` and `figures`, call `serve` for every invoice they render, and
    say what their vendor dates (`finalization_dated`, `dated`, `stamp`).
    """

    name = "emulator"

    def __init__(self, ledger: Ledger, faults: Faults | None = None) -> None:
        self.ledger = ledger
        self.faults = faults or Faults()
        self.requests = Counter()  # route name -> requests answered (any status)
        self.admitted_at: list[float] = []  # monotonic times of requests the rate limit let in
        self._routes: list[tuple[str, re.Pattern, str, Handler]] = []
        self._scheduled: list[tuple[int, Callable[[Ledger], Any]]] = []
        self._lock = threading.Lock()
        self._last_served: dict[str, tuple] = {}  # ledger id -> the version last served
        self._served_since: set[str] = set()  # served since the last landed sync
        self._landed: list[tuple[datetime, dict[str, tuple], frozenset[str]]] = []
        self._served_lock = threading.Lock()

    # -- for subclasses ---------------------------------------------------------------

    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        """Serve `method` on paths matching `pattern` (named groups become arguments)."""
        self._routes.append((method, re.compile(f"^{pattern}$"), name, handler))

    def authenticate(self, request: Request) -> Response | None:
        """None if the request carries valid credentials, else the vendor's refusal."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Response:
        """The vendor's error response for `status`."""
        raise NotImplementedError

    def settings(self, base_url: str) -> dict[str, str]:
        """Environment settings (`SOURCES__...`) that point `invoice-sync sync` here."""
        raise NotImplementedError

    def figures(self, invoice: Invoice) -> Figures | None:
        """An invoice (or a version of it) as the contract must see it; None if not served."""
        raise NotImplementedError

    def identity(self, invoice: Invoice) -> tuple[str, date, date | None]:
        """The contract's invoice id, issue date and due date for a ledger invoice."""
        return invoice.id, invoice.issue_date, invoice.due_date

    # -- point in time: what the vendor dates (subclasses say; the default dates nothing) ---

    finalization_dated = False  # the vendor sends when an invoice was finalized

    def dated(self, invoice: Invoice) -> tuple[Transitions, tuple[Money, ...]]:
        """The status dates and the payments and refunds the vendor sends dated, for a
        version of an invoice."""
        return Transitions(), ()

    def stamp(self, invoice: Invoice) -> datetime | None:
        """The vendor's own update timestamp of a version of an invoice, as it lands."""
        return None

    # -- ground truth ----------------------------------------------------------------------

    def truth(self, as_of: date | None = None) -> list[TruthInvoice]:
        """The invoices as the contract must see them: now, or at the end of `as_of` as a
        warehouse fed by this emulator can know it (`knowable` in truth.py), from what the
        syncs that landed were served (`sync_landed`)."""
        rows = []
        for invoice in self.ledger.snapshot():
            figures = self.figures(invoice) if as_of is None else self.knowable(invoice, as_of)
            if figures is not None:
                rows.append(self._truth_row(invoice, figures))
        return rows

    def exact_truth(self, as_of: date) -> list[TruthInvoice]:
        """The invoices exactly as they stood at the end of `as_of` (the ledger dates every
        event), whatever the vendor's API lets a warehouse know."""
        rows = []
        for invoice in self.ledger.snapshot():
            then = as_of_day(invoice, as_of)
            figures = None if then is None else self.figures(then)
            if figures is not None:
                rows.append(self._truth_row(invoice, figures))
        return rows

    def _truth_row(self, invoice: Invoice, figures: Figures) -> TruthInvoice:
        invoice_id, _, due_date = self.identity(invoice)
        return TruthInvoice(
            source=self.name,
            invoice_id=invoice_id,
            currency=invoice.currency,
            status=figures.status,
            total=figures.total,
            amount_paid=figures.amount_paid,
            amount_due=figures.amount_due,
            due_date=due_date,
        )

    def knowable(self, invoice: Invoice, day: date) -> Figures | None:
        sightings = self.sightings(invoice)
        if not sightings:
            return None
        _, issue_date, _ = self.identity(invoice)
        return knowable(
            sightings[-1],
            observations(sightings, issue_date),
            issue_date,
            day,
            self.finalization_dated,
        )

    # -- what was served, and what landed ------------------------------------------------

    def serve(self, invoice: Invoice) -> None:
        """Note the version of `invoice` a response shows (emulators call it as they render)."""
        version = (
            invoice.status,
            len(invoice.transactions),
            invoice.credits,
            invoice.updated_at,
            invoice.finalized_at,
            invoice.paid_at,
            invoice.refunded_at,
            invoice.voided_at,
            invoice.uncollectible_at,
        )
        with self._served_lock:
            self._last_served[invoice.id] = version
            self._served_since.add(invoice.id)

    def sync_landed(self, at: datetime | None = None) -> None:
        """A sync that read this emulator succeeded (`at`: when; default now): the warehouse
        holds, of every invoice, the version last served. Tests call it after each sync that
        succeeded, so `truth(as_of)` knows what each sync saw."""
        with self._served_lock:
            self._landed.append((at or datetime.now(UTC), dict(self._last_served), self.listed()))
            self._served_since = set()

    def listed(self) -> frozenset[str]:
        """The invoices the sync that lands now was shown (by default: those served since the
        last sync landed). Called under the lock that `serve` takes."""
        return frozenset(self._served_since)

    def served_before(self, invoice: Invoice) -> Invoice | None:
        """The version of `invoice` last served, or None if it never was."""
        with self._served_lock:
            version = self._last_served.get(invoice.id)
        return None if version is None else self._version(invoice, version)

    def sighting(self, version: Invoice, listed: bool, at: datetime) -> Sighting | None:
        """What a sync at `at` lands of the version of an invoice it was served last
        (`listed`: among the invoices that sync was shown, see `listed()`)."""
        figures = self.figures(version)
        if figures is None:
            return None
        transitions, money = self.dated(version)
        return Sighting(at, figures, self.stamp(version), transitions, money)

    def sightings(self, invoice: Invoice) -> list[Sighting]:
        """What each landed sync held of `invoice` (with the syncs noted by `sync_landed`, or,
        for a harness that notes none, one sync now with everything served)."""
        with self._served_lock:
            landed = list(self._landed)
            if self._served_since or not landed:
                landed.append((datetime.now(UTC), dict(self._last_served), self.listed()))
        remembered: dict[str, Money] = {}
        sightings = []
        for at, served, listed in landed:
            version = served.get(invoice.id)
            if version is None:
                continue
            sighting = self.sighting(self._version(invoice, version), invoice.id in listed, at)
            if sighting is None:
                continue
            # the warehouse keeps every dated payment a sync saw (billing.payment_history);
            # a payment is dated once (Press's refund: when the invoice first vanished)
            for money in sighting.money:
                remembered.setdefault(money.id, money)
            sightings.append(replace(sighting, money=tuple(remembered.values())))
        return sightings

    @staticmethod
    def _version(invoice: Invoice, version: tuple) -> Invoice:
        status, transactions, credits, updated, finalized, paid, refunded, voided, written_off = (
            version
        )
        return replace(
            invoice,
            status=status,
            transactions=invoice.transactions[:transactions],
            credits=credits,
            updated_at=updated,
            finalized_at=finalized,
            paid_at=paid,
            refunded_at=refunded,
            voided_at=voided,
            uncollectible_at=written_off,
        )

    # -- for tests and the demo --------------------------------------------------------

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def after_requests(self, count: int, change: Callable[[Ledger], Any]) -> None:
        """Apply `change` to the ledger just before the `count`-th next request is answered."""
        with self._lock:
            self._scheduled.append((self.total_requests + count, change))

    def cancel_scheduled(self) -> None:
        """Forget changes scheduled with `after_requests` that have not happened yet."""
        with self._lock:
            self._scheduled = []

    # -- serving -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | str:
        """A response, or the name of a connection-level fault ("drop", "truncate")."""
        if self.faults.latency:
            time.sleep(self.faults.latency)
        wait = self.faults.retry_after()
        if wait is not None:
            self._count("rate_limited")
            response = self.error_body(429, "Too many requests, slow down")
            response.headers["Retry-After"] = str(wait)
            return response
        with self._lock:
            self.admitted_at.append(time.monotonic())
        fault = self.faults.next_fault()
        if fault is not None:
            self._count(f"fault_{fault}")
            if fault in ("drop", "truncate"):
                return fault
            if fault == "cut_json":
                return Response(200, b'{"data": [{"id": "', {"Content-Type": "application/json"})
            response = self.error_body(int(fault), "Injected fault")
            if fault == "429":
                response.headers["Retry-After"] = "1"
            return response
        refusal = self.authenticate(request)
        if refusal is not None:
            self._count("unauthorized")
            return refusal
        for method, pattern, name, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                self._run_scheduled()
                self._count(name)
                try:
                    return handler(request, **match.groupdict())
                except BadRequest as bad:
                    return self.error_body(400, str(bad))
        self._count("not_found")
        return self.error_body(404, f"No route for {request.method} {request.path}")

    def _count(self, name: str) -> None:
        with self._lock:
            self.requests[name] += 1

    def _run_scheduled(self) -> None:
        with self._lock:
            due = [c for c in self._scheduled if c[0] <= self.total_requests + 1]
            self._scheduled = [c for c in self._scheduled if c[0] > self.total_requests + 1]
        for _, change in due:
            change(self.ledger)


class BadRequest(ValueError):
    """A handler's way to answer 400 with the vendor's error body."""


def int_arg(
    request: Request, name: str, default: int | None, low: int, high: int | None = None
) -> int | None:
    """A bounded integer query argument, or BadRequest saying what is wrong with it."""
    raw = request.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{name} must be between {low} and {high or 'infinity'}, got {value}")
    return value


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, keep-alive requests stall
    # ~40 ms on the client's delayed ACK.
    disable_nagle_algorithm = True
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emulator, path = self.server.resolve(parts.path)
        if emulator is None:
            self._write(Response.json(404, {"error": f"nothing mounted at {parts.path}"}))
            return
        request = Request(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        result = emulator.handle(request)
        if result == "drop":
            self.close_connection = True
            return
        if result == "truncate":
            full = emulator.error_body(200, "x" * 64).body + b" " * 256
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(full)))
            self.end_headers()
            self.wfile.write(full[: len(full) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self._write(result)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815


class SandboxServer(ThreadingHTTPServer):
    """Serves emulators mounted at path prefixes on a loopback port (0 picks a free one)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mounts: dict[str, Emulator], host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _HTTPHandler)
        self.mounts = sorted(
            (
                (("/" + prefix.strip("/")) if prefix.strip("/") else "", emu)
                for prefix, emu in mounts.items()
            ),
            key=lambda item: -len(item[0]),
        )
        self._thread: threading.Thread | None = None
        self._frozen = ExitStack()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, emulator: Emulator) -> str:
        for prefix, mounted in self.mounts:
            if mounted is emulator:
                return self.url + prefix
        raise KeyError(emulator.name)

    def resolve(self, path: str) -> tuple[Emulator | None, str]:
        for prefix, emulator in self.mounts:
            if not prefix:
                return emulator, path
            if path == prefix or path.startswith(prefix + "/"):
                return emulator, path[len(prefix) :] or "/"
        return None, path

    def settings(self) -> dict[str, str]:
        """Every mounted emulator's `SOURCES__...` settings."""
        merged: dict[str, str] = {}
        for _, emulator in sorted(self.mounts, key=lambda item: item[1].name):
            merged.update(emulator.settings(self.base_url(emulator)))
        return merged

    def start(self) -> SandboxServer:
        """Serve in a background thread, the ledgers built so far kept out of the garbage
        collector's walks (`objects_alive_now_frozen`): a walk over 20,000 invoices paused
        serving for up to 390 ms."""
        self._frozen.enter_context(objects_alive_now_frozen())
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._frozen.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
