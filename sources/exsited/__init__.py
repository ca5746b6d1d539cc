"""Exsited invoices: OAuth2 client credentials, offset pagination, merge on the invoice id.

Nested lists become dlt nested tables: `invoices__lines` (each line with its tax object
flattened onto it) and `invoices__custom_attributes`, handed to dlt as arrow tables
(`sources/common/tables.py`). A changed invoice replaces its child rows (merge,
delete-insert). Syncs are incremental (`incremental.py`): newest-changed first,
down to the last sync's high-water mark, kept in the resource state. With `accounts` set,
only those accounts' invoices are read, through the account endpoint, each with its own state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dlt
import pendulum
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from requests import PreparedRequest, Response

from sources.common.columns import (
    bigint,
    columns,
    day,
    decimal,
    read_order,
    text,
    timestamp,
)
from sources.common.errors import SyncError
from sources.common.fields import decode_json
from sources.common.http import json_decoded_with, make_rest_client, read_ahead
from sources.common.tables import NestedTables, TableBatch, batched
from sources.common.vendor import Vendor
from sources.exsited import settings
from sources.exsited.emulator import make_emulator
from sources.exsited.helpers import SOURCE, error_message, invoice_record
from sources.exsited.incremental import Page, Reader, ScopeSync

MONEY = decimal()

INVOICE_COLUMNS = columns(
    id=text(),
    uuid=text(),
    status=text(),
    payment_status=text(),
    type=text(),
    account_id=text(),
    account_name=text(),
    order_id=text(),
    customer_purchase_order_id=text(),
    currency=text(),
    currency_uuid=text(),
    issue_date=day(),
    due_date=day(),
    billing_start_date=day(),
    billing_end_date=day(),
    subtotal=MONEY,
    tax=MONEY,
    total=MONEY,
    paid=MONEY,
    due=MONEY,
    discount_amount=MONEY,
    shipping_cost=MONEY,
    price_tax_inclusive={"data_type": "bool", "nullable": True},
    invoice_note=text(),
    last_payment_id=text(),
    last_payment_amount=MONEY,
    last_payment_created_at=timestamp(),
    kpi_outstanding=MONEY,
    kpi_overdue=MONEY,
    kpi_payment_applied=MONEY,
    kpi_credit_applied=MONEY,
    kpi_credit_issued=MONEY,
    kpi_last_payment_date=timestamp(),
    kpi_voided_on=timestamp(),
    read_seq=read_order(),
    created_by=text(),
    created_on=timestamp(),
    last_updated_by=text(),
    last_updated_on=timestamp(),
    version=text(),
)
NESTED_COLUMNS: dict[Any, Any] = {
    "lines": columns(
        line_id=text(),
        line_number=bigint(),
        item_id=text(),
        item_uuid=text(),
        item_name=text(),
        quantity=decimal(),
        uom=text(),
        subtotal=MONEY,
        total=MONEY,
        tax_amount=MONEY,
        tax_code=text(),
        tax_rate_percent=decimal(),
        tax_uuid=text(),
        sales_revenue_code=text(),
        charging_start_date=day(),
        charging_end_date=day(),
        version=text(),
    ),
    "custom_attributes": columns(name=text(), value=text()),
}
TABLES = NestedTables(SOURCE, "invoices", INVOICE_COLUMNS, NESTED_COLUMNS)


class ExsitedOAuth2(OAuth2ClientCredentials):
    """dlt's client-credentials auth, the way Exsited's token endpoint and SDK work.

    The token request is a JSON body (dlt sends a form) with `redirect_uri`; the answer
    carries a `refresh_token`. A token past its `expires_in` is refreshed before use, and a
    401 (a token the server dropped early) is refreshed and the request retried once.
    A refresh token the server refuses falls back to a fresh client-credentials grant.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refresh_token: str | None = None

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        if self.access_token is None:
            self.obtain_token()
        elif self.is_token_expired():
            self.refresh()
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        request.register_hook("response", self._retry_on_401)
        return request

    def build_access_token_request(self) -> dict[str, Any]:
        return {
            "json": {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                **self.access_token_request_data,
            }
        }

    def parse_access_token(self, response_json: Any) -> str:
        self.refresh_token = response_json.get("refresh_token")
        return super().parse_access_token(response_json)

    def refresh(self) -> None:
        """A new access token from the refresh token, else from the client credentials."""
        if self.refresh_token:
            grant = self.build_access_token_request()["json"]
            grant.update(grant_type="refresh_token", refresh_token=self.refresh_token)
            response = self.session.post(self.access_token_url, json=grant)
            if response.ok:
                body = response.json()
                self.parse_native_representation(self.parse_access_token(body))
                seconds = self.parse_expiration_in_seconds(body)
                self.token_expiry = pendulum.now().add(seconds=seconds)
                return
        self.obtain_token()

    def _retry_on_401(self, response: Response, **kwargs: Any) -> Response:
        if response.status_code != 401 or getattr(response.request, "_token_retried", False):
            return response
        self.refresh()
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self.access_token}"
        retry._token_retried = True  # type: ignore[attr-defined]
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again


