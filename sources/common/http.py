"""One way to build the HTTP client every vendor uses: dlt's RESTClient on dlt's retrying session.

Retries (5xx, 429 honouring `Retry-After`, dropped connections, truncated bodies), timeouts and
back-off come from dlt's runtime configuration (`[runtime]` in `.dlt/config.toml`, or
`RUNTIME__REQUEST_MAX_ATTEMPTS` and friends), so users tune them the dlt way.
"""

import math
import sys
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import requests
from dlt.common import logger
from dlt.common.runtime import signals
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests.auth import AuthBase
from tenacity import RetryCallState, Retrying

from sources.common.errors import SyncError

_request_counts: Counter = Counter()
_counting_label: list[str | None] = [None]
_count_lock = threading.Lock()


# Added to a pacer's window: the API sees each request some milliseconds after the pacer let
# it go, a few more when its thread waits for the interpreter lock. Against the emulator's
# clock, a margin of 20 ms let 26 requests into one second in three paced syncs of three,
# 40 ms in one of nine, 60 ms in none of six.
PACER_MARGIN = 0.06  # seconds


class RequestBudget(NamedTuple):
    """At most `requests` requests in any `seconds` (a rolling window, as an API's quota)."""

    requests: int
    seconds: float


class _SentLog:
    """The moments of the last `capacity` requests let go: the next may go once the oldest
    of them is `window` seconds old."""

    def __init__(self, capacity: int, window: float) -> None:
        self.sent: deque[float] = deque(maxlen=capacity)
        self.window = window

    def earliest(self, start: float) -> float:
        if len(self.sent) == self.sent.maxlen:
            return max(start, self.sent[0] + self.window)
        return start


# A wait longer than this (a spent budget, not the per-second pace) is logged.
PACER_LOGGED_WAIT = 5.0  # seconds


class Pacer:
    """At most `per_second` requests a second, and at most `budget.requests` in any
    `budget.seconds`, across threads, counted at the moments it lets requests go.

    Per second: ⌊per_second⌋ in any window of ⌊per_second⌋/per_second seconds plus
    `PACER_MARGIN` (for a whole rate, never more than the rate in any second; below one a
    second, one request per 1/per_second). The budget is a rolling window of its own (plus the
    margin), such as Revolv3's 20,000 requests in any 15 minutes: once it is spent, the next
    request waits until the oldest of the window's requests is `budget.seconds` old.

    A request waits until the oldest of the last ⌊per_second⌋ is a window old, and at least a
    quarter of 1/per_second after the one before. So a slot missed while every worker was
    busy is made up within the window, where a fixed 1/per_second spacing lost it. Paced at
    25/s against a limit of 25, in interleaved Meteroid syncs of 20,000 invoices: 91% of the
    limit on average (87-94%) against 86% (82-94%), and the API never saw more than 25
    requests in one second, against 26-27 (the fixed spacing held by the client's clock, not
    by the API's). After a pause it lets a window's requests go in a burst, a quarter
    interval apart: an API whose bucket holds fewer than a second's requests answers some
    with 429, which dlt's client waits out as `Retry-After` says.
    """

    def __init__(
        self, per_second: float | None = None, *, budget: RequestBudget | None = None
    ) -> None:
        if not per_second and budget is None:
            raise ValueError("a Pacer needs a rate per second, a budget, or both")
        self._logs: list[_SentLog] = []
        self.spacing = 0.0
        if per_second:
            self.capacity = max(1, math.floor(per_second))
            self.window = self.capacity / per_second + PACER_MARGIN
            self.spacing = 0.25 / per_second
            self._logs.append(_SentLog(self.capacity, self.window))
        self.budget = budget
        if budget is not None:
            self._logs.append(_SentLog(budget.requests, budget.seconds + PACER_MARGIN))
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = now if self._last is None else max(now, self._last + self.spacing)
            for log in self._logs:
                start = log.earliest(start)
            for log in self._logs:
                log.sent.append(start)
            self._last = start
        if start - now > PACER_LOGGED_WAIT and self.budget is not None:
            logger.info(
                f"Waiting {start - now:.0f} s: {self.budget.requests} requests in "
                f"{self.budget.seconds:.0f} s is the API's limit, and this sync reached it."
            )
        if start > now:
            time.sleep(start - now)


