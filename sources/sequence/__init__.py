"""Sequence invoices: cursor pages of invoice summaries, each invoice's detail and line items.

The list (`GET /invoices/list-summary`) has no amount paid, tax, net total, timestamps or
lines, so every invoice is read in full (`GET /invoices/{id}` and `.../line-items`), but only
when something may have changed: see `sources/sequence/README.md` for the request budget.
Nested lists become dlt child tables: `invoices__line_items`, `invoices__payment_allocations`,
`invoices__credit_notes`, `invoices__credit_grants`; a changed invoice replaces its child rows
(merge, delete-insert).
"""

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from requests import Request, Response

from sources.common.columns import bigint, columns, day, decimal, text, timestamp
from sources.common.errors import SyncError
from sources.common.http import make_rest_client
from sources.common.vendor import Vendor
from sources.sequence import settings
from sources.sequence.emulator import make_emulator
from sources.sequence.helpers import (
    SOURCE,
    check_summary,
    decode_body,
    error_message,
    fingerprint,
    invoice_record,
    vendor_total_record,
)

MONEY = decimal()

INVOICE_COLUMNS = columns(
    id=text(),
    invoice_number=text(),
    status=text(),
    payment_status=text(),
    customer_id=text(),
    customer_name=text(),
    customer_tax_status=text(),
    currency=text(),
    issue_date=day(),
    accounting_date=day(),
    due_date=day(),
    period_start=day(),
    period_end=day(),
    net_total=MONEY,
    total_tax=MONEY,
    gross_total=MONEY,
    balance=MONEY,
    amount_allocated=MONEY,
    amount_credited=MONEY,
    amount_credit_grants=MONEY,
    list_gross_total=MONEY,
    created_at=timestamp(),
    updated_at=timestamp(),
    memo=text(),
    reference=text(),
    purchase_order_number=text(),
    billing_schedule_id=text(),
    detail_fingerprint=text(),
)
NESTED_HINTS: dict[Any, Any] = {
    "line_items": {
        "columns": columns(
            line_id=text(),
            line_index=bigint(),
            group_id=text(),
            title=text(),
            description=text(),
            quantity=decimal(),
            rate=decimal(),
            rate_display=text(),
            tax_rate=decimal(),
            net_total=MONEY,
            total_tax=MONEY,
            gross_total=MONEY,
            period_start=day(),
            period_end=day(),
        )
    },
    "payment_allocations": {
        "columns": columns(
            payment_id=text(),
            amount=MONEY,
            origin=text(),
            paid_at=timestamp(),
            allocated_at=timestamp(),
        )
    },
    "credit_notes": {
        "columns": columns(
            credit_note_id=text(),
            credit_note_number=text(),
            net_total=MONEY,
            total_tax=MONEY,
            gross_total=MONEY,
        )
    },
    "credit_grants": {
        "columns": columns(
            credit_grant_id=text(),
            credit_grant_name=text(),
            amount=MONEY,
            tax_amount=MONEY,
            status=text(),
        )
    },
}


class SequencePaginator(JSONResponseCursorPaginator):
    """`after` cursors from `pagination.after`, until it is missing, null or the page is empty.

    Refuses a page of the wrong shape, and a cursor it has already followed: an API whose
    pagination loops must end a scheduled sync with a clear error, not hang it.
    """

    def __init__(self) -> None:
        super().__init__(
            cursor_path="pagination.after", cursor_param="after", stop_after_empty_page=True
        )
        self._followed: set[str] = set()

    def init_request(self, request: Request) -> None:
        self._followed = set()
        super().init_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        body = decode_body(response)
        path = response.request.path_url.split("?")[0]
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("items"), list)
            or not isinstance(body.get("pagination"), dict)
        ):
            raise SyncError(
                SOURCE,
                f"malformed page from {path}: expected 'items' and 'pagination', "
                f"got {str(body)[:120]!r}",
                "the API answered in an unexpected format; check SOURCES__SEQUENCE__BASE_URL",
            )
        super().update_state(response, data)
        cursor = self._next_reference
        if not self.has_next_page or cursor is None:
            return
        if cursor in self._followed:
            raise SyncError(
                SOURCE,
                f"the API sent the same 'after' cursor twice on {path} (after "
                f"{len(self._followed) + 1} pages): its pagination loops, so the sync stopped "
                "instead of running forever",
                "nothing was loaded for this source; run the sync again later and report "
                "it to Sequence if it persists",
            )
        self._followed.add(cursor)


