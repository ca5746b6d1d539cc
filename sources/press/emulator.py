"""An emulator of Frappe Cloud's `press.api.billing.get_summary` (GET or POST).

Follows the vendor: `Authorization: token <key>:<secret>` and `X-Press-Team`; the Frappe
wrapper `{"message": [...]}`; only Paid and Unpaid invoices, newest first (`creation desc`),
no paging and no filters; money as JSON floats in major units; no total, due date or
customer; items carry `parent` and no id; errors as Frappe bodies (`exc_type`,
`_server_messages`) with 401, 403 and 417 (Frappe's ValidationError, also for bad input).

Options reproduce what real servers do: `split_items` the server's bug (items grouped
without sorting, so an invoice can come back with only some of its items) and
`float_artifacts` amounts computed in binary floats (`0.30000000000000004`).
"""

from __future__ import annotations

import json
import zlib
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from typing import Any

from sources.common.sandbox.ledger import (
    OPEN,
    PAID,
    PAYMENT,
    REFUND,
    REFUNDED,
    SETTLED,
    UNCOLLECTIBLE,
    Invoice,
    Ledger,
)
from sources.common.sandbox.server import Emulator, Faults, Request, Response
from sources.common.sandbox.truth import ZERO, Figures, Money, Sighting, Transitions
from sources.press import settings

API_KEY = "sandbox-press-key"
API_SECRET = "sandbox-press-secret"
TEAM = "sandbox-team@example.com"

_EXC_TYPES = {
    401: "AuthenticationError",
    403: "PermissionError",
    404: "DoesNotExistError",
    417: "ValidationError",
    429: "RateLimitExceededError",
}
_PAYMENT_MODES = {
    "card": "Card",
    "bank_transfer": "NEFT",
    "wallet": "UPI Autopay",
    "other": "Paid By Partner",
}
_TYPES = {
    "recurring": "Subscription",
    "one_off": "Service",
    "usage_threshold": "Prepaid Credits",
    "adjustment": "Summary",
}
_DOCUMENTS = {  # ledger product -> (document_type, name pattern)
    "Platform subscription": ("Site", "{alias}-{n}.frappe.cloud"),
    "API usage": ("Site", "api-{alias}-{n}.frappe.cloud"),
    "Storage": ("Site", "files-{alias}-{n}.frappe.cloud"),
    "Support plan": ("Support Plan", "{alias}-support"),
    "Data transfer": ("Server", "f{n}-{alias}.frappe.cloud"),
    "Compute": ("Database Server", "m{n}-{alias}.frappe.cloud"),
}


def press_name(inv: Invoice) -> str:
    """Press's invoice names look like ACC-INV-2024-00012."""
    return f"ACC-INV-{inv.issue_date.year}-{inv.number.rsplit('-', 1)[-1]}"


def _served_status(inv: Invoice) -> str | None:
    return {PAID: "Paid", OPEN: "Unpaid"}.get(inv.status)


def _payment_mode(inv: Invoice) -> str:
    settled = [t for t in inv.transactions if t.kind == PAYMENT and t.status == SETTLED]
    if settled:
        return _PAYMENT_MODES[settled[-1].method]
    return "Prepaid Credits" if inv.credits else ""


