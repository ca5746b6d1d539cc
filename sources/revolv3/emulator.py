"""An emulator of Revolv3's invoice API: `GET /api/Invoices`, `/{id}` and `/v1`.

Follows the vendor: `x-revolv3-token` auth; a bare JSON array with no paging metadata; 1-based
`page`; camelCase `pageSize` (max 100, default 100), or, with `page_size_param="page_size"`, a
server that ignores `pageSize` and uses its own `default_page_size` (25 in the seed); billing
date descending then invoiceId ascending; `billingDate` in the vendor's several formats; money
as decimal numbers in major units ("150.0000"); all seventeen statuses; errors as
`{"error", "message"}` (the 429 body is the vendor's).

The classic list filters on `startDate`/`endDate` (billing date). The detailed v1 list (the
vendor's recommended endpoint) filters on `billingStartDate`/`billingEndDate` and
`lastUpdateStartDate`/`lastUpdateEndDate` (UTC days, inclusive; ISO or MM-DD-YYYY), takes
`orderBy` as the vendor's integer enum or its (inferred) names, `lastAttemptOnly`, and caps
`page` at 1..`max_page`; each of its rows carries `invoiceAttempts`, `invoiceLineItems`,
`parentInvoiceId`, `currency`, `paymentMethod`, `invoiceStatusEnum` and the other v1 fields, and,
per `last_update_date`, a `lastUpdateDate` that moves with every change to the invoice
(`last_update`); the vendor's field list does not show it, so some rows go without. The detail
(`/{id}`) is the v1 row without `lastUpdateDate`, its `invoiceAttempts` null when there are
none (as in the vendor's example).

Revolv3 has no drafts: draft invoices of the ledger are not served. A credit from the
customer's balance shows as a smaller subtotal (Revolv3 charges what is left) and as a
`Discount` line item. Line items are the ledger's lines; Revolv3 documents no sub-lines, so a
line's sub-lines are not served (its value is their sum).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sources.common.sandbox.ledger import (
    DRAFT,
    FAILED,
    OPEN,
    PAID,
    PAYMENT,
    REFUNDED,
    SETTLED,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    Ledger,
    Transaction,
)
from sources.common.sandbox.server import (
    BadRequest,
    Emulator,
    Faults,
    Request,
    Response,
    int_arg,
)
from sources.common.sandbox.truth import (
    Figures,
    Money,
    Transitions,
    midnight,
    settled_money,
    written,
)

TOKEN = "sandbox-revolv3-token"
MERCHANT = "Sandbox Merchant LLC"
FOUR_PLACES = Decimal("0.0001")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The vendor's billingDate formats, as in its own examples.
DATE_FORMATS = {
    "mm-dd-yyyy": lambda d: f"{d.month:02d}-{d.day:02d}-{d.year}",  # "12-15-2024"
    "m/d/yyyy": lambda d: f"{d.month}/{d.day}/{d.year}",  # "9/17/2024"
    "dd-mon-yy": lambda d: f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year % 100:02d}",  # "22-May-26"
}
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
# `orderBy` on the v1 list: the vendor documents the integer enum 1, 2, 3; the names are inferred.
ORDER_BY = {1: "BillingDate", 2: "LastUpdateDate", 3: "InvoiceId"}
# `invoiceStatusEnum` is documented as 1..19 without names: these numbers are the emulator's own
# (the seventeen statuses in the order of the vendor notes), never interpreted by the source.
# fmt: off
_VENDOR_ORDER = (
    "Paid", "Void", "Pending", "Recycle", "Noncollectable", "Failed", "Refund", "MerchantPaid",
    "MerchantCancelled", "OneTimePaymentPending", "PartialRefund", "BatchPending",
    "CapturePending", "RefundPending", "RefundDeclined", "RefundFailed", "RetryPending",
)
# fmt: on
STATUS_ENUM = {name: number for number, name in enumerate(_VENDOR_ORDER, start=1)}
LAST_UPDATE_DATES = ("all", "mixed", "none")  # which v1 rows carry `lastUpdateDate`
CREDIT_LINE = "Customer balance credit"
# Several Revolv3 statuses describe the same ledger state; the invoice number picks one.
_OPEN_UNTRIED = ("Pending", "OneTimePaymentPending", "BatchPending", "CapturePending")
_OPEN_FAILED = ("Failed", "Recycle", "RetryPending")
_PAID = ("Paid", "Paid", "Paid", "MerchantPaid", "RefundPending", "RefundDeclined", "RefundFailed")
_VOID = ("Void", "Void", "MerchantCancelled")
_ATTEMPT_STATUS = {
    (PAYMENT, SETTLED): "Success",
    (PAYMENT, FAILED): "Fail",
    (PAYMENT, "pending"): "Pending",
    (PAYMENT, "cancelled"): "Cancelled",
    ("refund", SETTLED): "Refund",
    ("refund", FAILED): "RefundFail",
}


def _number(identifier: str) -> int:
    """The ledger's "inv_00012" / "txn_000034" as Revolv3's integer id."""
    return int(identifier.rsplit("_", 1)[-1])


def revolv3_status(inv: Invoice) -> str:
    """The Revolv3 status the ledger's invoice shows as."""
    pick = _number(inv.id)
    if inv.status == OPEN:
        last = inv.transactions[-1] if inv.transactions else None
        if last is not None and last.status == FAILED:
            return _OPEN_FAILED[pick % len(_OPEN_FAILED)]
        return "Pending" if inv.payments_settled else _OPEN_UNTRIED[pick % len(_OPEN_UNTRIED)]
    if inv.status == PAID:
        return "PartialRefund" if inv.refunds_settled else _PAID[pick % len(_PAID)]
    if inv.status == VOID:
        return _VOID[pick % len(_VOID)]
    return {REFUNDED: "Refund", UNCOLLECTIBLE: "Noncollectable"}[inv.status]


