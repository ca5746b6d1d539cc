"""Frappe Cloud "press" invoices: one unpaged snapshot per run, merged on the invoice name.

`get_summary` returns every Paid or Unpaid invoice of the team at once, so each run makes one
request and reads the whole set. Only what changed is written: resource state keeps a digest
per invoice of the last snapshot, and an invoice is loaded (items as the child table
`invoices__items`, replaced with it) only when it is new or its digest differs. An invoice
that was in the previous snapshot and is missing from this one has left the Paid/Unpaid set:
the table `snapshot_membership` marks it (`in_snapshot = false`, `vanished_at`), and the
staging view stops counting it as outstanding. A full refresh (replace) loads everything again
and carries vanished invoices over from the warehouse. See README.md.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.sources.helpers.rest_client.auth import APIKeyAuth

from sources.common.columns import bigint, columns, day, decimal, text, timestamp
from sources.common.errors import SyncError
from sources.common.http import make_rest_client, vendor_message
from sources.common.vendor import Vendor
from sources.press import settings
from sources.press.emulator import make_emulator
from sources.press.helpers import (
    SOURCE,
    digest,
    error_message,
    invoice_record,
    parse_summary,
)

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
    records = [invoice_record(raw, team) for raw in parse_summary(response)]
    names = [record["name"] for record in records]
    if len(set(names)) != len(names):
        doubled = sorted({name for name in names if names.count(name) > 1})
        raise SyncError(SOURCE, f"the snapshot lists invoices twice: {doubled[:5]}")
    return records


def _present(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": r["name"], "in_snapshot": True, "vanished_at": None} for r in records]


def _batches(records: list[dict[str, Any]], markers: list[dict[str, Any]]) -> Iterator[Any]:
    """The invoice rows, then the membership rows (a table variant of the same resource)."""
    if records:
        yield records
    if markers:
        yield dlt.mark.with_hints(markers, MEMBERSHIP_HINTS, create_table_variant=True)


def _read(sql: Any, query: str) -> list[tuple]:
    """Rows of a query on this source's dataset; none when its tables are not there yet."""
    try:
        return list(sql.execute_sql(query) or [])
    except DatabaseUndefinedRelation:
        return []


def vanished_rows(
    served: set[str], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every invoice the warehouse holds that this snapshot no longer serves, with its items
    and its vanished marker, read back so a full refresh (replace) keeps it as it was.

    After any completed sync the warehouse holds the previous snapshot plus the invoices that
    vanished before it, so each of these has vanished: earlier (its marker is kept) or now.
    """
    item_columns = list(NESTED_HINTS["items"]["columns"])
    with dlt.current.pipeline().sql_client() as sql:
        invoices = _read(
            sql,
            f"SELECT i._dlt_id, {', '.join(f'i.{c}' for c in INVOICE_COLUMNS)}, "
            "m.in_snapshot, m.vanished_at FROM invoices AS i "
            "LEFT JOIN snapshot_membership AS m ON m.name = i.name ORDER BY i.name",
        )
        items = _read(
            sql,
            f"SELECT _dlt_parent_id, {', '.join(item_columns)} FROM invoices__items "
            "ORDER BY _dlt_parent_id, line_number",
        )
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for parent, *values in items:
        by_parent.setdefault(parent, []).append(dict(zip(item_columns, values, strict=True)))
    records, markers = [], []
    for dlt_id, *values, in_snapshot, vanished_at in invoices:
        record = dict(zip(INVOICE_COLUMNS, values, strict=True))
        if record["name"] in served:
            continue
        record["items"] = by_parent.get(dlt_id, [])
        records.append(record)
        at = vanished_at if in_snapshot is False and vanished_at is not None else now
        markers.append({"name": record["name"], "in_snapshot": False, "vanished_at": at})
    return records, markers


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
        now = datetime.now(UTC)
        digests = {record["name"]: digest(record) for record in records}
        if dlt.current.resource().write_disposition == "replace":
            # Full refresh: the tables are rewritten, so every served invoice is loaded again
            # and the vanished ones are carried over from the warehouse (no longer served).
            kept, markers = vanished_rows(set(digests), now)
            yield from _batches(records + kept, _present(records) + markers)
        else:
            # Name -> digest of the last snapshot as loaded. (A state from before digests
            # holds only the names: every invoice is then loaded once more.)
            known = state.get("digests") or dict.fromkeys(state.get("in_snapshot", []), "")
            changed = [r for r in records if known.get(r["name"]) != digests[r["name"]]]
            gone = [
                {"name": name, "in_snapshot": False, "vanished_at": now}
                for name in known
                if name not in digests
            ]
            yield from _batches(changed, _present(changed) + gone)
        # Committed with this load's package: a failed load leaves the previous digests.
        state["digests"] = dict(sorted(digests.items()))
        state.pop("in_snapshot", None)

    return invoices


VENDOR = Vendor(
    name=SOURCE,
    source=press_source,
    credential_keys=("api_key", "api_secret", "team"),
    emulator=make_emulator,
    error_message=error_message,
    ledger_options={"currencies": ("USD", "INR")},
    undated="payments and status changes",
)
