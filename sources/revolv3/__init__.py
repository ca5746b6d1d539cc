"""Revolv3 invoices from the detailed list `GET /api/Invoices/v1`: a bare JSON array per page,
1-based pages, no paging metadata, each row with its attempts and line items.

The first sync and `--full-refresh` page the whole list by billing date (continued in an older
billing-date window past the page cap); later syncs read only the invoices updated since the
last sync (`lastUpdateStartDate`, with an overlap). Rows are loaded as they come: a row whose
`invoiceAttempts` is null is the only one completed from its detail (`GET /api/Invoices/{id}`).
Attempts land in `invoices__invoice_attempts` (they give the amounts paid and due), line items
in `invoices__invoice_line_items`. Merge on `invoice_id`: a changed invoice replaces both.
Requests are paced below Revolv3's rate limits. Details: `sources/revolv3/README.md`.
"""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import chain, count
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Response

from sources.common.columns import (
    bigint,
    columns,
    day,
    decimal,
    read_order,
    text,
    timestamp,
)
from sources.common.dates import DateParseError, parse_timestamp_utc
from sources.common.errors import BadRecordError, SyncError
from sources.common.fields import decode_json
from sources.common.http import RequestBudget, make_rest_client
from sources.common.money import MoneyError, currency_exponent
from sources.common.vendor import Vendor
from sources.revolv3 import settings
from sources.revolv3.emulator import make_emulator
from sources.revolv3.helpers import (
    SOURCE,
    error_message,
    invoice_id_of,
    invoice_record,
    parse_billing_date,
)

MONEY = decimal()
Window = tuple[date, date | None]  # lastUpdate days, both inclusive; None: open-ended
# What the state says the loaded rows came from: a warehouse loaded from another list (the
# classic one, before line items) is read in full once.
ROWS_FROM = "v1"

INVOICE_COLUMNS = columns(
    invoice_id=bigint(),
    parent_invoice_id=bigint(),
    merchant_invoice_ref_id=text(),
    customer_id=text(),
    merchant_customer_ref_id=text(),
    customer_first_name=text(),
    customer_last_name=text(),
    merchant_legal_name=text(),
    bin_number=text(),
    last4_digit=text(),
    invoice_status=text(),
    invoice_status_enum=bigint(),
    currency=text(),
    subtotal=MONEY,
    tax=MONEY,
    total=MONEY,
    billing_date=day(),
    billing_date_text=text(),
    subscription_id=bigint(),
    installment_id=bigint(),
    merchant_subscription_ref_id=text(),
    network_transaction_id=text(),
    eligibility_fail_reason=text(),
    payment_method_id=text(),
    last_update_date=timestamp(),
    amount_received=MONEY,
    amount_refunded=MONEY,
    last_attempt_status=text(),
    last_attempt_at=timestamp(),
    # An invoice met twice in one sync (a window read again) is merged as the copy read
    # last: it is at least as new.
    read_seq=read_order(),
)
NESTED_HINTS: dict[Any, Any] = {
    "invoice_attempts": {
        "columns": columns(
            invoice_attempt_id=bigint(),
            amount=MONEY,
            invoice_attempt_status=text(),
            kind=text(),
            invoice_attempt_date=timestamp(),
            payment_processor=text(),
            processor_transaction_id=text(),
            response_code=text(),
            response_message=text(),
            payment_method=text(),
        )
    },
    "invoice_line_items": {
        "columns": columns(
            invoice_line_item_id=bigint(),
            name=text(),
            description=text(),
            value=MONEY,
            value_type=text(),
            amount=MONEY,
        )
    },
}


def _malformed(response: Response, what: str) -> SyncError:
    return SyncError(
        SOURCE,
        f"malformed response from {response.request.path_url.split('?')[0]}: {what}",
        "the API answered in an unexpected format; check SOURCES__REVOLV3__BASE_URL",
    )