def _attempt_date(moment: datetime | None) -> str | None:
    """Revolv3's attempt dates: UTC without an offset, milliseconds ("2024-09-17T18:40:38.107")."""
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")


def last_update(inv: Invoice) -> datetime:
    """When anything about the invoice last changed: its own stamp, every attempt, every event.

    The ledger stamps `updated_at` on the changes it makes after the fact, but an invoice born
    during a sync (paid, voided or failed at once) carries events later than that stamp. The
    vendor's `lastUpdateDate` moves with every one of them, so it is the latest of all.
    """
    moments = [
        inv.updated_at,
        inv.finalized_at,
        inv.paid_at,
        inv.voided_at,
        inv.uncollectible_at,
        *(txn.processed_at for txn in inv.transactions),
    ]
    return max(moment for moment in moments if moment is not None)


def _order_by(request: Request) -> int:
    """The v1 list's `orderBy`: a number of the enum or its name, as ASP.NET binds an enum."""
    raw = (request.arg("orderBy") or "").strip()
    if not raw:
        return 1
    by_name = {name.lower(): number for number, name in ORDER_BY.items()}
    number = int(raw) if raw.isdigit() else by_name.get(raw.lower())
    if number not in ORDER_BY:
        raise BadRequest(f"The value '{raw}' is not valid for OrderBy.")
    return number


def _parse_filter_date(name: str, value: str) -> date:
    """startDate/endDate as ISO (YYYY-MM-DD) or as in the seed's example (MM-DD-YYYY)."""
    try:
        if len(value) == 10 and value[2] == "-":
            return date(int(value[6:]), int(value[:2]), int(value[3:5]))
        return date.fromisoformat(value[:10])
    except ValueError:
        raise BadRequest(f"The value '{value}' is not valid for {name}.") from None