def _get_json(client: RESTClient, path: str) -> Any:
    response = client.get(path)
    response.raise_for_status()  # 401/404/5xx become one clear line in pipelines.sync
    return decode_body(response)


def _line_items(client: RESTClient, invoice_id: str) -> list[Any]:
    path = settings.LINE_ITEMS_PATH.format(invoice_id=invoice_id)
    items: list[Any] = []
    for page in client.paginate(path, params={"limit": settings.LIMIT, "sortOrder": "ASC"}):
        items.extend(decode_body(page.response)["items"])
    return items


@dlt.source(name="sequence")
def sequence_source(
    base_url: str = dlt.config.value,
    client_id: str = dlt.secrets.value,
    client_secret: str = dlt.secrets.value,
    limit: int = settings.LIMIT,
) -> Any:
    """All Sequence invoices of the account behind `client_id`."""
    client = make_rest_client(
        base_url,
        auth=HttpBasicAuth(client_id, client_secret),
        paginator=SequencePaginator(),
        headers={"sequence-version": settings.API_VERSION},
        data_selector="items",
    )

    @dlt.resource(
        name="invoices",
        primary_key="id",
        write_disposition="merge",
        columns=INVOICE_COLUMNS,
        nested_hints=NESTED_HINTS,
    )
    def invoices() -> Iterator[list[dict[str, Any]]]:
        # id -> [list entry digest, detail digest] of what the warehouse holds. A full refresh
        # (replace) rewrites the table, so it must read and load every invoice again.
        state = dlt.current.resource_state()
        if dlt.current.resource().write_disposition == "replace":
            state["loaded"] = {}
        loaded: dict[str, list[str]] = state.setdefault("loaded", {})
        params = {"limit": limit, "sortOrder": settings.SORT_ORDER}
        for page in client.paginate(settings.LIST_PATH, params=params):
            batch = []
            for item in decode_body(page.response)["items"]:
                record = _changed_invoice(client, item, loaded)
                if record is not None:
                    batch.append(record)
            if batch:
                yield batch

    @dlt.resource(
        name="vendor_totals",
        write_disposition="replace",
        columns=columns(currency=text(), invoice_count=bigint(), gross_total=decimal()),
    )
    def vendor_totals() -> Iterator[list[dict[str, Any]]]:
        """Sequence's own per-currency count and gross total, to reconcile what we loaded."""
        body = _get_json(client, settings.SUMMARY_PATH)
        yield [vendor_total_record(row) for row in body.get("totalsByCurrency") or []]

    return invoices, vendor_totals


def _changed_invoice(
    client: RESTClient, item: Any, loaded: dict[str, list[str]]
) -> dict[str, Any] | None:
    """The invoice's record if it is new or changed since the last load, else None."""
    summary = check_summary(item)
    invoice_id = summary["id"]
    list_digest = fingerprint(item)
    known_list, known_detail = loaded.get(invoice_id, [None, None])
    if known_list == list_digest and summary["status"] in settings.FINAL_STATUSES:
        return None
    detail = _get_json(client, settings.DETAIL_PATH.format(invoice_id=invoice_id))
    detail_digest = fingerprint(detail)
    loaded[invoice_id] = [list_digest, detail_digest]
    if detail_digest == known_detail:
        return None
    return invoice_record(summary, detail, _line_items(client, invoice_id), detail_digest)


VENDOR = Vendor(
    name=SOURCE,
    source=sequence_source,
    credential_keys=("client_id", "client_secret"),
    emulator=make_emulator,
    error_message=error_message,
    ledger_options={"currencies": settings.SANDBOX_CURRENCIES},
)