def decimal_json(response: Response, *args: Any, **kwargs: Any) -> Response:
    """Response hook: fail on HTTP errors, then decode the body with money as Decimal."""
    response.raise_for_status()
    body = decode_json(SOURCE, response)
    response.json = lambda **_: body  # what dlt's paginator and data selector read
    return response


class PageSizes:
    """What the pages of one sync show about the server's page size.

    We ask for `asked` rows a page. A page of exactly that many shows the server honours it
    (or serves that many anyway); one of more shows it does not. Only once honoured does a
    short page prove the end of a list: a server that ignores `pageSize` (the seed documents
    `page_size` and a default of 25) serves its own size, and its pages are short to us.
    """

    def __init__(self, asked: int) -> None:
        self.asked = asked
        self.honoured: bool | None = None

    def note(self, rows: list[Any]) -> None:
        if len(rows) > self.asked:
            self.honoured = False
        elif len(rows) == self.asked and self.honoured is None:
            self.honoured = True

    def ends_list(self, rows: list[Any]) -> bool:
        return not rows or (self.honoured is True and len(rows) < self.asked)


class Revolv3Paginator(PageNumberPaginator):
    """1-based pages until the list's end (`PageSizes.ends_list`), at most `max_pages` pages.

    `capped` says the last page read was the cap's and not the list's end: more rows may
    follow. `first_page` starts a query part-way (to read on from a page already read).
    """

    def __init__(self, max_pages: int, sizes: PageSizes, first_page: int = 1) -> None:
        super().__init__(
            base_page=1,
            page=first_page,
            page_param="page",
            total_path=None,
            maximum_page=max_pages + 1,
            stop_after_empty_page=True,
        )
        self.sizes = sizes
        self.capped = False
        self._ended = False

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        if not isinstance(response.json(), list):
            raise _malformed(response, f"expected a JSON array, got {response.text[:120]!r}")
        rows = data or []
        self.sizes.note(rows)
        self._ended = self.sizes.ends_list(rows)
        super().update_state(response, data)
        self.capped = not self._ended and not self.has_next_page

    def _stop_after_this_page(self, data: list[Any] | None = None) -> bool:
        return self._ended


def _fetch_detail(client: RESTClient, invoice_id: int) -> dict[str, Any]:
    response = decimal_json(client.get(f"{settings.INVOICES_PATH}/{invoice_id}"))
    detail = response.json()
    if not isinstance(detail, dict) or detail.get("invoiceId") != invoice_id:
        raise BadRecordError(SOURCE, invoice_id, f"detail is not this invoice: {detail!r:.120}")
    return detail


def _window_end(raw: dict[str, Any], previous_end: date | None, limit: int) -> date:
    """The billing date to continue from after a capped query; refuses to go round in circles."""
    try:
        end = parse_billing_date(raw.get("billingDate"))
    except ValueError as err:
        raise BadRecordError(SOURCE, raw.get("invoiceId"), str(err)) from None
    if previous_end is not None and end >= previous_end:
        raise SyncError(
            SOURCE,
            f"more invoices billed on {end.isoformat()} than {limit} pages can reach",
            "raise SOURCES__REVOLV3__PAGE_SIZE (max 100) if the server honours it",
        )
    return end


def _check_currency(currency: str) -> str:
    try:
        currency_exponent(currency)
    except MoneyError as err:
        raise SyncError(
            SOURCE, str(err), "set SOURCES__REVOLV3__CURRENCY to an ISO 4217 code"
        ) from None
    return currency.upper()


def _last_update(raw: dict[str, Any]) -> str | None:
    """The row's `lastUpdateDate` as sent (compared as text), or None: the vendor's field list
    does not show it, so a row may come without. One that is not a timestamp is an error."""
    value = raw.get("lastUpdateDate")
    if value is None:
        return None
    try:
        parse_timestamp_utc(value)
    except DateParseError as err:
        raise BadRecordError(SOURCE, raw.get("invoiceId"), f"lastUpdateDate: {err}") from None
    return value


def _day(stamp: str) -> date:
    return parse_timestamp_utc(stamp).date()


