"""An emulator of Meteroid's invoice API (`GET /api/v1/invoices`, `GET /api/v1/invoices/{id}`).

Follows the vendor: Bearer auth; 0-based `page`; `per_page` 1..100, and when `per_page` is
omitted the server's bug (25 rows served, 10 reported); `pagination_meta`; `statuses[]`
(also `statuses` and the older single `status`); `order_by=column.direction` with ties by id
descending; integer minor units; timestamps without a timezone; enums in today's
SCREAMING_SNAKE_CASE or the seed's PascalCase; errors as `{"code", "message"}`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sources.common.sandbox.ledger import (
    DRAFT,
    FAILED,
    OPEN,
    PAID,
    PENDING,
    REFUNDED,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    Ledger,
)
from sources.common.sandbox.server import (
    BadRequest,
    Emulator,
    Faults,
    Request,
    Response,
    int_arg,
)
from sources.common.sandbox.truth import Figures, Money, Transitions, settled_money
from sources.meteroid.settings import INVOICE_STATUSES

API_KEY = "sandbox-meteroid-key"

_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    429: "TOO_MANY_REQUESTS",
}
_ORDER_COLUMNS = {
    "invoice_number": lambda inv: inv.number,
    "customer_name": lambda inv: inv.customer.name,
    "amount": lambda inv: inv.total,
    "invoice_date": lambda inv: inv.issue_date,
    "status": lambda inv: _invoice_status(inv),
    "payment_status": lambda inv: _payment_status(inv),
    "created_at": lambda inv: inv.created_at,
}


def _invoice_status(inv: Invoice) -> str:
    return {DRAFT: "DRAFT", VOID: "VOID", UNCOLLECTIBLE: "UNCOLLECTIBLE"}.get(
        inv.status, "FINALIZED"
    )


def _payment_status(inv: Invoice) -> str:
    if inv.status in (PAID, REFUNDED):
        return "PAID"
    if inv.status == OPEN:
        if inv.payments_settled:
            return "PARTIALLY_PAID"
        last = inv.transactions[-1] if inv.transactions else None
        if last is not None and last.status == FAILED:
            return "ERRORED"
        if last is not None and last.status == PENDING:
            return "PROCESSING"
    return "UNPAID"


def _timestamp(moment: datetime | None) -> str | None:
    """Meteroid's naive UTC timestamps: no offset, microseconds only when there are some."""
    if moment is None:
        return None
    naive = moment.replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds" if naive.microsecond else "seconds")


def _pascal(value: str | None) -> str | None:
    return None if value is None else "".join(part.capitalize() for part in value.split("_"))


