"""Meteroid invoices: page-number pagination, bearer auth, merge on the invoice id.

Nested lists become dlt nested tables: `invoices__line_items`,
`invoices__line_items__sub_line_items`, `invoices__tax_breakdown`, `invoices__transactions`,
`invoices__coupons`. Each page is handed to dlt as arrow tables, converted column by column
(`columnar.py`) or, for a page that needs it, record by record (`helpers.py`).
A changed invoice replaces its child rows (merge, delete-insert).
"""

from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Response

from sources.common.columnar import NotColumnar, json_page_records, pages_batch
from sources.common.columns import bigint, columns, day, decimal, text, timestamp
from sources.common.errors import SyncError
from sources.common.fields import decode_json
from sources.common.http import json_decoded_with, make_rest_client
from sources.common.tables import BATCH_INVOICES, NestedTables, TableBatch, staggered_groups
from sources.common.vendor import Vendor
from sources.meteroid import settings
from sources.meteroid.columnar import PAGE_TEXT_FIELDS, invoice_tables
from sources.meteroid.emulator import make_emulator
from sources.meteroid.helpers import SOURCE, error_message, invoice_record

MONEY = decimal()

INVOICE_COLUMNS = columns(
    id=text(),
    invoice_number=text(),
    status=text(),
    payment_status=text(),
    invoice_type=text(),
    customer_id=text(),
    customer_name=text(),
    customer_alias=text(),
    customer_email=text(),
    customer_vat_number=text(),
    customer_country=text(),
    subscription_id=text(),
    currency=text(),
    invoice_date=day(),
    due_date=day(),
    net_terms=bigint(),
    subtotal=MONEY,
    subtotal_recurring=MONEY,
    tax_amount=MONEY,
    total=MONEY,
    amount_due=MONEY,
    applied_credits=MONEY,
    amount_received=MONEY,
    amount_refunded=MONEY,
    created_at=timestamp(),
    # When paging drift returns an invoice twice in one sync, keep the newer version.
    updated_at={**timestamp(), "dedup_sort": "desc"},
    finalized_at=timestamp(),
    paid_at=timestamp(),
    voided_at=timestamp(),
    marked_as_uncollectible_at=timestamp(),
    memo=text(),
    reference=text(),
    purchase_order=text(),
)
NESTED_COLUMNS: dict[Any, Any] = {
    "line_items": columns(
        line_id=text(),
        line_number=bigint(),
        name=text(),
        description=text(),
        quantity=decimal(),
        unit_price=decimal(),
        amount_total=MONEY,
        tax_rate=decimal(),
        start_date=day(),
        end_date=day(),
    ),
    ("line_items", "sub_line_items"): columns(
        id=text(),
        parent_line_id=text(),
        name=text(),
        quantity=decimal(),
        unit_price=decimal(),
        total=MONEY,
    ),
    "tax_breakdown": columns(
        name=text(),
        tax_rate=decimal(),
        taxable_amount=MONEY,
        tax_amount=MONEY,
        exemption_type=text(),
    ),
    "transactions": columns(
        id=text(),
        payment_type=text(),
        status=text(),
        amount=MONEY,
        currency=text(),
        payment_method_id=text(),
        payment_method_type=text(),
        card_brand=text(),
        card_last4=text(),
        processed_at=timestamp(),
        error=text(),
        provider_transaction_id=text(),
    ),
    "coupons": columns(coupon_id=text(), name=text(), total=MONEY),
}
TABLES = NestedTables(SOURCE, "invoices", INVOICE_COLUMNS, NESTED_COLUMNS)


def checked_page(response: Response) -> dict[str, Any]:
    """The body of one list page, or a SyncError naming the request if it is not one."""
    body = response.json()
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("data"), list)
        or not isinstance(body.get("pagination_meta"), dict)
    ):
        raise SyncError(
            SOURCE,
            f"malformed page from {response.request.path_url.split('?')[0]}: expected "
            f"'data' and 'pagination_meta', got {str(body)[:120]!r}",
            "the API answered in an unexpected format; check SOURCES__METEROID__BASE_URL",
        )
    return body


def page_rows(response: Response) -> list[Any]:
    """A page's invoices, decoded and checked."""
    return checked_page(response)["data"]