class Revolv3Emulator(Emulator):
    name = "revolv3"

    def __init__(
        self,
        ledger: Ledger,
        faults: Faults | None = None,
        token: str = TOKEN,
        date_format: str = "mixed",
        page_size_param: str = "pageSize",
        default_page_size: int = 100,
        max_page: int = 1000,
        last_update_date: str = "mixed",
        null_attempts: int = 0,
    ) -> None:
        """`last_update_date`: which v1 rows carry `lastUpdateDate` ("all", "none", or "mixed":
        all but every third invoice). `null_attempts`: every n-th invoice's v1 row sends
        `invoiceAttempts: null` (0: none does), so the source must ask its detail."""
        super().__init__(ledger, faults)
        if last_update_date not in LAST_UPDATE_DATES:
            raise ValueError(f"last_update_date is one of {LAST_UPDATE_DATES}")
        if date_format not in (*DATE_FORMATS, "mixed"):
            raise ValueError(f"date_format is one of {sorted(DATE_FORMATS)} or 'mixed'")
        if page_size_param not in ("pageSize", "page_size"):
            raise ValueError("page_size_param is 'pageSize' (the vendor) or 'page_size' (the seed)")
        self.token = token
        self.date_format = date_format
        self.page_size_param = page_size_param
        self.default_page_size = default_page_size
        self.max_page = max_page
        self.last_update_date = last_update_date
        self.null_attempts = null_attempts
        self.route("GET", "/api/Invoices/v1", "list_v1", self.list_invoices_v1)
        self.route("GET", "/api/Invoices", "list", self.list_invoices)
        self.route("GET", r"/api/Invoices/(?P<invoice_id>\d+)", "detail", self.get_invoice)

    # -- the vendor's conventions --------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.header("x-revolv3-token") != self.token:
            return self.error_body(401, "Invalid or missing token")
        return None

    def error_body(self, status: int, message: str) -> Response:
        return Response.json(status, {"error": _REASONS.get(status, "Error"), "message": message})

    def settings(self, base_url: str) -> dict[str, str]:
        return {"SOURCES__REVOLV3__BASE_URL": base_url, "SOURCES__REVOLV3__TOKEN": self.token}

    def billing_date(self, inv: Invoice) -> str:
        names = sorted(DATE_FORMATS)
        name = names[_number(inv.id) % 3] if self.date_format == "mixed" else self.date_format
        return DATE_FORMATS[name](inv.issue_date)

    # -- routes --------------------------------------------------------------------------

    def list_invoices(self, request: Request) -> Response:
        invoices = self._served(request, "startDate", "endDate")
        return self._page(request, invoices, self.render)

    def list_invoices_v1(self, request: Request) -> Response:
        order = _order_by(request)
        start, end = request.arg("lastUpdateStartDate"), request.arg("lastUpdateEndDate")
        since = _parse_filter_date("lastUpdateStartDate", start) if start else None
        until = _parse_filter_date("lastUpdateEndDate", end) if end else None

        def changed_and_ordered() -> list[Invoice]:
            invoices = [
                inv
                for inv in self._served(request, "billingStartDate", "billingEndDate")
                if (since is None or last_update(inv).date() >= since)
                and (until is None or last_update(inv).date() <= until)
            ]
            if order == 2:
                return sorted(invoices, key=lambda inv: (last_update(inv), _number(inv.id)))
            if order == 3:
                return sorted(invoices, key=lambda inv: _number(inv.id))
            return invoices  # BillingDate: as served

        key = ("revolv3-v1", self._filters(request, "billingStartDate", "billingEndDate"))
        invoices = self.ledger.memo((*key, order, since, until), changed_and_ordered)
        last_only = (request.arg("lastAttemptOnly") or "").lower() == "true"
        return self._page(request, invoices, lambda inv: self.render_v1(inv, last_only))

    def get_invoice(self, request: Request, invoice_id: str) -> Response:
        invoice = self.ledger.get(f"{self.ledger.id_prefix}inv_{int(invoice_id):05d}")
        if invoice is None or invoice.status == DRAFT:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        return Response.json(200, self.render_detail(invoice))

    def _page(self, request: Request, invoices: list[Invoice], render: Any) -> Response:
        page = int_arg(request, "page", 1, 1, self.max_page)
        size = int_arg(request, self.page_size_param, None, 1, 100) or self.default_page_size
        rows = invoices[(page - 1) * size : page * size]
        return Response.json(200, [render(inv) for inv in rows])

    @staticmethod
    def _filters(request: Request, start_name: str, end_name: str) -> tuple:
        return (
            request.arg(start_name),
            request.arg(end_name),
            request.arg("merchantCustomerRefId"),
            request.arg("merchantInvoiceRefId") if start_name == "startDate" else None,
        )

    def _served(self, request: Request, start_name: str, end_name: str) -> list[Invoice]:
        """Non-draft invoices matching the filters, billing date descending then id ascending.

        The lists differ in their billing-date filters' names (`startDate`/`endDate`, v1's
        `billingStartDate`/`billingEndDate`); each ignores the other's, as the vendor ignores
        parameters it does not know. Only the classic list filters on `merchantInvoiceRefId`.
        """
        start, end, customer, number = self._filters(request, start_name, end_name)
        since = _parse_filter_date(start_name, start) if start else None
        until = _parse_filter_date(end_name, end) if end else None

        def compute() -> list[Invoice]:
            result = [
                inv
                for inv in self.ledger.snapshot()
                if inv.status != DRAFT
                and (since is None or inv.issue_date >= since)
                and (until is None or inv.issue_date <= until)
                and (customer is None or inv.customer.id == customer)
                and (number is None or inv.number == number)
            ]
            by_id = sorted(result, key=lambda inv: _number(inv.id))
            return sorted(by_id, key=lambda inv: inv.issue_date, reverse=True)

        return self.ledger.memo(("revolv3", since, until, customer, number), compute)

    # -- rendering -----------------------------------------------------------------------

    @staticmethod
    def _money(inv: Invoice, minor: int) -> Decimal:
        return inv.major(minor).quantize(FOUR_PLACES)

    def render(self, inv: Invoice) -> dict[str, Any]:
        self.serve(inv)
        first, _, last = inv.customer.name.partition(" ")
        return {
            "invoiceId": _number(inv.id),
            "customerId": None,
            "merchantInvoiceRefId": inv.number,
            "binNumber": "444433",
            "last4Digit": "1111",
            "invoiceStatus": revolv3_status(inv),
            "subtotal": self._money(inv, inv.subtotal - inv.credits),
            "tax": self._money(inv, inv.tax),
            "total": self._money(inv, inv.total - inv.credits),
            "billingDate": self.billing_date(inv),
            "merchantLegalName": MERCHANT,
            "merchantCustomerRefId": inv.customer.id,
            "customerFirstName": first,
            "customerLastName": last or None,
        }

    def render_v1(self, inv: Invoice, last_attempt_only: bool = False) -> dict[str, Any]:
        """The detailed list's row: the classic fields, the v1 fields, attempts, line items."""
        number = _number(inv.id)
        attempts = [self._attempt(txn, inv) for txn in self._attempts(inv)]
        row = {
            **self._detailed(inv),
            "invoiceAttempts": attempts[-1:] if last_attempt_only else attempts,
        }
        if self._without_attempts(number):
            row["invoiceAttempts"] = None
        if self._stamped(number):
            row["lastUpdateDate"] = _attempt_date(last_update(inv))
        return row

    def _without_attempts(self, number: int) -> bool:
        """Whether invoice `number`'s v1 row sends `invoiceAttempts: null`."""
        return bool(self.null_attempts) and number % self.null_attempts == 0

    def _stamped(self, number: int) -> bool:
        """Whether invoice `number`'s v1 row carries `lastUpdateDate`."""
        mixed = self.last_update_date == "mixed" and number % 3 != 0
        return self.last_update_date == "all" or mixed

    def render_detail(self, inv: Invoice) -> dict[str, Any]:
        """`GET /api/Invoices/{id}`: every attempt, null when there is none (vendor's example)."""
        attempts = [self._attempt(txn, inv) for txn in self._attempts(inv)]
        return {**self._detailed(inv), "invoiceAttempts": attempts or None}

    def _detailed(self, inv: Invoice) -> dict[str, Any]:
        number = _number(inv.id)
        first, _, last = inv.customer.name.partition(" ")
        settled = [t for t in self._attempts(inv) if t.status == SETTLED]
        return {
            **self.render(inv),
            "parentInvoiceId": None,  # the ledger keeps refunds on the invoice they refund
            "paymentMethod": {
                "paymentMethodId": int(inv.customer.id.rsplit("_", 1)[-1]),
                "merchantPaymentMethodRefId": None,
                "billingFirstName": first,
                "billingLastName": last or None,
                "billingAddress": None,
                "paymentMethodAchDetails": None,
                "paymentMethodCreditCardDetails": None,
            },
            "subscriptionId": number // 10 + 1 if inv.kind == "recurring" else None,
            "installmentId": None,
            "eligibilityFailReason": None,
            "merchantSubscriptionRefId": None,
            "networkTransactionId": f"ntw_{settled[-1].id}" if settled else None,
            # The vendor's example sends null: the merchant's settlement currency then applies.
            "currency": None if number % 5 == 0 else inv.currency,
            "invoiceStatusEnum": STATUS_ENUM[revolv3_status(inv)],
            "invoiceLineItems": self._line_items(inv),
        }

    def _line_items(self, inv: Invoice) -> list[dict[str, Any]]:
        """The ledger's lines (their sub-lines summed in them), then any credit as a discount:
        they add up to the subtotal served. Half the invoices send `valueType` null, as the
        vendor's example does for plain charges."""
        number = _number(inv.id)
        items = [
            {
                "invoiceId": number,
                "invoiceLineItemId": number * 100 + n,
                "name": line.name,
                "description": line.description,
                "value": self._money(inv, line.amount),
                "valueType": None if number % 2 else "Standard",
            }
            for n, line in enumerate(inv.lines, start=1)
        ]
        if inv.credits:
            items.append(
                {
                    "invoiceId": number,
                    "invoiceLineItemId": number * 100 + 99,
                    "name": CREDIT_LINE,
                    "description": "Applied from the customer's balance",
                    "value": self._money(inv, inv.credits),
                    "valueType": "Discount",
                }
            )
        return items

    @staticmethod
    def _attempts(inv: Invoice) -> list[Transaction]:
        """A merchant-paid invoice was paid outside Revolv3: no successful attempt carries it."""
        if revolv3_status(inv) != "MerchantPaid":
            return list(inv.transactions)
        return [t for t in inv.transactions if not (t.kind == PAYMENT and t.status == SETTLED)]

    def _attempt(self, txn: Transaction, inv: Invoice) -> dict[str, Any]:
        ok = txn.status == SETTLED
        return {
            "invoiceAttemptId": _number(txn.id),
            "amount": self._money(inv, txn.amount),
            "invoiceAttemptStatus": _ATTEMPT_STATUS[(txn.kind, txn.status)],
            "invoiceAttemptDate": _attempt_date(txn.processed_at),
            "paymentProcessor": "Sandbox Gateway",
            "processorTransactionId": f"pt_{txn.id}",
            "responseCode": "00" if ok else "51",
            "responseMessage": "Approved" if ok else (txn.error or txn.status),
            "paymentMethod": txn.method,
        }

    # -- ground truth --------------------------------------------------------------------

    def figures(self, inv: Invoice) -> Figures | None:
        """Served invoices only (no drafts); money net of credits."""
        if inv.status == DRAFT:
            return None
        return Figures(
            status=inv.status,
            total=inv.major(inv.total - inv.credits),
            amount_paid=inv.major(inv.payments_settled - inv.refunds_settled),
            amount_due=inv.major(inv.amount_due),
            refunded=inv.major(inv.refunds_settled),
        )

    def identity(self, inv: Invoice) -> tuple[str, date, date | None]:
        """Due on the billing date."""
        return str(_number(inv.id)), inv.issue_date, inv.issue_date

    def dated(self, inv: Invoice) -> tuple[Transitions, tuple[Money, ...]]:
        """Issued (open) on the billing date, no drafts; each attempt's `invoiceAttemptDate`;
        voids, write-offs (Noncollectable) and a payment made outside Revolv3 (MerchantPaid)
        carry no date."""
        return Transitions(finalized=midnight(inv.issue_date)), settled_money(
            inv, self._attempts(inv), "ms"
        )

    def stamp(self, inv: Invoice) -> datetime | None:
        """The row's `lastUpdateDate` as it lands: none on a row without one, nor on a row
        completed from its detail (`null_attempts`), which the source lands without it."""
        number = _number(inv.id)
        if self._stamped(number) and not self._without_attempts(number):
            return written(last_update(inv), "ms")
        return None


def make_emulator(ledger: Ledger, faults: Faults | None = None, **options: Any) -> Revolv3Emulator:
    return Revolv3Emulator(ledger, faults, **options)