T = TypeVar("T")
_END: Any = object()


READ_AHEAD_SWITCH_INTERVAL = 0.001  # seconds


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, each next one fetched in a background thread while the caller
    works on the current one.

    Made for sequential paging: the request for page k+1 is sent after page k has arrived,
    just as without read-ahead, so paging keeps its order guarantees; only the caller's work
    on page k overlaps the wait for page k+1. A caller that stops early costs one request.

    While it runs, Python switches threads every millisecond instead of every 5: requests
    reads a body in 10 KB chunks, and each chunk, arriving while the caller computes, waited
    up to a whole switch interval for the interpreter lock. At 5 ms, fetching was slowed to
    twice the API's pace (an Exsited sync of 20,000 invoices: 9.5 s extracting, 7.6 s at 1 ms).
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, READ_AHEAD_SWITCH_INTERVAL))
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
            upcoming = pool.submit(next, items, _END)
            while (item := upcoming.result()) is not _END:
                upcoming = pool.submit(next, items, _END)
                yield item
    finally:
        sys.setswitchinterval(interval)


RETRY_POLL = 0.2  # seconds: how often a wait between attempts looks for SIGINT or SIGTERM
_retry_listener: list[Callable[[str], None] | None] = [None]


@contextmanager
def retries_reported_to(listener: Callable[[str], None]) -> Iterator[None]:
    """While inside, `listener` hears what each wait between attempts is for, e.g.
    `retrying in 8s after HTTP 503 on GET /api/v1/invoices` (syncs run one source at a time)."""
    _retry_listener[0] = listener
    try:
        yield
    finally:
        _retry_listener[0] = None


def _announce_retry(state: RetryCallState) -> None:
    listener = _retry_listener[0]
    if listener is None or state.outcome is None or state.next_action is None:
        return
    if state.outcome.failed:
        error = state.outcome.exception()
        cause = f"{error.__class__.__name__} on {request_label(getattr(error, 'request', None))}"
    else:
        response = state.outcome.result()
        cause = f"HTTP {response.status_code} on {request_label(response.request)}"
    wait = state.next_action.sleep
    shown = f"{wait:.0f}s" if wait >= 10 else f"{wait:.1f}s"
    listener(f"attempt {state.attempt_number} failed: {cause}; retrying in {shown}")