def _bounded(window: Window) -> bool:
    return window[1] is not None


def _overlap(first: Window, second: Window) -> bool:
    return (second[1] is None or first[0] <= second[1]) and (
        first[1] is None or second[0] <= first[1]
    )


class _DayOverflow(Exception):
    """One day of updates holds more invoices than the page cap lets one query reach."""


def _split(window: Window, sync_day: date) -> list[Window]:
    """Two narrower windows covering `window`, whose read reached the page cap."""
    low, high = window
    if high is None:
        middle = low if low >= sync_day else low + (sync_day - low) // 2
        return [(low, middle), (middle + timedelta(days=1), None)]
    if low == high:
        raise _DayOverflow(low)
    middle = low + (high - low) // 2
    return [(low, middle), (middle + timedelta(days=1), high)]


def _next_window_start(
    previous: date | None, latest: str | None, sync_day: date, overlap: timedelta
) -> date:
    """Where the next incremental window starts: the high-water mark less the overlap.

    The mark is the earlier of the newest `lastUpdateDate` we read (the vendor's clock) and the
    day this sync started (ours), so a change made after we read its invoice, stamped by either
    clock, lies inside the next window; it never moves back behind the previous start.
    """
    mark = sync_day if latest is None else min(_day(latest), sync_day)
    start = mark - overlap
    return start if previous is None else max(previous, start)


def _pacing(per_second: float, budget: int, budget_seconds: float) -> dict[str, Any]:
    """`make_rest_client`'s pacing arguments from the source settings (0 turns one off)."""
    return {
        "max_requests_per_second": per_second or None,
        "request_budget": RequestBudget(budget, budget_seconds) if budget else None,
    }