def page_records(response: Response) -> pa.StructArray | list[Any]:
    """A page's invoices read by arrow from its body; decoded and checked if it can't."""
    try:
        return json_page_records(
            response.content, "data", PAGE_TEXT_FIELDS, objects=("pagination_meta",)
        )
    except NotColumnar:
        return page_rows(response)


def _orjson_body(response: Response) -> Any:
    """The body decoded with orjson, several times faster than requests' decoder.

    Exact either way: Meteroid sends money as integer minor units and quantities and rates
    as decimal strings; a JSON number with a fraction would arrive as a float, which
    `parse_decimal` refuses with an error naming the field.
    """
    return decode_json(SOURCE, response, lambda r: orjson.loads(r.content))


class MeteroidPaginator(PageNumberPaginator):
    """0-based pages until `pagination_meta.total_pages`; refuses a page of the wrong shape."""

    def __init__(self) -> None:
        super().__init__(base_page=0, page_param="page", total_path="pagination_meta.total_pages")

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        checked_page(response)
        super().update_state(response, data)


@dlt.source(name="meteroid")
def meteroid_source(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    per_page: int = settings.PER_PAGE,
    parallel_pages: int = settings.PARALLEL_PAGES,
    max_requests_per_second: float | None = None,
) -> Any:
    """All Meteroid invoices of the account behind `api_key`.

    With `parallel_pages` > 1, the first page tells how many there are and the rest are
    fetched concurrently by dlt's extract workers (`dlt.defer`); `max_requests_per_second`
    paces requests below an account's rate limit.
    """
    client = make_rest_client(
        base_url,
        auth=BearerTokenAuth(api_key),
        paginator=MeteroidPaginator(),
        data_selector="data",
        max_requests_per_second=max_requests_per_second,
    )
    client.session.hooks["response"].insert(0, json_decoded_with(_orjson_body))
    params = {"per_page": per_page, "order_by": settings.ORDER_BY}

    def page_response(page: int) -> Response:
        response = client.get(settings.INVOICES_PATH, params={**params, "page": page})
        response.raise_for_status()
        return response

    def batch(pages: Iterable[tuple[pa.StructArray | list[Any], Response]]) -> TableBatch:
        return pages_batch(
            pages,
            columnar=lambda invoices: invoice_tables(invoices, TABLES),
            records=lambda rows: TABLES.arrow(invoice_record(raw) for raw in rows),
            reread=page_rows,
        )

    def fetched(pages: Iterable[int]) -> Iterator[tuple[pa.StructArray | list[Any], Response]]:
        for page in pages:
            response = page_response(page)
            yield page_records(response), response

    def read_on(page: int) -> Iterator[tuple[list[Any], Response]]:
        """Pages from `page` to the first empty one, that one too (a batch has a page at
        least): invoices created while we read sort last (oldest first)."""
        while True:
            rows = page_rows(response := page_response(page))
            yield rows, response
            if not rows:
                return
            page += 1

    @dlt.defer
    def pages_batch_of(pages: range) -> TableBatch:
        return batch(fetched(pages))

    @dlt.defer
    def last_pages_batch(pages: range, then_from: int) -> TableBatch:
        """The last group of pages, then on to the first empty page: read after the group,
        not while the others are still being read, so invoices created meanwhile are met."""
        return batch(chain(fetched(pages), read_on(then_from)))

    @dlt.resource(
        name="invoices",
        primary_key="id",
        write_disposition="merge",
        columns=TABLES.root_columns,
    )
    def invoices() -> Iterator[Any]:
        TABLES.declare(dlt.current.resource())
        group = max(1, BATCH_INVOICES // per_page)
        if parallel_pages <= 1:
            pages = client.paginate(settings.INVOICES_PATH, params=params)
            read = ((page, page.response) for page in pages)
            for page in read:  # a group's pages handed on one at a time, as they arrive
                yield batch(chain([page], islice(read, group - 1)))
            return
        first = page_response(0)
        body = checked_page(first)
        yield batch([(body["data"], first)])
        known = body["pagination_meta"]["total_pages"]
        # a group's pages are read one after another; groups run in dlt's worker pool
        *groups, last = [*staggered_groups(1, known, group)] or [range(0)]
        for pages in groups:
            yield pages_batch_of(pages)
        yield last_pages_batch(last, max(known, 1))

    return invoices.add_yield_map(TABLES.items)


VENDOR = Vendor(
    name=SOURCE,
    source=meteroid_source,
    credential_keys=("api_key",),
    emulator=make_emulator,
    error_message=error_message,
)