def _sleep_unless_signalled(seconds: float) -> None:
    """A wait between attempts that SIGINT or SIGTERM cuts short (dlt's signal flag, set
    while `dlt.common.runtime.signals.intercepted_signals` is on): retries span minutes, and
    an interrupted sync must stop within seconds."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        signals.raise_if_signalled()
        time.sleep(min(left, RETRY_POLL))
    signals.raise_if_signalled()


def _interruptible_retries(session: requests.Session) -> None:
    """Make the waits of dlt's retrying session interruptible and announced.

    dlt wraps `session.send` in a tenacity `Retrying` (`dlt.sources.helpers.requests.retry`),
    which tenacity exposes as `send.retry`; its `sleep` and `before_sleep` are tenacity's
    documented hooks. If a dlt upgrade wraps it otherwise, retries keep dlt's plain sleep
    and `tests/test_http.py` fails.
    """
    retrying = getattr(session.send, "retry", None)
    if not isinstance(retrying, Retrying):
        logger.warning("dlt's retrying session changed shape: retries cannot be interrupted")
        return
    retrying.sleep = _sleep_unless_signalled
    retrying.before_sleep = _announce_retry


def _instrument(session: requests.Session, pacer: Pacer | None) -> None:
    """Count every attempt, and pace it if asked, at the transport adapter: below dlt's
    retries, so retried requests are counted and paced too. No attempt starts once SIGINT or
    SIGTERM has been received."""
    _interruptible_retries(session)
    adapter = session.get_adapter("https://")
    send = adapter.send

    def instrumented_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        signals.raise_if_signalled()
        if pacer is not None:
            pacer.wait()
        with _count_lock:
            _request_counts[_counting_label[0]] += 1
        return send(request, **kwargs)

    adapter.send = instrumented_send  # type: ignore[method-assign]


@contextmanager
def counting_requests(label: str) -> Iterator[Callable[[], int]]:
    """Count the HTTP requests (retries included) every client made while inside.

    Syncs run one source at a time, so one label at a time is enough; the yielded function
    reads the count so far.
    """
    with _count_lock:
        _counting_label[0] = label
        _request_counts[label] = 0
    try:
        yield lambda: _request_counts[label]
    finally:
        with _count_lock:
            _counting_label[0] = None


def json_decoded_with(decode: Callable[[requests.Response], Any]) -> Callable[..., None]:
    """A response hook after which `response.json()` returns `decode(response)`: dlt's
    paginators and data selectors call `json()`.

    The function stored on the response reaches it through a weak reference. Holding the
    response itself would make a reference cycle, and each page's body would then stay in
    memory until Python's cyclic garbage collector ran: after a 20,000-invoice Meteroid
    extraction, 39 pages (11 MB) still waited for it, more in a longer sync.
    """

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        own = weakref.ref(response)
        response.json = lambda **_: decode(own())  # type: ignore[method-assign,arg-type]

    return hook


def make_rest_client(
    base_url: str,
    *,
    auth: AuthBase | None = None,
    paginator: BasePaginator | None = None,
    headers: dict[str, str] | None = None,
    data_selector: str | None = None,
    max_requests_per_second: float | None = None,
    request_budget: RequestBudget | None = None,
) -> RESTClient:
    """A RESTClient whose session retries the way dlt's runtime configuration says, counts
    its requests and, given `max_requests_per_second` and/or `request_budget`, never sends
    faster than they allow (see `Pacer`)."""
    retrying = Client(raise_for_status=False)
    retrying.configure()
    session = retrying.session
    paced = max_requests_per_second or request_budget is not None
    _instrument(
        session,
        Pacer(max_requests_per_second, budget=request_budget) if paced else None,
    )
    return RESTClient(
        base_url=base_url.rstrip("/"),
        auth=auth,
        paginator=paginator,
        headers=headers,
        data_selector=data_selector,
        session=session,
    )


def vendor_message(response: requests.Response, extract: Callable[[Any], str | None]) -> str:
    """The vendor's own error text from a response body, or a short excerpt of the body."""
    try:
        text = extract(response.json())
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        text = None
    if text:
        return text
    body = (response.text or "").strip().replace("\n", " ")
    return body[:160] or "no body"


def request_label(request: requests.PreparedRequest | requests.Request | None) -> str:
    """`GET /path` of a request, without query string (it may hold filters, never secrets)."""
    if request is None or not getattr(request, "url", None):
        return "a request"
    path = requests.utils.urlparse(request.url).path or "/"
    return f"{request.method or 'GET'} {path}"


def http_failure(
    source: str,
    error: requests.RequestException,
    *,
    base_url: str,
    credential_keys: list[str],
    extract_message: Callable[[Any], str | None] = lambda body: None,
) -> SyncError:
    """Turn a requests failure into the one line the user reads."""
    prefix = f"SOURCES__{source.upper()}__"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        response = error.response
        status = response.status_code
        what = request_label(response.request)
        message = vendor_message(response, extract_message)
        if status in (401, 403):
            keys = ", ".join(prefix + key.upper() for key in credential_keys)
            return SyncError(
                source,
                f"the API refused our credentials (HTTP {status} on {what}: {message})",
                f"check {keys}",
            )
        if status == 429:
            return SyncError(
                source,
                f"still rate limited after retrying (HTTP 429 on {what}: {message})",
                "wait and run the sync again, or raise RUNTIME__REQUEST_MAX_ATTEMPTS",
            )
        if status >= 500:
            return SyncError(
                source,
                f"the API kept failing (HTTP {status} on {what}: {message})",
                "the vendor is having trouble; run the sync again later",
            )
        return SyncError(
            source,
            f"the API rejected a request (HTTP {status} on {what}: {message})",
            f"check {prefix}BASE_URL points at the vendor's API root",
        )
    if isinstance(error, requests.ConnectionError | requests.Timeout):
        kind = "timed out" if isinstance(error, requests.Timeout) else "could not connect"
        return SyncError(
            source,
            f"{kind} to {base_url} ({request_label(error.request)})",
            f"check {prefix}BASE_URL and the network; runs retried already",
        )
    return SyncError(source, f"HTTP failure: {error.__class__.__name__}: {error}")
