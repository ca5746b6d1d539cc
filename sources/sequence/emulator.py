"""An emulator of Sequence's invoice API, version 2024-07-30.

Routes: `GET /invoices` (cursor pages of whole invoices, the spec's `Invoice`: no balance,
allocations or applied credit, but `creditNoteIds`, `createdAt` and `updatedAt`),
`GET /invoices/list-summary` (cursor pages of summaries; same filters and order),
`GET /invoices/summary` (per-currency totals, no paging), `GET /invoices/{id}` (the full
invoice) and `GET /invoices/{id}/line-items` (cursor pages). Follows the vendor: HTTP Basic
auth with client id and secret; the optional `sequence-version` header (only 2024-07-30 is
served); `before`/`after` cursors, `limit` 1..100 (20 when omitted: the API documents no
default), `sortOrder` ASC|DESC (default DESC), `sortBy` (default creation time); the last
page carries no `after`; money as decimal strings in the invoice's currency, except the
lists' `grossTotal`, which the seed shows as a JSON number (`gross_total="number"`), and the
summary's totals, numbers per the spec.

Filters take comma-separated values; `...Before` is exclusive and `...After` inclusive (our
reading: consecutive windows then never overlap). Sequence has no sub-line items, failed
payment attempts or refunds as such: a ledger line is one line item (its sub-lines are not
shown), only settled payments appear (`paymentAllocations`), a refund is a credit note applied
to the paid invoice, and credit from the customer's balance is an applied credit grant.

`cursor_mode` makes the list's pagination misbehave for tests: "endless" answers every page
with the same `after` cursor; "empty_tail" gives the last page an `after` that leads to an
empty page (which echoes the cursor it was asked for).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sources.common.sandbox.ledger import (
    DRAFT,
    OPEN,
    PAID,
    PAYMENT,
    REFUND,
    REFUNDED,
    REVERSE_CHARGE,
    SETTLED,
    TAX_EXEMPT,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    Ledger,
    Line,
)
from sources.common.sandbox.server import (
    BadRequest,
    Emulator,
    Faults,
    Request,
    Response,
    int_arg,
)
from sources.common.sandbox.truth import Figures, Money, Transitions, settled_money, written
from sources.sequence.settings import API_VERSION, INVOICE_STATUSES, PAYMENT_STATUSES

CLIENT_ID = "sandbox-sequence-client"
CLIENT_SECRET = "sandbox-sequence-secret"
ACCOUNT_ID = "68233908-402a-43b4-8952-1c2ab0ef0b25"
DEFAULT_LIMIT = 20
CURSOR_MODES = ("normal", "endless", "empty_tail")
# The properties of the spec's `Invoice` schema (items of `GET /invoices`).
LIST_ITEM_KEYS = frozenset(
    """id sequenceAccountId status currency invoiceNumber dueDate purchaseOrderNumber reference
    customerEmails customerLegalCompanyName customerBillingAddress customerShippingAddress memo
    paymentOptions billingPeriod customerId totalTax netTotal grossTotal metadata paymentStatus
    createdAt creditNoteIds linkedServices merchantDetails accountingDate customerTaxStatus
    renderSettings isCustomerArchived updatedAt billingScheduleId issueDate customerTaxId
    creditBalances dunningStatus calculatedAt""".split()  # noqa: SIM905
)

_SORT_KEYS: dict[str, Callable[[Invoice], str]] = {
    "createdAt": lambda inv: inv.created_at.isoformat(),
    "invoiceNumber": lambda inv: inv.number,
    "accountingDate": lambda inv: inv.issue_date.isoformat(),
    "dueDate": lambda inv: inv.due_date.isoformat() if inv.due_date else "",
}


# -- the ledger in Sequence's terms ---------------------------------------------------------


def invoice_status(inv: Invoice) -> str:
    if inv.status == DRAFT:
        return "IN_PROGRESS" if inv.kind == "usage_threshold" else "DRAFT"
    if inv.status == VOID:
        return "VOIDED"
    return "FINAL" if inv.kind == "one_off" else "SENT"


def payment_status(inv: Invoice) -> str:
    if inv.status in (PAID, REFUNDED):
        return "PAID"
    if inv.status == UNCOLLECTIBLE:
        return "UNCOLLECTIBLE"
    return "PARTIALLY_PAID" if inv.payments_settled else "UNPAID"


def balance(inv: Invoice) -> int:
    """What is still owed: open and uncollectible invoices only (credit grants count)."""
    if inv.status not in (OPEN, UNCOLLECTIBLE):
        return 0
    return max(inv.total - inv.credits - inv.payments_settled, 0)


def _sent_date(inv: Invoice) -> date | None:
    if invoice_status(inv) != "SENT" or inv.finalized_at is None:
        return None
    return inv.finalized_at.date()


def _utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _decimal_text(value: Decimal) -> str:
    return f"{value:f}"


def _line_taxes(inv: Invoice) -> list[int]:
    """The invoice's tax spread over its lines (rounded per line, remainder on the last)."""
    shares = [int((Decimal(line.amount) * line.tax_rate).to_integral_value()) for line in inv.lines]
    if shares:
        shares[-1] += inv.tax - sum(shares)
    return shares


