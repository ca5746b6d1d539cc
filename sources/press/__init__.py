"""Frappe Cloud "press" invoices: one unpaged snapshot per run, merged on the invoice name.

`get_summary` returns every Paid or Unpaid invoice of the team at once, so each run reads the
whole set. Items become the child table `invoices__items` (a changed invoice replaces them).
An invoice that was in the previous snapshot and is missing from this one has left the
Paid/Unpaid set: the table `snapshot_membership` records it (`in_snapshot = false`,
`vanished_at`) from the ids kept in dlt resource state, and the staging view stops counting
it as outstanding. See README.md.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.auth import APIKeyAuth

from sources.common.columns import bigint, columns, day, decimal, text, timestamp
from sources.common.errors import SyncError
from sources.common.http import make_rest_client, vendor_message
from sources.common.vendor import Vendor
from sources.press import settings
from sources.press.emulator import make_emulator
from sources.press.helpers import SOURCE, error_message, invoice_record, parse_summary

MONEY = decimal()

INVOICE_COLUMNS = columns(
    name=text(),
    team=text(),
    status=text(),
    payment_mode=text(),
    type=text(),
    currency=text(),
    period_end=day(),
    amount_paid=MONEY,
    items_total=MONEY,
)
NESTED_HINTS: dict[Any, Any] = {
    "items": {
        "columns": columns(
            line_id=text(),
            line_number=bigint(),
            document_name=text(),
            document_type=text(),
            plan=text(),
            quantity=decimal(),
            rate=decimal(),
            amount=MONEY,
        )
    },
}
MEMBERSHIP_HINTS = dlt.mark.make_hints(
    table_name=settings.MEMBERSHIP_TABLE,
    primary_key="name",
    write_disposition="merge",
    columns=columns(
        name=text(),
        in_snapshot={"data_type": "bool", "nullable": True},
        vanished_at=timestamp(),
    ),
)


def _snapshot(client: Any, team: str) -> list[dict[str, Any]]:
    """Every Paid/Unpaid invoice of the team, checked and converted."""
    response = client.get(settings.SUMMARY_PATH)
    if response.status_code == 417:  # frappe.throw: the server refused the call's input
        raise SyncError(
            SOURCE,
            f"the API refused the call (HTTP 417 on GET {settings.SUMMARY_PATH}: "
            f"{vendor_message(response, error_message)})",
            "check SOURCES__PRESS__TEAM names a team these API keys belong to",
        )
    response.raise_for_status()
    records = [invoice_record(raw, team) for raw in parse_summary(response.text)]
    names = [record["name"] for record in records]
    if len(set(names)) != len(names):
        doubled = sorted({name for name in names if names.count(name) > 1})
        raise SyncError(SOURCE, f"the snapshot lists invoices twice: {doubled[:5]}")
    return records


def membership(current: list[str], previous: list[str], now: datetime) -> list[dict[str, Any]]:
    """A row per invoice in this snapshot, and a vanished marker per one that left it."""
    present = set(current)
    rows = [{"name": name, "in_snapshot": True, "vanished_at": None} for name in current]
    rows += [
        {"name": name, "in_snapshot": False, "vanished_at": now}
        for name in previous
        if name not in present
    ]
    return rows


@dlt.source(name="press")
def press_source(
    base_url: str = dlt.config.value,
    api_key: str = dlt.secrets.value,
    api_secret: str = dlt.secrets.value,
    team: str = dlt.config.value,
) -> Any:
    """The Paid and Unpaid invoices of `team` on Frappe Cloud."""
    client = make_rest_client(
        base_url,
        auth=APIKeyAuth(name="Authorization", api_key=f"token {api_key}:{api_secret}"),
        headers={settings.TEAM_HEADER: team},
    )

    @dlt.resource(
        name="invoices",
        primary_key="name",
        write_disposition="merge",
        columns=INVOICE_COLUMNS,
        nested_hints=NESTED_HINTS,
    )
    def invoices() -> Iterator[Any]:
        records = _snapshot(client, team)
        state = dlt.current.resource_state()
        current = [record["name"] for record in records]
        rows = membership(current, state.get("in_snapshot", []), datetime.now(UTC))
        if records:
            yield records
        if rows:
            yield dlt.mark.with_hints(rows, MEMBERSHIP_HINTS, create_table_variant=True)
        # Committed with this load's package: a failed load leaves the previous ids.
        state["in_snapshot"] = sorted(current)

    return invoices


VENDOR = Vendor(
    name=SOURCE,
    source=press_source,
    credential_keys=("api_key", "api_secret", "team"),
    emulator=make_emulator,
    error_message=error_message,
    ledger_options={"currencies": ("USD", "INR")},
)