@dlt.source(name="revolv3")
def revolv3_source(
    base_url: str = dlt.config.value,
    token: str = dlt.secrets.value,
    page_size: int = settings.PAGE_SIZE,
    max_pages: int = settings.MAX_PAGES,
    currency: str = settings.DEFAULT_CURRENCY,
    overlap_days: int = settings.OVERLAP_DAYS,
    max_requests_per_second: float = settings.MAX_REQUESTS_PER_SECOND,
    request_budget: int = settings.REQUEST_BUDGET,
    request_budget_seconds: float = settings.REQUEST_BUDGET_SECONDS,
) -> Any:
    """All Revolv3 invoices of the merchant behind `token`, with attempts and line items.

    The first sync and `--full-refresh` read the whole detailed list; later syncs only the
    invoices whose `lastUpdateDate` moved (README: "Incremental sync"). Requests are paced to
    `max_requests_per_second` and `request_budget` per `request_budget_seconds`.
    """
    currency = _check_currency(currency)
    overlap = timedelta(days=overlap_days)
    sequence = count(1)
    sizes = PageSizes(page_size)
    client = make_rest_client(
        base_url,
        auth=APIKeyAuth(name=settings.TOKEN_HEADER, api_key=token, location="header"),
        data_selector="$",
        **_pacing(max_requests_per_second, request_budget, request_budget_seconds),
    )

    def record(raw: dict[str, Any]) -> dict[str, Any]:
        """The row as loaded, numbered in reading order (`read_seq`). A row without attempts
        (`invoiceAttempts` null) takes them, and its other fields, from its detail: fetched
        now, so never older than the row. The detail has no `lastUpdateDate`, and the row's
        may be older than the detail's fields: such a row lands without one (its changes are
        then dated by the sync that saw them, not by a stamp that may precede them)."""
        if raw.get("invoiceAttempts") is None:
            raw = {**raw, **_fetch_detail(client, invoice_id_of(raw)), "lastUpdateDate": None}
        return {**invoice_record(raw, currency), "read_seq": next(sequence)}

    def pages(params: dict[str, Any], paginator: Revolv3Paginator) -> Iterator[list[Any]]:
        return client.paginate(
            settings.LIST_PATH,
            params={"pageSize": page_size, **params},
            paginator=paginator,
            hooks={"response": [decimal_json]},
        )

    def billed_pages() -> Iterator[list[dict[str, Any]]]:
        """Every row, newest billing date first; a capped query goes on in an older window."""
        end: date | None = None
        while True:
            paginator = Revolv3Paginator(max_pages, sizes)
            last: dict[str, Any] | None = None
            params: dict[str, Any] = {"orderBy": settings.FULL_ORDER}
            if end is not None:
                params["billingEndDate"] = end.isoformat()
            for page in pages(params, paginator):
                rows = list(page)
                last = rows[-1] if rows else last
                yield rows
            if not paginator.capped or last is None:
                return
            end = _window_end(last, end, max_pages)

    def catch_up(loaded: dict[int, int]) -> Iterator[list[dict[str, Any]]]:
        """Invoices billed while we read: they arrive at the top, so re-read until a page
        brings nothing new (its rows still count: one may have changed since we read it)."""
        params = {"orderBy": settings.FULL_ORDER}
        for page in pages(params, Revolv3Paginator(max_pages, sizes)):
            fresh = any(invoice_id_of(raw) not in loaded for raw in page)
            yield page
            if not fresh:
                return

    def changed_rows(start: date, sync_day: date) -> Iterator[dict[str, Any]]:
        """Every row updated on or after `start`.

        One query in invoice id order normally. Past the page cap the window is split by day
        and the halves read in turn. An invoice met in two windows that do not overlap left
        the first while we paged (later rows then shifted up one): the windows read that
        overlap it are read again.
        """
        queue: list[Window] = [(start, None)]
        met: dict[int, Window] = {}
        done: list[Window] = []  # read to the end, not split
        rereads = 0

        def read_again() -> None:
            nonlocal rereads
            rereads += 1
            if rereads > settings.MAX_WINDOW_READS:
                raise SyncError(
                    SOURCE,
                    "invoices kept changing faster than their list could be read",
                    "run the sync again later, or with --full-refresh",
                )

        def left_from(window: Window) -> None:
            for read in done:
                if _bounded(read) and _overlap(read, window) and read not in queue:
                    read_again()
                    queue.append(read)

        while queue:
            window = queue.pop(0)
            params: dict[str, Any] = {
                "orderBy": settings.CHANGES_ORDER,
                "lastUpdateStartDate": window[0].isoformat(),
            }
            if window[1] is not None:
                params["lastUpdateEndDate"] = window[1].isoformat()
            first_page, catching_up = 1, False
            while True:
                paginator = Revolv3Paginator(max_pages, sizes, first_page)
                last_page, fresh, settled = first_page, False, False
                for number, page in enumerate(pages(params, paginator), start=first_page):
                    page_fresh = False
                    for raw in page:
                        invoice_id = invoice_id_of(raw)
                        left = met.get(invoice_id)
                        if left is not None and not _overlap(left, window):
                            left_from(left)
                        page_fresh = page_fresh or left is None or not _overlap(left, window)
                        met[invoice_id] = window
                        yield raw
                    last_page = number if page else last_page
                    fresh = fresh or page_fresh
                    # Reading on, a page with nothing new that is short of our size ends it
                    # (a server that ignores our size may then show an invoice born during
                    # this sync only to the next one, which reads it in its window).
                    if catching_up and not page_fresh and len(page) < page_size:
                        settled = True
                        break
                if paginator.capped:
                    queue[:0] = _split(window, sync_day)
                    break
                if settled or (catching_up and not fresh):
                    done.append(window)
                    break
                # Invoices that joined while we paged land at the end (new ids), perhaps in
                # the last page we read: read on from it until it brings nothing new.
                if catching_up:
                    read_again()
                first_page, catching_up = last_page, True

    def remembered(raw: dict[str, Any], recent: dict[str, str], since: date) -> bool:
        """Whether this row is the one we loaded (same stamp); notes its stamp if `since`.

        A row without `lastUpdateDate` is never taken as loaded: it is loaded again."""
        key, stamp = str(invoice_id_of(raw)), _last_update(raw)
        if stamp is None:
            recent.pop(key, None)
            return False
        if recent.get(key) == stamp:
            return True
        if _day(stamp) >= since:
            recent[key] = stamp
        return False

    def loaded_already(raw: dict[str, Any], loaded: dict[int, int]) -> bool:
        """Whether this row is exactly the row this sync loaded of its invoice (met again in
        a window read again or a catch-up read); notes it if not. A row that changed since
        is loaded again: the warehouse holds the newest version the sync was shown."""
        invoice_id, version = invoice_id_of(raw), hash(json.dumps(raw, sort_keys=True, default=str))
        if loaded.get(invoice_id) == version:
            return True
        loaded[invoice_id] = version
        return False

    def unstamped_again(raw: dict[str, Any], loaded: dict[int, int]) -> bool:
        """Whether this row has no stamp and was loaded as it is by this sync already."""
        return raw.get("lastUpdateDate") is None and loaded_already(raw, loaded)

    def full_read(recent: dict[str, str], sync_day: date) -> Iterator[list[dict[str, Any]]]:
        """Every invoice, through the list by billing date, then a catch-up read.

        The stamps of invoices updated inside the next incremental window are noted, so the
        next sync need not load them again if they do not change."""
        loaded: dict[int, int] = {}  # rows met again (new invoices shift pages; windows)
        for rows in chain(billed_pages(), catch_up(loaded)):
            batch = []
            for raw in rows:
                if loaded_already(raw, loaded):
                    continue
                remembered(raw, recent, sync_day - overlap)
                batch.append(record(raw))
            yield batch

    def changes_read(
        start: date, recent: dict[str, str], sync_day: date
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows whose stamp differs from the one we loaded, or that have none (once a sync
        unless they changed)."""
        batch: list[dict[str, Any]] = []
        unstamped: dict[int, int] = {}  # invoice id -> hash of the row without stamp loaded
        for raw in changed_rows(start, sync_day):
            if remembered(raw, recent, start) or unstamped_again(raw, unstamped):
                continue  # loaded as it is already (overlap, split windows, re-reads)
            batch.append(record(raw))
            if len(batch) >= page_size:
                yield batch
                batch = []
        if batch:
            yield batch

    @dlt.resource(
        name="invoices",
        primary_key="invoice_id",
        write_disposition="merge",
        columns=INVOICE_COLUMNS,
        nested_hints=NESTED_HINTS,
    )
    def invoices() -> Iterator[list[dict[str, Any]]]:
        # State, committed by dlt with the load package (so only with data that landed):
        # `window_start` (ISO day) of the next incremental read, `recent`, invoice id ->
        # lastUpdateDate loaded, for invoices updated inside that window only, and
        # `rows_from`, the list the loaded rows came from.
        state = dlt.current.resource_state()
        sync_day = datetime.now(UTC).date()
        full = (
            dlt.current.resource().write_disposition == "replace"
            or not state.get("window_start")
            or state.get("rows_from") != ROWS_FROM
        )
        previous = None if full else date.fromisoformat(state["window_start"])
        recent: dict[str, str] = {} if full else dict(state.get("recent") or {})
        if previous is not None:
            try:
                yield from changes_read(previous, recent, sync_day)
            except _DayOverflow:
                previous = None  # a day of changes the list cannot reach: read everything
        if previous is None:
            yield from full_read(recent, sync_day)
        latest = max(recent.values(), key=parse_timestamp_utc, default=None)
        start = _next_window_start(previous, latest, sync_day, overlap)
        state["window_start"] = start.isoformat()
        state["recent"] = {key: stamp for key, stamp in recent.items() if _day(stamp) >= start}
        state["rows_from"] = ROWS_FROM

    return invoices


VENDOR = Vendor(
    name=SOURCE,
    source=revolv3_source,
    credential_keys=("token",),
    emulator=make_emulator,
    error_message=error_message,
    ledger_options={"currencies": ("USD",)},
    undated="voids, write-offs and payments made outside Revolv3",
)