class MeteroidEmulator(Emulator):
    name = "meteroid"

    def __init__(
        self,
        ledger: Ledger,
        faults: Faults | None = None,
        api_key: str = API_KEY,
        enum_case: str = "screaming",
    ) -> None:
        super().__init__(ledger, faults)
        if enum_case not in ("screaming", "pascal"):
            raise ValueError("enum_case is 'screaming' (today's servers) or 'pascal' (the seed)")
        self.api_key = api_key
        self.enum_case = enum_case
        self.route("GET", "/api/v1/invoices", "list", self.list_invoices)
        self.route("GET", "/api/v1/invoices/(?P<invoice_id>[^/]+)", "detail", self.get_invoice)

    # -- the vendor's conventions --------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        header = request.header("Authorization") or ""
        if header != f"Bearer {self.api_key}":
            return self.error_body(401, "Invalid or missing API key")
        return None

    def error_body(self, status: int, message: str) -> Response:
        code = _ERROR_CODES.get(status, "INTERNAL_SERVER_ERROR")
        return Response.json(status, {"code": code, "message": message})

    def settings(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__METEROID__BASE_URL": base_url, "SOURCES__METEROID__API_KEY": self.api_key}

    def _enum(self, value: str | None) -> str | None:
        return _pascal(value) if self.enum_case == "pascal" else value

    # -- routes --------------------------------------------------------------------------

    def list_invoices(self, request: Request) -> Response:
        page = int_arg(request, "page", 0, 0)
        per_page = int_arg(request, "per_page", None, 1, 100)
        served_size, reported_size = (per_page, per_page) if per_page else (25, 10)  # vendor bug
        query = tuple(sorted((k, tuple(v)) for k, v in request.query.items() if "page" not in k))
        invoices = self.ledger.memo(
            ("meteroid list", query),
            lambda: self._ordered(
                self._filtered(request), request.arg("order_by") or "created_at.desc"
            ),
        )
        rows = invoices[page * served_size : (page + 1) * served_size]
        return Response.json(
            200,
            {
                "data": [self.render(inv) for inv in rows],
                "pagination_meta": {
                    "page": page,
                    "per_page": reported_size,
                    "total_items": len(invoices),
                    "total_pages": math.ceil(len(invoices) / reported_size),
                },
            },
        )

    def get_invoice(self, request: Request, invoice_id: str) -> Response:
        invoice = self.ledger.get(invoice_id)
        if invoice is None:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        return Response.json(200, self.render(invoice))

    def _filtered(self, request: Request) -> list[Invoice]:
        wanted = request.query.get("statuses[]", []) + request.query.get("statuses", [])
        wanted += request.query.get("status", [])
        statuses = {value.upper().replace("_", "") for value in wanted if value}
        known = {status.replace("_", "") for status in INVOICE_STATUSES}
        if statuses - known:
            raise BadRequest(f"Unknown invoice status: {sorted(statuses - known)}")
        customer = request.arg("customer_id")
        subscription = request.arg("subscription_id")
        result = []
        for inv in self.ledger.snapshot():
            if statuses and _invoice_status(inv).replace("_", "") not in statuses:
                continue
            if customer and customer not in (inv.customer.id, inv.customer.alias):
                continue
            if subscription and subscription != self._subscription_id(inv):
                continue
            result.append(inv)
        return result

    @staticmethod
    def _ordered(invoices: list[Invoice], order_by: str) -> list[Invoice]:
        column, _, direction = order_by.partition(".")
        if column not in _ORDER_COLUMNS or direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid order_by {order_by!r}: use column.asc or column.desc")
        by_id = sorted(invoices, key=lambda inv: inv.id, reverse=True)  # ties: id desc
        return sorted(by_id, key=_ORDER_COLUMNS[column], reverse=direction == "desc")

    @staticmethod
    def _subscription_id(inv: Invoice) -> str | None:
        return f"sub_{inv.customer.id}" if inv.kind == "recurring" else None

    # -- rendering -----------------------------------------------------------------------

    def render(self, inv: Invoice) -> dict[str, Any]:
        self.serve(inv)
        customer = inv.customer
        owed = inv.total - inv.credits - inv.payments_settled
        amount_due = 0 if inv.status in (VOID, PAID, REFUNDED) else max(owed, 0)
        return {
            "id": inv.id,
            "invoice_number": inv.number,
            "status": self._enum(_invoice_status(inv)),
            "payment_status": self._enum(_payment_status(inv)),
            "invoice_type": self._enum(inv.kind.upper()),
            "customer_id": customer.id,
            "customer_details": {
                "id": customer.id,
                "name": customer.name,
                "alias": customer.alias,
                "email": customer.email,
                "vat_number": None if customer.country == "US" else f"{customer.country}123456789",
                "snapshot_at": _timestamp(inv.created_at),
                "billing_address": {
                    "city": None,
                    "country": customer.country,
                    "line1": "1 Main Street",
                    "line2": None,
                    "state": None,
                    "zip_code": "10001",
                },
            },
            "subscription_id": self._subscription_id(inv),
            "currency": inv.currency,
            "invoice_date": inv.issue_date.isoformat(),
            "due_date": inv.due_date.isoformat() if inv.due_date else None,
            "net_terms": inv.net_terms,
            "subtotal": inv.subtotal,
            "subtotal_recurring": inv.subtotal if inv.kind == "recurring" else 0,
            "tax_amount": inv.tax,
            "total": inv.total,
            "amount_due": amount_due,
            "applied_credits": inv.credits,
            "line_items": [
                {
                    "name": line.name,
                    "description": line.description,
                    "quantity": str(line.quantity),
                    "unit_price": str(line.unit_price),
                    "amount_total": line.amount,
                    "tax_rate": str(line.tax_rate),
                    "start_date": line.period_start.isoformat(),
                    "end_date": line.period_end.isoformat(),
                    "sub_line_items": [
                        {
                            "id": sub.id,
                            "name": sub.name,
                            "quantity": str(sub.quantity),
                            "unit_price": str(sub.unit_price),
                            "total": sub.total,
                        }
                        for sub in line.sub_lines
                    ],
                }
                for line in inv.lines
            ],
            "tax_breakdown": [
                {
                    "name": tax.name,
                    "tax_rate": str(tax.rate),
                    "taxable_amount": tax.taxable,
                    "tax_amount": tax.tax,
                    "exemption_type": self._enum(tax.exemption.upper() if tax.exemption else None),
                }
                for tax in inv.taxes
            ],
            "transactions": [
                {
                    "id": txn.id,
                    "amount": txn.amount,
                    "currency": inv.currency,
                    "payment_type": self._enum(txn.kind.upper()),
                    "status": self._enum(txn.status.upper()),
                    "error": txn.error,
                    "payment_method_id": f"pm_{customer.id}",
                    "payment_method_info": {
                        "payment_method_type": self._enum(txn.method.upper()),
                        "card_brand": "visa" if txn.method == "card" else None,
                        "card_last4": "4242" if txn.method == "card" else None,
                        "account_number_hint": None,
                    },
                    "processed_at": _timestamp(txn.processed_at),
                    "provider_transaction_id": f"pi_{txn.id}",
                }
                for txn in inv.transactions
            ],
            "coupons": (
                [{"coupon_id": "cpn_loyal", "name": "Loyalty credit", "total": inv.credits}]
                if inv.credits
                else []
            ),
            "created_at": _timestamp(inv.created_at),
            "updated_at": _timestamp(inv.updated_at),
            "finalized_at": _timestamp(inv.finalized_at),
            "paid_at": _timestamp(inv.paid_at),
            "voided_at": _timestamp(inv.voided_at),
            "marked_as_uncollectible_at": _timestamp(inv.uncollectible_at),
            "memo": inv.memo,
            "reference": None,
            "purchase_order": None,
        }

    # -- ground truth ----------------------------------------------------------------------

    finalization_dated = True  # `finalized_at`: a draft voided unfinalized never had one

    def figures(self, inv: Invoice) -> Figures:
        # A written-off invoice is still owed (the contract zeroes only draft and void);
        # it is not outstanding, so AR figures do not count it.
        owed = max(inv.total - inv.credits - inv.payments_settled, 0)
        return Figures(
            status=inv.status,
            total=inv.major(inv.total),
            amount_paid=inv.major(inv.payments_settled - inv.refunds_settled),
            amount_due=inv.major(owed if inv.status in (OPEN, UNCOLLECTIBLE) else 0),
            credited=inv.major(inv.credits),
            refunded=inv.major(inv.refunds_settled),
        )

    def dated(self, inv: Invoice) -> tuple[Transitions, tuple[Money, ...]]:
        """Meteroid dates every event: finalized_at, paid_at, voided_at,
        marked_as_uncollectible_at, and each transaction's processed_at."""
        transitions = Transitions(
            finalized=inv.finalized_at,
            paid=inv.paid_at,
            voided=inv.voided_at,
            uncollectible=inv.uncollectible_at,
        )
        return transitions, settled_money(inv, inv.transactions)

    def stamp(self, inv: Invoice) -> datetime | None:
        return inv.updated_at


def make_emulator(ledger: Ledger, faults: Faults | None = None, **options: Any) -> MeteroidEmulator:
    return MeteroidEmulator(ledger, faults, **options)