class ExsitedPaginator(OffsetPaginator):
    """`limit`/`offset` until `pagination.records` is reached or `next_page` is empty.

    `wrapper` is the object the account and order endpoints wrap their page in.
    """

    def __init__(self, limit: int, wrapper: str | None = None) -> None:
        self.wrapper = wrapper
        self.records: int = 0  # the list's size in the last page's `pagination.records`
        prefix = f"{wrapper}." if wrapper else ""
        super().__init__(limit=limit, total_path=f"{prefix}pagination.records")

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        body = response.json()
        page = body.get(self.wrapper) if self.wrapper and isinstance(body, dict) else body
        if (
            not isinstance(page, dict)
            or not isinstance(page.get("invoices"), list)
            or not isinstance(page.get("pagination"), dict)
        ):
            raise SyncError(
                SOURCE,
                f"malformed page from {response.request.path_url.split('?')[0]}: expected "
                f"'invoices' and 'pagination', got {str(body)[:120]!r}",
                "the API answered in an unexpected format; check SOURCES__EXSITED__BASE_URL",
            )
        try:
            super().update_state(response, data)
        except ValueError as err:
            raise SyncError(SOURCE, f"malformed pagination: {err}"[:300]) from None
        pagination = page["pagination"]
        self.records = int(pagination.get("records") or 0)
        if "next_page" in pagination and not pagination["next_page"]:
            self._has_next_page = False


def _decimal_body(response: Response) -> Any:
    """The body with JSON numbers as Decimal, so that a numeric amount never becomes a float."""
    return decode_json(SOURCE, response)


def _raise_for_status(response: Response, *args: Any, **kwargs: Any) -> None:
    response.raise_for_status()


HOOKS = {"response": [json_decoded_with(_decimal_body), _raise_for_status]}


@dlt.source(name="exsited")
def exsited_source(
    base_url: str = dlt.config.value,
    client_id: str = dlt.secrets.value,
    client_secret: str = dlt.secrets.value,
    accounts: list[str] | None = None,
    limit: int = settings.LIMIT,
    redirect_uri: str = settings.REDIRECT_URI,
    overlap_seconds: int = settings.OVERLAP_SECONDS,
) -> Any:
    """All Exsited invoices of the tenant, or only those of `accounts` when given."""
    client = make_rest_client(base_url)
    client.auth = ExsitedOAuth2(
        access_token_url=f"{base_url.rstrip('/')}{settings.TOKEN_PATH}",
        client_id=client_id,
        client_secret=client_secret,
        access_token_request_data={"redirect_uri": redirect_uri},
        session=client.session,
    )
    sequence = itertools.count(1)

    def reader(path: str, wrapper: str | None) -> Reader:
        def read(order_by: str, direction: str, whole: bool) -> Iterator[Page]:
            paginator = ExsitedPaginator(limit, wrapper)

            def raw_pages() -> Iterator[tuple[list[Any], int]]:
                for page in client.paginate(
                    path,
                    params={"order_by": order_by, "direction": direction},
                    paginator=paginator,
                    data_selector=f"{wrapper}.invoices" if wrapper else "invoices",
                    hooks={"response": list(HOOKS["response"])},
                ):
                    yield page, paginator.records  # the list's size as this page saw it

            # Reading the whole list, the next page is fetched while this one is converted.
            pages = read_ahead(raw_pages()) if whole else raw_pages()
            for page, total in pages:
                records = [invoice_record(raw) for raw in page]
                for record in records:  # the merge keeps the copy read last (dedup_sort)
                    record["read_seq"] = next(sequence)
                yield Page(records, total)

        return read

    def scope(read: Reader, state: dict[str, Any], full: bool) -> ScopeSync:
        return ScopeSync(
            read,
            state,
            full=full,
            overlap=timedelta(seconds=overlap_seconds),
            max_passes=settings.MAX_PASSES,
            order=(settings.ORDER_BY, settings.DIRECTION),
            fallback_order=(settings.FALLBACK_ORDER_BY, settings.FALLBACK_DIRECTION),
        )

    def as_tables(sync: ScopeSync) -> Iterator[TableBatch]:
        return batched(TABLES.arrow(page) for page in sync.invoices())

    @dlt.resource(
        name="invoices",
        primary_key="id",
        write_disposition="merge",
        columns=TABLES.root_columns,
    )
    def invoices() -> Iterator[TableBatch]:
        TABLES.declare(dlt.current.resource())
        state = dlt.current.resource_state()
        # A full refresh replaces the table: every scope's mark (tenant and every account's,
        # not only those read now) describes rows that are gone.
        full = dlt.current.resource().write_disposition == "replace"
        if full:
            state.clear()
        if not accounts:
            tenant = state.setdefault("tenant", {})
            yield from as_tables(scope(reader(settings.INVOICES_PATH, None), tenant, full))
            return
        per_account = state.setdefault("accounts", {})
        for account_id in accounts:
            path = settings.ACCOUNT_INVOICES_PATH.format(account_id=account_id)
            account = per_account.setdefault(account_id, {})
            yield from as_tables(scope(reader(path, "account"), account, full))
            account["synced_at"] = pendulum.now("UTC").isoformat()

    return invoices.add_yield_map(TABLES.items)


VENDOR = Vendor(
    name=SOURCE,
    source=exsited_source,
    credential_keys=("client_id", "client_secret"),
    emulator=make_emulator,
    error_message=error_message,
    undated="payments before an invoice's last, refunds, write-offs and finalisations",
)
