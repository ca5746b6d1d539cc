"""Sequence invoices: cursor pages of whole invoices, each invoice's detail and line items.

The list (`GET /invoices`) has no amount paid, balance, payments, applied credit or lines,
so an invoice is read in full (`GET /invoices/{id}` and `.../line-items`) only when it is
new, can still change (draft, unpaid, partly paid, uncollectible), or its list entry changed
since it was loaded (a refund adds a credit note id): see `sources/sequence/README.md`.
Nested lists become dlt child tables: `invoices__line_items`, `invoices__payment_allocations`,
`invoices__credit_notes`, `invoices__credit_grants`; a changed invoice replaces its child rows
(merge, delete-insert).
"""

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import dlt
import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import HttpBasicAuth
from dlt.sources.helpers.rest_client.paginators import JSONResponseCursorPaginator
from requests import Request, Response

from sources.common.columns import bigint, columns, day, decimal, text, timestamp
from sources.common.errors import SyncError
from sources.common.http import make_rest_client
from sources.common.partial import stopped_part_way
from sources.common.vendor import Vendor
from sources.sequence import settings
from sources.sequence.emulator import make_emulator
from sources.sequence.helpers import (
    SOURCE,
    bucket_of,
    check_summary,
    decode_body,
    entry_hash,
    error_message,
    fingerprint,
    invoice_record,
    is_changeable,
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
        """New and changed invoices; the strategy is in `sources/sequence/README.md`.

        Resource state (committed by dlt with the load package, so it only ever describes
        what landed): `created_mark`, the list's order key of the newest invoice seen; `open`,
        id -> detail digest of every invoice loaded while it could still change; and
        `settled_buckets`, per bucket the XOR of the list-entry digests of the settled
        invoices in it. A full refresh (replace) starts from empty state: everything is read.
        """
        state = dlt.current.resource_state()
        if dlt.current.resource().write_disposition == "replace":
            state.clear()
        state.pop("loaded", None)  # the per-invoice digests of earlier versions
        mark: list[str] | None = state.get("created_mark")
        known_open: dict[str, str] = state.get("open") or {}
        known_buckets: list[int] = state.get("settled_buckets") or []
        if len(known_buckets) != settings.BUCKETS:
            known_buckets = [0] * settings.BUCKETS  # unknown: every settled bucket is re-read
        newest = mark
        still_open: dict[str, str] = {}
        buckets = [0] * settings.BUCKETS  # settled invoices as listed now (the next state)
        unread = [0] * settings.BUCKETS  # ... of them, those not read in full this sync
        waiting: dict[int, list[tuple[str, Any]]] = defaultdict(list)
        reached: set[str] = set()  # listed invoices dealt with, in list order
        done_key = mark  # the order key of the last of them
        kept = 0
        batch: list[dict[str, Any]] = []
        params = {"limit": limit, "sortOrder": settings.SORT_ORDER}
        try:
            for page in client.paginate(settings.LIST_PATH, params=params):
                for item in decode_body(page.response)["items"]:
                    summary = check_summary(item)
                    invoice_id, key = summary["id"], summary["created_key"]
                    is_new = mark is None or key > mark
                    newest = key if newest is None or key > newest else newest
                    bucket, digest_ = bucket_of(invoice_id), entry_hash(item)
                    if (
                        is_new
                        or invoice_id in known_open
                        or is_changeable(summary["status"], summary["payment_status"])
                    ):
                        record, open_digest = _read(client, summary, known_open.get(invoice_id))
                        if open_digest is not None:
                            still_open[invoice_id] = open_digest
                        else:
                            buckets[bucket] ^= digest_
                        if record is not None:
                            batch.append(record)
                    else:  # settled, loaded before: read only if its bucket changed (below)
                        buckets[bucket] ^= digest_
                        unread[bucket] ^= digest_
                        waiting[bucket].append((invoice_id, summary["gross_total"]))
                    reached.add(invoice_id)
                    done_key = key if done_key is None or key > done_key else done_key
                if batch:
                    kept += len(batch)
                    yield batch
                    batch = []
        except requests.RequestException as error:
            # Keep what was read, with state for exactly that: invoices listed after the last
            # one dealt with are new to the next sync, and a settled invoice met unread is
            # counted in its bucket as it was known, so a bucket that changed is read again.
            if batch:
                kept += len(batch)
                yield batch
            state["created_mark"] = done_key
            state["open"] = {
                **{i: d for i, d in known_open.items() if i not in reached},
                **still_open,
            }
            state["settled_buckets"] = [
                known ^ seen_unread ^ seen
                for known, seen_unread, seen in zip(known_buckets, unread, buckets, strict=True)
            ]
            stopped_part_way(SOURCE, error, kept)
            return
        # A settled invoice whose list entry changed since it was loaded (a refund adds a
        # credit note id; anything else the list shows) changes its bucket: re-read them all.
        changed = [b for b in sorted(waiting) if unread[b] != known_buckets[b]]
        for bucket in changed:
            for invoice_id, gross_total in waiting[bucket]:
                summary = {"id": invoice_id, "gross_total": gross_total}
                record, _ = _read(client, summary, None)
                if record is not None:
                    batch.append(record)
                if len(batch) >= limit:
                    yield batch
                    batch = []
        if batch:
            yield batch
        state["created_mark"] = newest
        state["open"] = still_open
        state["settled_buckets"] = buckets

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


def _read(
    client: RESTClient, summary: dict[str, Any], known_digest: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    """Read one invoice's detail: (its record, or None when its detail is still
    `known_digest`; its detail digest if it can still change, else None)."""
    invoice_id = summary["id"]
    detail = _get_json(client, settings.DETAIL_PATH.format(invoice_id=invoice_id))
    digest = fingerprint(detail)
    status = detail.get("status") if isinstance(detail, dict) else None
    payment_status = detail.get("paymentStatus") if isinstance(detail, dict) else None
    open_digest = digest if is_changeable(str(status), str(payment_status)) else None
    if digest == known_digest:
        return None, open_digest
    record = invoice_record(summary, detail, _line_items(client, invoice_id), digest)
    return record, open_digest


VENDOR = Vendor(
    name=SOURCE,
    source=sequence_source,
    credential_keys=("client_id", "client_secret"),
    emulator=make_emulator,
    error_message=error_message,
    ledger_options={"currencies": settings.SANDBOX_CURRENCIES},
    undated="refunds (credit notes), voids, write-offs and finalisations",
)
