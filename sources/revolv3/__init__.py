"""Revolv3 invoices: a bare JSON array per page, 1-based pages, no paging metadata.

The list (`GET /api/Invoices`) is read page by page until an empty page; each invoice's detail
(`GET /api/Invoices/{id}`) brings its `invoiceAttempts[]`, which land in the child table
`invoices__invoice_attempts` and give the amounts paid and due. Merge on `invoice_id`: a
changed invoice replaces its attempts. Details: `sources/revolv3/README.md`.
"""

from collections.abc import Iterator
from datetime import date
from itertools import chain
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Response

from sources.common.columns import bigint, columns, day, decimal, text, timestamp
from sources.common.errors import BadRecordError, SyncError
from sources.common.http import make_rest_client
from sources.common.money import MoneyError, currency_exponent
from sources.common.vendor import Vendor
from sources.revolv3 import settings
from sources.revolv3.emulator import make_emulator
from sources.revolv3.helpers import (
    SOURCE,
    decode_json,
    error_message,
    invoice_id_of,
    invoice_record,
    parse_billing_date,
)

MONEY = decimal()

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
    try:
        body = decode_json(response.text)
    except ValueError:
        raise _malformed(response, f"not JSON: {response.text[:120]!r}") from None
    response.json = lambda **_: body  # what dlt's paginator and data selector read
    return response


class Revolv3Paginator(PageNumberPaginator):
    """1-based pages until an empty page (no metadata to trust), at most `max_pages` pages.

    `capped` says the last page read was the cap's and was not empty: more rows may follow.
    """

    def __init__(self, max_pages: int) -> None:
        super().__init__(
            base_page=1,
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


@dlt.source(name="revolv3")
def revolv3_source(
    base_url: str = dlt.config.value,
    token: str = dlt.secrets.value,
    page_size: int = settings.PAGE_SIZE,
    max_pages: int = settings.MAX_PAGES,
    currency: str = settings.DEFAULT_CURRENCY,
) -> Any:
    """All Revolv3 invoices of the merchant behind `token`, with their payment attempts."""
    currency = _check_currency(currency)
    client = make_rest_client(
        base_url,
        auth=APIKeyAuth(name=settings.TOKEN_HEADER, api_key=token, location="header"),
        data_selector="$",
    )

    def pages(params: dict[str, Any], paginator: Revolv3Paginator) -> Iterator[list[Any]]:
        return client.paginate(
            settings.INVOICES_PATH,
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
            for page in pages({"endDate": end.isoformat()} if end else {}, paginator):
                rows = list(page)
                last = rows[-1] if rows else last
                yield rows
            if not paginator.capped or last is None:
                return
            end = _window_end(last, end, max_pages)

    def catch_up(seen: set[int]) -> Iterator[list[dict[str, Any]]]:
        """Invoices billed while we read: they arrive at the top, so re-read until nothing new."""
        for page in pages({}, Revolv3Paginator(max_pages)):
            rows = [raw for raw in page if invoice_id_of(raw) not in seen]
            if not rows:
                return
            yield rows

    @dlt.resource(
        name="invoices",
        primary_key="invoice_id",
        write_disposition="merge",
        columns=INVOICE_COLUMNS,
        nested_hints=NESTED_HINTS,
    )
    def invoices() -> Iterator[list[dict[str, Any]]]:
        seen: set[int] = set()  # rows met again (new invoices shift pages; window overlaps)
        for rows in chain(list_pages(), catch_up(seen)):
            batch = []
            for raw in rows:
                invoice_id = invoice_id_of(raw)
                if invoice_id in seen:
                    continue
                seen.add(invoice_id)
                batch.append(invoice_record(raw, _fetch_detail(client, invoice_id), currency))
            yield batch

    return invoices


VENDOR = Vendor(
    name=SOURCE,
    source=revolv3_source,
    credential_keys=("token",),
    emulator=make_emulator,
    error_message=error_message,
    ledger_options={"currencies": ("USD",)},
)
