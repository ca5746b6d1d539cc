"""Revolv3 invoices: a bare JSON array per page, 1-based pages, no paging metadata.

The first sync and `--full-refresh` read the classic list (`GET /api/Invoices`) page by page
until an empty page; later syncs read `GET /api/Invoices/v1` filtered on `lastUpdateDate` since
the last sync (with an overlap), and only invoices whose stamp moved. Each invoice we load is
read from its detail (`GET /api/Invoices/{id}`), whose `invoiceAttempts[]` land in the child
table `invoices__invoice_attempts` and give the amounts paid and due. Merge on `invoice_id`: a
changed invoice replaces its attempts. Details: `sources/revolv3/README.md`.
"""

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
from sources.common.http import make_rest_client
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

INVOICE_COLUMNS = columns(
    invoice_id=bigint(),
    merchant_invoice_ref_id=text(),
    customer_id=text(),
    merchant_customer_ref_id=text(),
    customer_first_name=text(),
    customer_last_name=text(),
    merchant_legal_name=text(),
    bin_number=text(),
    last4_digit=text(),
    invoice_status=text(),
    currency=text(),
    subtotal=MONEY,
    tax=MONEY,
    total=MONEY,
    billing_date=day(),
    billing_date_text=text(),
    amount_received=MONEY,
    amount_refunded=MONEY,
    last_attempt_status=text(),
    last_attempt_at=timestamp(),
    # An invoice met twice in one sync (a window read again) is merged as the copy read
    # last: its detail was fetched later, so it is at least as new.
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


class Revolv3Paginator(PageNumberPaginator):
    """1-based pages until an empty page (no metadata to trust), at most `max_pages` pages.

    `capped` says the last page read was the cap's and was not empty: more rows may follow.
    `first_page` starts a query part-way (to read on from a page already read).
    """

    def __init__(self, max_pages: int, first_page: int = 1) -> None:
        super().__init__(
            base_page=1,
            page=first_page,
            page_param="page",
            total_path=None,
            maximum_page=max_pages + 1,
            stop_after_empty_page=True,
        )
        self.capped = False

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        if not isinstance(response.json(), list):
            raise _malformed(response, f"expected a JSON array, got {response.text[:120]!r}")
        super().update_state(response, data)
        self.capped = bool(data) and not self.has_next_page


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


def _record(client: RESTClient, raw: dict[str, Any], currency: str) -> dict[str, Any]:
    """The invoice as its detail shows it (fetched now, so never older than the list row)."""
    invoice_id = invoice_id_of(raw)
    detail = _fetch_detail(client, invoice_id)
    return invoice_record({**raw, **detail}, detail, currency)


def _bounded(window: Window) -> bool:
    return window[1] is not None


def _last_update(raw: dict[str, Any]) -> str:
    """The v1 row's `lastUpdateDate` as sent (compared as text), checked to be a timestamp."""
    value = raw.get("lastUpdateDate")
    try:
        parse_timestamp_utc(value)
    except DateParseError as err:
        raise BadRecordError(SOURCE, raw.get("invoiceId"), f"lastUpdateDate: {err}") from None
    return value


def _day(stamp: str) -> date:
    return parse_timestamp_utc(stamp).date()


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


@dlt.source(name="revolv3")
def revolv3_source(
    base_url: str = dlt.config.value,
    token: str = dlt.secrets.value,
    page_size: int = settings.PAGE_SIZE,
    max_pages: int = settings.MAX_PAGES,
    currency: str = settings.DEFAULT_CURRENCY,
    overlap_days: int = settings.OVERLAP_DAYS,
) -> Any:
    """All Revolv3 invoices of the merchant behind `token`, with their payment attempts.

    The first sync and `--full-refresh` read the classic list and every invoice's detail;
    later syncs read only invoices whose `lastUpdateDate` moved (README: "Incremental sync").
    """
    currency = _check_currency(currency)
    overlap = timedelta(days=overlap_days)
    sequence = count(1)

    def record(raw: dict[str, Any]) -> dict[str, Any]:
        """The invoice with its detail, numbered in reading order (`read_seq`)."""
        return {**_record(client, raw, currency), "read_seq": next(sequence)}

    client = make_rest_client(
        base_url,
        auth=APIKeyAuth(name=settings.TOKEN_HEADER, api_key=token, location="header"),
        data_selector="$",
    )

    def pages(
        path: str, params: dict[str, Any], paginator: Revolv3Paginator
    ) -> Iterator[list[Any]]:
        return client.paginate(
            path,
            params={"pageSize": page_size, **params},
            paginator=paginator,
            hooks={"response": [decimal_json]},
        )

    def list_pages() -> Iterator[list[dict[str, Any]]]:
        """Every list row, newest billing date first; a capped query goes on in an older window."""
        end: date | None = None
        while True:
            paginator = Revolv3Paginator(max_pages)
            last: dict[str, Any] | None = None
            params = {"endDate": end.isoformat()} if end else {}
            for page in pages(settings.INVOICES_PATH, params, paginator):
                rows = list(page)
                last = rows[-1] if rows else last
                yield rows
            if not paginator.capped or last is None:
                return
            end = _window_end(last, end, max_pages)

    def catch_up(seen: set[int]) -> Iterator[list[dict[str, Any]]]:
        """Invoices billed while we read: they arrive at the top, so re-read until nothing new."""
        for page in pages(settings.INVOICES_PATH, {}, Revolv3Paginator(max_pages)):
            rows = [raw for raw in page if invoice_id_of(raw) not in seen]
            if not rows:
                return
            yield rows

    def changed_rows(start: date, sync_day: date) -> Iterator[tuple[dict[str, Any], str]]:
        """(v1 row, its lastUpdateDate) for every invoice updated on or after `start`.

        One query in invoice id order normally. Past the page cap the window is split by day
        and the halves read in turn; a bounded window that an invoice left while we paged
        (its stamp moved past the window's end, so later rows shifted up one) is read again.
        """
        queue: list[Window] = [(start, None)]
        met: dict[int, tuple[Window, str]] = {}
        split: set[Window] = set()  # read past the cap: their halves are read in full anyway
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

        while queue:
            window = queue.pop(0)
            params = {
                "orderBy": settings.CHANGES_ORDER,
                "lastUpdateStartDate": window[0].isoformat(),
            }
            if window[1] is not None:
                params["lastUpdateEndDate"] = window[1].isoformat()
            first_page, catching_up = 1, False
            while True:
                paginator = Revolv3Paginator(max_pages, first_page)
                last_page, fresh = first_page, False
                for number, page in enumerate(
                    pages(settings.CHANGES_PATH, params, paginator), start=first_page
                ):
                    last_page = number if page else last_page
                    for raw in page:
                        invoice_id, stamp = invoice_id_of(raw), _last_update(raw)
                        left = met.get(invoice_id)
                        moved = left is not None and left[1] != stamp
                        fresh = fresh or left is None or moved
                        if moved and _bounded(left[0]) and left[0] not in (*split, *queue):
                            read_again()
                            queue.append(left[0])  # it left that window while we paged
                        met[invoice_id] = (window, stamp)
                        yield raw, stamp
                if paginator.capped:
                    split.add(window)
                    queue[:0] = _split(window, sync_day)
                    break
                if catching_up and not fresh:
                    break
                # Invoices that joined while we paged land at the end (new ids), perhaps in
                # the last page we read: read on from it until it brings nothing new.
                if catching_up:
                    read_again()
                first_page, catching_up = last_page, True

    def full_read(recent: dict[str, str], sync_day: date) -> Iterator[list[dict[str, Any]]]:
        """Every invoice with its detail, through the classic list.

        Before it, the stamps of the invoices updated inside the next incremental window are
        noted: each detail is fetched after its stamp was read, so it is at least that new.
        """
        try:
            for raw, stamp in changed_rows(sync_day - overlap, sync_day):
                recent[str(invoice_id_of(raw))] = stamp
        except _DayOverflow:
            pass  # an invoice without a noted stamp is fetched again next time: only slower
        seen: set[int] = set()  # rows met again (new invoices shift pages; window overlaps)
        for rows in chain(list_pages(), catch_up(seen)):
            batch = []
            for raw in rows:
                invoice_id = invoice_id_of(raw)
                if invoice_id in seen:
                    continue
                seen.add(invoice_id)
                batch.append(record(raw))
            yield batch

    def changes_read(
        start: date, recent: dict[str, str], sync_day: date
    ) -> Iterator[list[dict[str, Any]]]:
        """Invoices whose stamp differs from the one we loaded, with their details."""
        batch: list[dict[str, Any]] = []
        for raw, stamp in changed_rows(start, sync_day):
            key = str(invoice_id_of(raw))
            if recent.get(key) == stamp:
                continue  # loaded at this stamp already (overlap, split windows, re-reads)
            recent[key] = stamp
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
        # `window_start` (ISO day) of the next incremental read and `recent`, invoice id ->
        # lastUpdateDate loaded, for invoices updated inside that window only.
        state = dlt.current.resource_state()
        sync_day = datetime.now(UTC).date()
        full = dlt.current.resource().write_disposition == "replace" or not state.get(
            "window_start"
        )
        previous = None if full else date.fromisoformat(state["window_start"])
        recent: dict[str, str] = {} if full else dict(state.get("recent") or {})
        if previous is not None:
            try:
                yield from changes_read(previous, recent, sync_day)
            except _DayOverflow:
                previous = None  # a day of changes the v1 list cannot reach: read everything
        if previous is None:
            yield from full_read(recent, sync_day)
        latest = max(recent.values(), key=parse_timestamp_utc, default=None)
        start = _next_window_start(previous, latest, sync_day, overlap)
        state["window_start"] = start.isoformat()
        state["recent"] = {key: stamp for key, stamp in recent.items() if _day(stamp) >= start}

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