class PressEmulator(Emulator):
    name = "press"

    def __init__(
        self,
        ledger: Ledger,
        faults: Faults | None = None,
        api_key: str = API_KEY,
        api_secret: str = API_SECRET,
        team: str = TEAM,
        split_items: bool = False,
        float_artifacts: bool = False,
    ) -> None:
        super().__init__(ledger, faults)
        self.api_key = api_key
        self.api_secret = api_secret
        self.team = team
        self.split_items = split_items
        self.float_artifacts = float_artifacts
        self._snapshot: frozenset[str] = frozenset()  # ledger ids of the last snapshot served
        for method in ("GET", "POST"):
            self.route(method, settings.SUMMARY_PATH, "summary", self.get_summary)

    # -- the vendor's conventions --------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.header("Authorization") != f"token {self.api_key}:{self.api_secret}":
            return self.error_body(401, "Invalid API key or secret")
        if request.header(settings.TEAM_HEADER) != self.team:
            return self.error_body(403, "You are not a member of this team")
        return None

    def error_body(self, status: int, message: str) -> Response:
        status = 417 if status == 400 else status  # frappe.throw answers 417
        kind = _EXC_TYPES.get(status, "InternalServerError")
        server_messages = json.dumps([json.dumps({"message": message, "indicator": "red"})])
        return Response.json(
            status,
            {
                "exception": f"frappe.exceptions.{kind}: {message}",
                "exc_type": kind,
                "_server_messages": server_messages,
            },
        )

    def settings(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__PRESS__BASE_URL": base_url,
            "SOURCES__PRESS__API_KEY": self.api_key,
            "SOURCES__PRESS__API_SECRET": self.api_secret,
            "SOURCES__PRESS__TEAM": self.team,
        }

    # -- the route -----------------------------------------------------------------------

    def get_summary(self, request: Request) -> Response:
        invoices = [inv for inv in self.ledger.snapshot() if _served_status(inv)]
        invoices.sort(key=lambda inv: (inv.created_at, inv.id), reverse=True)
        items = self._grouped_items(invoices)
        rows = [self.render(inv, items.get(press_name(inv), [])) for inv in invoices]
        self._snapshot = frozenset(inv.id for inv in invoices)
        return Response.json(200, {"message": rows})

    def _grouped_items(self, invoices: list[Invoice]) -> dict[str, list[dict[str, Any]]]:
        """Press's own grouping: `groupby` over the item query, then a dict of the groups.

        Items come out invoice by invoice unless `split_items`; then they come in the
        query's unsorted order and an invoice keeps only the last run of its items.
        """
        flat = [
            (press_name(inv), n, line, inv) for inv in invoices for n, line in enumerate(inv.lines)
        ]
        if self.split_items:
            flat.sort(key=lambda entry: zlib.crc32(entry[2].id.encode()))
        return {
            parent: [self._item(parent, n, line, inv) for _, n, line, inv in group]
            for parent, group in groupby(flat, key=lambda entry: entry[0])
        }

    # -- rendering -----------------------------------------------------------------------

    def _amount_paid(self, inv: Invoice) -> Decimal:
        if not self.float_artifacts:
            return inv.major(inv.amount_paid)
        total = 0.0
        for txn in inv.transactions:
            if txn.status == SETTLED and txn.kind in (PAYMENT, REFUND):
                sign = 1 if txn.kind == PAYMENT else -1
                total += sign * float(inv.major(txn.amount))
        return Decimal(repr(total))

    @staticmethod
    def _item(parent: str, n: int, line: Any, inv: Invoice) -> dict[str, Any]:
        doc_type, pattern = _DOCUMENTS.get(line.name, ("Site", "{alias}-{n}.frappe.cloud"))
        return {
            "amount": inv.major(line.amount),
            "name": pattern.format(alias=inv.customer.alias, n=n + 1),
            "type": doc_type,
            "parent": parent,
            "quantity": line.quantity,
            "rate": line.unit_price,
            "plan": line.name,
        }

    def render(self, inv: Invoice, items: list[dict[str, Any]]) -> dict[str, Any]:
        self.serve(inv)  # the warehouse keeps invoices that leave Paid/Unpaid as last served
        return {
            "name": press_name(inv),
            "status": _served_status(inv),
            "period_end": inv.period_end.isoformat(),
            "payment_mode": _payment_mode(inv),
            "type": _TYPES[inv.kind],
            "currency": inv.currency,
            "amount_paid": self._amount_paid(inv),
            "items": items,
        }

    # -- ground truth --------------------------------------------------------------------

    def figures(self, inv: Invoice) -> Figures | None:
        """As sources/press/README.md maps it, for the invoices this emulator has served at
        least once (only what the API has shown can be in the warehouse: an invoice never
        served, a draft or one created, voided or written off since the last `get_summary`,
        is absent, even if it would be served now). One served before and gone since (it left
        Paid/Unpaid) is kept: last seen Paid becomes refunded with nothing paid, last seen
        Unpaid becomes uncollectible with its payments; neither has anything due. Right after
        a sync this is exactly what that sync's snapshot plus the earlier vanished invoices
        give."""
        last = self.served_before(inv)
        if last is None:
            return None
        return _as_served(inv) if _served_status(inv) else _as_vanished(last)

    def identity(self, inv: Invoice) -> tuple[str, date, date | None]:
        """Issued and due at the period's end (Press sends neither date)."""
        return press_name(inv), inv.period_end, inv.period_end

    def listed(self) -> frozenset[str]:
        """The invoices of the last snapshot served: a sync marks any other it had loaded as
        vanished (a stopped sync's snapshot is loaded first, then the new one read)."""
        return self._snapshot

    def sighting(self, version: Invoice, listed: bool, at: datetime) -> Sighting | None:
        """Press dates nothing; an invoice that left the snapshot carries, if it was Paid, a
        refund dated when the sync noticed (`vanished_at`)."""
        if listed:
            return Sighting(at, _as_served(version), None, Transitions(), ())
        figures = _as_vanished(version)
        refund = (
            ()
            if figures.refunded == 0
            else (Money(f"{press_name(version)}:refund", REFUND, figures.refunded, at),)
        )
        return Sighting(at, figures, None, Transitions(), refund)


def _as_served(inv: Invoice) -> Figures:
    """A Paid or Unpaid invoice as served: the total is the items' sum (Press sends no tax or
    total), for a paid invoice the amount paid when larger (it includes the tax items leave
    out), the rest of it settled by credits."""
    total, paid = inv.major(inv.subtotal), inv.major(inv.amount_paid)
    if inv.status == PAID:
        total = max(total, paid)
        return Figures(PAID, total, paid, ZERO, credited=total - paid)
    return Figures(OPEN, total, paid, max(total - paid, ZERO))


def _as_vanished(last: Invoice) -> Figures:
    """An invoice last served as `last` that has left the snapshot: refunded (nothing paid)
    if it was Paid, else uncollectible (its payments kept); nothing due either way."""
    total, paid = last.major(last.subtotal), last.major(last.amount_paid)
    if last.status == PAID:
        return Figures(REFUNDED, total, ZERO, ZERO, refunded=paid)
    return Figures(UNCOLLECTIBLE, total, paid, ZERO)


def make_emulator(ledger: Ledger, faults: Faults | None = None, **options: Any) -> PressEmulator:
    return PressEmulator(ledger, faults, **options)