# -- cursors ----------------------------------------------------------------------------------


def encode_cursor(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(f"Invalid pagination cursor: {cursor!r}") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise BadRequest(f"Invalid pagination cursor: {cursor!r}")
    return value[0], value[1]


class SequenceEmulator(Emulator):
    name = "sequence"

    def __init__(
        self,
        ledger: Ledger,
        faults: Faults | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        gross_total: str = "string",
        cursor_mode: str = "normal",
    ) -> None:
        super().__init__(ledger, faults)
        if gross_total not in ("string", "number"):
            raise ValueError("gross_total is 'string' (the spec) or 'number' (the seed)")
        if cursor_mode not in CURSOR_MODES:
            raise ValueError(f"cursor_mode is one of {CURSOR_MODES}")
        self.client_id = client_id
        self.client_secret = client_secret
        self.gross_total = gross_total
        self.cursor_mode = cursor_mode
        self.versions: Counter[str | None] = Counter()  # `sequence-version` headers seen
        # Specific paths first: `/invoices/{id}` would also match them.
        self.route("GET", "/invoices/list-summary", "list_summary", self.list_summary)
        self.route("GET", "/invoices", "list", self.list_invoices)
        self.route("GET", "/invoices/summary", "summary", self.summary)
        self.route("GET", "/invoices/(?P<invoice_id>[^/]+)/line-items", "line_items", self.lines)
        self.route("GET", "/invoices/(?P<invoice_id>[^/]+)", "detail", self.get_invoice)

    # -- the vendor's conventions --------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        version = request.header("sequence-version")
        self.versions[version] += 1
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if (request.header("Authorization") or "") != f"Basic {expected}":
            return self.error_body(401, "Unauthorized: invalid client credentials")
        if version is not None and version != API_VERSION:
            return self.error_body(400, f"Unsupported sequence-version {version!r}")
        return None

    def error_body(self, status: int, message: str) -> Response:
        return Response.json(status, {"status": status, "message": message})

    def settings(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__SEQUENCE__BASE_URL": base_url,
            "SOURCES__SEQUENCE__CLIENT_ID": self.client_id,
            "SOURCES__SEQUENCE__CLIENT_SECRET": self.client_secret,
        }

    # -- routes --------------------------------------------------------------------------

    def list_summary(self, request: Request) -> Response:
        return self._list(request, self.render_summary)

    def _list(self, request: Request, render: Callable[[Invoice], dict[str, Any]]) -> Response:
        order = request.arg("sortOrder") or "DESC"
        sort_by = request.arg("sortBy") or "createdAt"
        if order not in ("ASC", "DESC"):
            raise BadRequest(f"Invalid sortOrder {order!r}: use ASC or DESC")
        if sort_by not in _SORT_KEYS:
            raise BadRequest(f"Invalid sortBy {sort_by!r}: use one of {sorted(_SORT_KEYS)}")
        sort_key = _SORT_KEYS[sort_by]
        invoices = self._filtered(request)
        page, pagination = self._page(
            invoices,
            lambda inv: (sort_key(inv), inv.id),
            order == "DESC",
            request,
            self.cursor_mode,
        )
        body = {"items": [render(inv) for inv in page], "pagination": pagination}
        return Response.json(200, body)

    def list_invoices(self, request: Request) -> Response:
        """`GET /invoices`: the same filters, order and cursors, whole `Invoice` objects."""
        return self._list(request, self.render_list_item)

    def summary(self, request: Request) -> Response:
        totals: dict[str, dict[str, Any]] = {}
        for inv in self._filtered(request):
            row = totals.setdefault(
                inv.currency,
                {"currency": inv.currency, "invoiceCount": 0, "grossTotal": Decimal(0)},
            )
            row["invoiceCount"] += 1
            row["grossTotal"] += inv.major(inv.total)
        return Response.json(200, {"totalsByCurrency": [totals[c] for c in sorted(totals)]})

    def get_invoice(self, request: Request, invoice_id: str) -> Response:
        inv = self.ledger.get(invoice_id)
        if inv is None:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        return Response.json(200, self.render_invoice(inv))

    def lines(self, request: Request, invoice_id: str) -> Response:
        inv = self.ledger.get(invoice_id)
        if inv is None:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        order = request.arg("sortOrder") or "ASC"
        if order not in ("ASC", "DESC"):
            raise BadRequest(f"Invalid sortOrder {order!r}: use ASC or DESC")
        taxes = _line_taxes(inv)
        items = [self.render_line(inv, n, line, taxes[n]) for n, line in enumerate(inv.lines)]
        page, pagination = self._page(
            items, lambda item: (f"{item['index']:06d}", item["id"]), order == "DESC", request
        )
        return Response.json(200, {"items": page, "pagination": pagination})

    # -- paging and filtering ------------------------------------------------------------

    def _page(
        self,
        rows: list[Any],
        key: Callable[[Any], tuple[str, str]],
        descending: bool,
        request: Request,
        cursor_mode: str = "normal",
    ) -> tuple[list[Any], dict[str, Any]]:
        """One page of `rows` by `before`/`after` cursor, and Sequence's `pagination` object."""
        limit = int_arg(request, "limit", DEFAULT_LIMIT, 1, 100)
        rows = sorted(rows, key=key, reverse=descending)
        keys = [key(row) for row in rows]
        after, before = request.arg("after"), request.arg("before")
        if cursor_mode == "endless":
            after = before = None
        if after and before:
            raise BadRequest("Use either before or after, not both")
        if after:
            cursor = decode_cursor(after)
            start = next(
                (i for i, k in enumerate(keys) if (k < cursor if descending else k > cursor)),
                len(rows),
            )
            end = start + limit
        elif before:
            cursor = decode_cursor(before)
            end = next(
                (i for i, k in enumerate(keys) if (k <= cursor if descending else k >= cursor)),
                len(rows),
            )
            start = max(end - limit, 0)
        else:
            start, end = 0, limit
        page, page_keys = rows[start:end], keys[start:end]
        pagination: dict[str, Any] = {"totalResultSize": len(rows)}
        if page and start > 0:
            pagination["before"] = encode_cursor(page_keys[0])
        if page and (end < len(rows) or cursor_mode in ("endless", "empty_tail")):
            pagination["after"] = encode_cursor(page_keys[-1])
        elif not page and after and cursor_mode == "empty_tail":
            pagination["after"] = after
        return page, pagination

    def _filtered(self, request: Request) -> list[Invoice]:
        statuses = _enum_list(request, "invoiceStatus", INVOICE_STATUSES)
        no_statuses = _enum_list(request, "excludeInvoiceStatus", INVOICE_STATUSES)
        payments = _enum_list(request, "invoicePaymentStatus", PAYMENT_STATUSES)
        no_payments = _enum_list(request, "excludeInvoicePaymentStatus", PAYMENT_STATUSES)
        customers = _text_list(request, "customerId")
        no_customers = _text_list(request, "excludeCustomerId")
        currencies = _text_list(request, "invoiceCurrency")
        no_currencies = _text_list(request, "excludeInvoiceCurrency")
        numbers = _text_list(request, "invoiceNumber")
        no_numbers = _text_list(request, "excludeInvoiceNumber")
        search = (request.arg("search") or "").lower()
        no_search = (request.arg("excludeSearch") or "").lower()
        windows = [
            (_date_arg(request, f"{field}After"), _date_arg(request, f"{field}Before"), getter)
            for field, getter in (
                ("invoice", lambda inv: inv.issue_date),
                ("due", lambda inv: inv.due_date),
                ("sent", _sent_date),
            )
        ]
        result = []
        for inv in self.ledger.snapshot():
            status, paid = invoice_status(inv), payment_status(inv)
            checks = (
                _keep(status, statuses, no_statuses),
                _keep(paid, payments, no_payments),
                _keep(inv.customer.id, customers, no_customers),
                _keep(inv.currency, currencies, no_currencies),
                _keep(inv.number, numbers, no_numbers),
                not search or search in inv.number.lower(),
                not no_search or no_search not in inv.number.lower(),
                all(_in_window(get(inv), low, high) for low, high, get in windows),
            )
            if all(checks):
                result.append(inv)
        return result

    # -- rendering -----------------------------------------------------------------------

    def _money(self, inv: Invoice, minor: int) -> str:
        return _decimal_text(inv.major(minor))

    def render_summary(self, inv: Invoice) -> dict[str, Any]:
        gross = inv.major(inv.total)
        body = {
            "id": inv.id,
            "invoiceNumber": inv.number,
            "status": invoice_status(inv),
            "paymentStatus": payment_status(inv),
            "currency": inv.currency,
            "grossTotal": gross if self.gross_total == "number" else _decimal_text(gross),
            "customerId": inv.customer.id,
            "customerLegalCompanyName": inv.customer.name,
            "billingScheduleId": f"bs_{inv.customer.id}" if inv.kind == "recurring" else None,
            "billingPeriod": {
                "start": inv.period_start.isoformat(),
                "endInclusive": inv.period_end.isoformat(),
            },
            "dueDate": inv.due_date.isoformat() if inv.due_date else None,
            "dueDateSource": "CALCULATED",
            "accountingDate": inv.issue_date.isoformat(),
            "links": [],
        }
        return {key: value for key, value in body.items() if value is not None}

    def render_invoice(self, inv: Invoice) -> dict[str, Any]:
        self.serve(inv)
        customer = inv.customer
        address = {"line1": "1 Main Street", "town": "Springfield", "postcode": "10001"}
        address["country"] = customer.country
        refunds = [t for t in inv.transactions if t.kind == REFUND and t.status == SETTLED]
        payments = [t for t in inv.transactions if t.kind == PAYMENT and t.status == SETTLED]
        first_line = [inv.lines[0].id] if inv.lines else []
        body: dict[str, Any] = {
            "id": inv.id,
            "sequenceAccountId": ACCOUNT_ID,
            "billingScheduleId": f"bs_{customer.id}" if inv.kind == "recurring" else None,
            "status": invoice_status(inv),
            "currency": inv.currency,
            "invoiceNumber": inv.number,
            "issueDate": inv.issue_date.isoformat(),
            "dueDate": inv.due_date.isoformat() if inv.due_date else None,
            "customerEmails": [customer.email],
            "customerLegalCompanyName": customer.name,
            "customerBillingAddress": address,
            "customerShippingAddress": address,
            "memo": inv.memo,
            "paymentOptions": ["BANK_TRANSFER", "LINK"],
            "billingPeriod": {
                "start": inv.period_start.isoformat(),
                "endInclusive": inv.period_end.isoformat(),
            },
            "customerId": customer.id,
            "totalTax": self._money(inv, inv.tax),
            "netTotal": self._money(inv, inv.subtotal),
            "grossTotal": self._money(inv, inv.total),
            "metadata": [],
            "paymentStatus": payment_status(inv),
            "createdAt": _utc(inv.created_at),
            "updatedAt": _utc(inv.updated_at),
            "creditNoteIds": [f"cn_{t.id}" for t in refunds],
            "linkedServices": [],
            "accountingDate": inv.issue_date.isoformat(),
            "customerTaxStatus": {REVERSE_CHARGE: "REVERSE_CHARGED", TAX_EXEMPT: "TAX_EXEMPT"}.get(
                customer.exemption or "", "TAXED"
            ),
            "renderSettings": {"paymentLinkDisplay": "SHOW_PAYMENT_LINK"},
            "isCustomerArchived": False,
            "integrationPaymentStatuses": {},
            "appliedCreditNotes": [
                {
                    "id": f"cn_{t.id}",
                    "creditNoteNumber": f"CN-{t.id}",
                    "netTotal": self._money(inv, t.amount),
                    "totalTax": self._money(inv, 0),
                    "grossTotal": self._money(inv, t.amount),
                    "lineItems": [
                        {
                            "name": "Refund",
                            "netTotal": self._money(inv, t.amount),
                            "grossTotal": self._money(inv, t.amount),
                            "invoiceLineItemIds": first_line,
                        }
                    ],
                }
                for t in refunds
            ],
            "appliedCreditGrants": (
                [
                    {
                        "creditGrantId": f"cg_{customer.id}",
                        "creditGrantName": "Prepaid credit",
                        "amount": self._money(inv, inv.credits),
                        "status": "APPLIED",
                    }
                ]
                if inv.credits
                else []
            ),
            "projectedCreditGrants": [],
            "paymentAllocations": [
                {
                    "paymentId": t.id,
                    "amount": self._money(inv, t.amount),
                    "allocatedAt": _utc(t.processed_at),
                    "paidAt": _utc(t.processed_at),
                    "origin": "STRIPE" if t.method == "card" else "MANUAL",
                }
                for t in payments
            ],
            "paymentTermDays": inv.net_terms,
            "dueDateSource": "CALCULATED",
        }
        if inv.status != DRAFT:  # a draft has no ledger balance yet
            body["balance"] = self._money(inv, balance(inv))
            body["balanceVersion"] = inv.version
        return {key: value for key, value in body.items() if value is not None}

    def render_list_item(self, inv: Invoice) -> dict[str, Any]:
        """An item of `GET /invoices` (the spec's `Invoice`): the invoice without its balance,
        allocations and applied credit; `creditNoteIds` and `updatedAt` are there."""
        body = {k: v for k, v in self.render_invoice(inv).items() if k in LIST_ITEM_KEYS}
        if self.gross_total == "number":
            body["grossTotal"] = inv.major(inv.total)
        return body

    def render_line(self, inv: Invoice, index: int, line: Line, tax: int) -> dict[str, Any]:
        return {
            "id": line.id,
            "invoiceId": inv.id,
            "title": line.name,
            "description": line.description,
            "quantity": _decimal_text(line.quantity),
            "rate": _decimal_text(line.unit_price),
            "taxRate": _decimal_text(line.tax_rate),
            "servicePeriodStart": f"{line.period_start.isoformat()}T00:00:00Z",
            "servicePeriodEnd": f"{line.period_end.isoformat()}T00:00:00Z",
            "servicePeriod": {
                "startDate": line.period_start.isoformat(),
                "endDate": line.period_end.isoformat(),
            },
            "index": index,
            "netTotal": self._money(inv, line.amount),
            "totalTax": self._money(inv, tax),
            "grossTotal": self._money(inv, line.amount + tax),
            "rateDisplay": "ABSOLUTE",
            "externalIds": [],
        }

    # -- ground truth --------------------------------------------------------------------

    def figures(self, inv: Invoice) -> Figures:
        """Paid = settled payments less refunds (credit notes on a paid invoice); due = balance."""
        settled = inv.status in (PAID, REFUNDED)
        return Figures(
            status=inv.status,
            total=inv.major(inv.total),
            amount_paid=inv.major(inv.payments_settled - inv.refunds_settled),
            amount_due=inv.major(balance(inv)),
            credited=inv.major(inv.credits),
            refunded=inv.major(inv.refunds_settled if settled else 0),
        )

    def dated(self, inv: Invoice) -> tuple[Transitions, tuple[Money, ...]]:
        """Each payment allocation's `paidAt`; credit notes, voids, write-offs and
        finalisations carry no date."""
        payments = [t for t in inv.transactions if t.kind == PAYMENT]
        return Transitions(), settled_money(inv, payments, "ms")

    def stamp(self, inv: Invoice) -> datetime | None:
        return written(inv.updated_at, "ms")


# -- query arguments --------------------------------------------------------------------------


def _text_list(request: Request, name: str) -> set[str]:
    parts = {part.strip() for value in request.query.get(name, []) for part in value.split(",")}
    return parts - {""}


def _enum_list(request: Request, name: str, allowed: frozenset[str]) -> set[str]:
    values = _text_list(request, name)
    if values - allowed:
        raise BadRequest(f"Invalid {name} {sorted(values - allowed)}: use {sorted(allowed)}")
    return values


def _date_arg(request: Request, name: str) -> date | None:
    raw = request.arg(name)
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a yyyy-MM-dd date, got {raw!r}") from None


def _keep(value: str, wanted: set[str], unwanted: set[str]) -> bool:
    return (not wanted or value in wanted) and value not in unwanted


def _in_window(value: date | None, low: date | None, high: date | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value < high)


def make_emulator(ledger: Ledger, faults: Faults | None = None, **options: Any) -> SequenceEmulator:
    return SequenceEmulator(ledger, faults, **options)
