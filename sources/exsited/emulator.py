"""An emulator of Exsited's invoice API (v1 OAuth2 token, v3 invoice lists, v2 information/PDF).

Follows the vendor: `POST /api/v1/oauth2/token` with a JSON client-credentials or
refresh-token grant, returning expiring access tokens (lifetime configurable, and a token
can be made to run out mid-sync); `Authorization: Bearer`; offset pagination with `limit`,
`offset`, `order_by` (a field, or the seed's `asc`/`desc`) and `direction`; a `pagination`
object with `records`, `next_page` and `previous_page`; every amount a decimal string;
`currency` an object whose `name` is the code; `kpis`; custom attributes; errors as
`{"errors": [{"message": ...}]}`. Routes: the invoice list, one invoice, its information,
an account's and an order's invoices (wrapped in `account` / `order`), and a real PDF.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
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
    REFUNDED,
    SETTLED,
    UNCOLLECTIBLE,
    VOID,
    Invoice,
    Ledger,
)
from sources.common.sandbox.server import BadRequest, Emulator, Faults, Request, Response, int_arg
from sources.common.sandbox.truth import Figures, Money, Transitions, settled_money, written
from sources.exsited.settings import TOKEN_PATH

CLIENT_ID = "sandbox-exsited-client"
CLIENT_SECRET = "sandbox-exsited-secret"
LINK_HOST = "https://api-stage.exsited.com"
_NAMESPACE = uuid.UUID("6f1c1a52-3d0e-4c55-9a55-0b6e4c1e7a11")
DEFAULT_LIMIT = 20

_STATUS = {DRAFT: "DRAFT", VOID: "VOIDED", UNCOLLECTIBLE: "WRITTEN_OFF"}
_ORDER_FIELDS = {
    "created_on": lambda inv: inv.created_at,
    "issue_date": lambda inv: inv.issue_date,
    "due_date": lambda inv: inv.due_date or date.max,
    "id": lambda inv: inv.number,
    "last_updated_on": lambda inv: inv.updated_at,
}


def _uuid(*parts: str) -> str:
    """`str(uuid.uuid5(_NAMESPACE, name)).upper()`, without building UUID objects: a page of
    100 invoices has 1,900 of these ids, and `uuid5` made them half the page's rendering."""
    digest = bytearray(hashlib.sha1(_NAMESPACE.bytes + ":".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex().upper()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _stamp(moment: datetime | date | None) -> str | None:
    """Exsited's `YYYY-MM-DDTHH:MM:SSZ`."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        return f"{moment.isoformat()}T00:00:00Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _payment_status(inv: Invoice) -> str:
    if inv.status in (PAID, REFUNDED):
        return "PAID"
    return "PARTIALLY_PAID" if inv.status == OPEN and inv.payments_settled else "UNPAID"


def _line_taxes(inv: Invoice) -> list[int]:
    """The invoice's tax spread over its lines, the last line taking the rounding remainder."""
    rate = inv.taxes[0].rate if inv.taxes else Decimal(0)
    shares = [int((Decimal(line.amount) * rate).to_integral_value()) for line in inv.lines]
    if shares:
        shares[-1] += inv.tax - sum(shares)
    return shares


def _pdf(lines: list[str]) -> bytes:
    """A small, valid one-page PDF (Helvetica text), with a correct cross-reference table."""
    escaped = [t.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for t in lines]
    text = "BT /F1 11 Tf 50 790 Td 14 TL " + " ".join(f"({t}) '" for t in escaped) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode("latin-1")),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


class ExsitedEmulator(Emulator):
    name = "exsited"

    def __init__(
        self,
        ledger: Ledger,
        faults: Faults | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        token_ttl: int = 3600,
        token_uses: int | None = None,
        kpis_as_numbers: bool = False,
        empty_link: str | None = "",
    ) -> None:
        """`token_ttl` is the lifetime reported and enforced; `token_uses` revokes a token
        after that many API calls while still reporting `token_ttl` (a token running out
        mid-sync); `kpis_as_numbers` renders kpis as JSON numbers (the seed's list example);
        `empty_link` is what `next_page`/`previous_page` hold when there is no such page."""
        super().__init__(ledger, faults)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.token_uses = token_uses
        self.kpis_as_numbers = kpis_as_numbers
        self.empty_link = empty_link
        self._tokens: dict[str, list[float]] = {}  # access token -> [expires at, uses left]
        self._refresh_tokens: set[str] = set()
        self._token_lock = threading.Lock()
        self.grants: Counter[str] = Counter()  # grant_type -> tokens issued
        self.route("POST", TOKEN_PATH, "token", self.token)
        self.route("GET", "/api/v3/invoices", "list", self.list_invoices)
        self.route("GET", "/api/v3/invoices/(?P<invoice_id>[^/]+)", "detail", self.get_invoice)
        self.route(
            "GET",
            "/api/v2/invoices/(?P<invoice_id>[^/]+)/information",
            "information",
            self.information,
        )
        self.route("GET", "/api/v2/invoices/(?P<invoice_id>[^/]+)/pdf", "pdf", self.pdf)
        self.route(
            "GET",
            "/api/v3/accounts/(?P<account_id>[^/]+)/invoices",
            "account_invoices",
            self.account_invoices,
        )
        self.route(
            "GET",
            "/api/v3/orders/(?P<order_id>[^/]+)/invoices",
            "order_invoices",
            self.order_invoices,
        )

    # -- the vendor's conventions --------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.path == TOKEN_PATH:
            return None  # the token endpoint checks the client credentials in its body
        header = request.header("Authorization") or ""
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        with self._token_lock:
            state = self._tokens.get(token or "")
            if state is None or state[0] <= time.monotonic() or state[1] <= 0:
                self._tokens.pop(token or "", None)
                return self.error_body(401, "Invalid or expired access token")
            state[1] -= 1
        return None

    def error_body(self, status: int, message: str) -> Response:
        return Response.json(status, {"errors": [{"message": message}]})

    def settings(self, base_url: str) -> dict[str, str]:
        return {
            "SOURCES__EXSITED__BASE_URL": base_url,
            "SOURCES__EXSITED__CLIENT_ID": self.client_id,
            "SOURCES__EXSITED__CLIENT_SECRET": self.client_secret,
        }

    def expire_tokens(self) -> None:
        """Every access token issued so far stops working now (refresh tokens still do)."""
        with self._token_lock:
            self._tokens.clear()

    # -- OAuth2 --------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        missing = [k for k in ("grant_type", "client_id", "client_secret") if k not in body]
        if "redirect_uri" not in body:
            missing.append("redirect_uri")
        if missing:
            raise BadRequest(f"Missing fields: {', '.join(missing)}")
        if (body["client_id"], body["client_secret"]) != (self.client_id, self.client_secret):
            return self.error_body(401, "Invalid client credentials")
        grant = body["grant_type"]
        if grant == "refresh_token":
            with self._token_lock:
                if body.get("refresh_token") not in self._refresh_tokens:
                    return self.error_body(401, "Invalid refresh token")
                self._refresh_tokens.discard(body["refresh_token"])
        elif grant != "client_credentials":
            raise BadRequest(f"Unsupported grant_type {grant!r}")
        self.grants[grant] += 1
        return Response.json(200, self._issue())

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        uses = float("inf") if self.token_uses is None else float(self.token_uses)
        with self._token_lock:
            self._tokens[access] = [time.monotonic() + self.token_ttl, uses]
            self._refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
        }

    # -- routes --------------------------------------------------------------------------

    def list_invoices(self, request: Request) -> Response:
        invoices, page = self._page(request, self.ledger.snapshot, "/api/v3/invoices")
        return Response.json(
            200, {"invoices": [self.render(inv) for inv in invoices], "pagination": page}
        )

    def account_invoices(self, request: Request, account_id: str) -> Response:
        # every invoice belongs to a ledger customer: an unknown account has none
        if all(c.id != account_id for c in self.ledger.customers):
            return self.error_body(404, f"Account {account_id} not found")
        path = f"/api/v3/accounts/{account_id}/invoices"
        rows, page = self._page(
            request,
            lambda: [inv for inv in self.ledger.snapshot() if inv.customer.id == account_id],
            path,
        )
        rendered = [self.render(inv, in_account=True) for inv in rows]
        return Response.json(200, {"account": {"invoices": rendered, "pagination": page}})

    def order_invoices(self, request: Request, order_id: str) -> Response:
        invoices = [inv for inv in self.ledger.snapshot() if self._order_id(inv) == order_id]
        if not invoices:
            return self.error_body(404, f"Order {order_id} not found")
        rows, page = self._page(
            request,
            lambda: [inv for inv in self.ledger.snapshot() if self._order_id(inv) == order_id],
            f"/api/v3/orders/{order_id}/invoices",
        )
        rendered = [self.render(inv) for inv in rows]
        return Response.json(200, {"order": {"invoices": rendered, "pagination": page}})

    def get_invoice(self, request: Request, invoice_id: str) -> Response:
        invoice = self._find(invoice_id)
        if invoice is None:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        return Response.json(200, {"invoice": self.render(invoice)})

    def information(self, request: Request, invoice_id: str) -> Response:
        invoice = self._find(invoice_id)
        if invoice is None:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        rendered = self.render(invoice)
        for key in ("lines", "tax_total"):  # the information document has neither
            rendered.pop(key)
        return Response.json(200, {"invoice": rendered})

    def pdf(self, request: Request, invoice_id: str) -> Response:
        inv = self._find(invoice_id)
        if inv is None:
            return self.error_body(404, f"Invoice {invoice_id} not found")
        text = [
            f"Invoice {inv.number}",
            f"Account: {inv.customer.name} ({inv.customer.id})",
            f"Issue date: {inv.issue_date.isoformat()}",
            f"Due date: {inv.due_date.isoformat() if inv.due_date else '-'}",
            *(f"{line.description}: {self._money(inv, line.amount)}" for line in inv.lines),
            f"Subtotal: {self._money(inv, inv.subtotal)} {inv.currency}",
            f"Tax: {self._money(inv, inv.tax)} {inv.currency}",
            f"Total: {self._money(inv, inv.total)} {inv.currency}",
            f"Amount due: {self._money(inv, inv.amount_due)} {inv.currency}",
        ]
        headers = {
            "Content-Type": "application/pdf",
            "Content-Disposition": f'attachment; filename="{inv.number}.pdf"',
        }
        return Response(200, _pdf(text), headers)

    def _find(self, invoice_id: str) -> Invoice | None:
        return next((inv for inv in self.ledger.snapshot() if inv.number == invoice_id), None)

    def _page(
        self, request: Request, select: Callable[[], list[Invoice]], path: str
    ) -> tuple[list[Invoice], dict[str, Any]]:
        """One page of the invoices `select` picks (read again only after the ledger changed)."""
        limit = int_arg(request, "limit", DEFAULT_LIMIT, 1)
        offset = int_arg(request, "offset", 0, 0)
        order_by, direction = request.arg("order_by"), request.arg("direction")
        ordered = self.ledger.memo(
            ("exsited list", path, order_by, direction),
            lambda: self._ordered(select(), order_by, direction),
        )
        total = len(ordered)

        def link(at: int) -> str | None:
            return f"{LINK_HOST}{path}?limit={limit}&offset={at}"

        return ordered[offset : offset + limit], {
            "records": total,
            "limit": limit,
            "offset": offset,
            "previous_page": link(max(offset - limit, 0)) if offset > 0 else self.empty_link,
            "next_page": link(offset + limit) if offset + limit < total else self.empty_link,
        }

    @staticmethod
    def _ordered(invoices: list[Invoice], order_by: str | None, direction: str | None) -> list:
        """Newest first by default; `order_by` is a field, or (the seed's reading) asc/desc."""
        field = order_by or "created_on"
        if field.lower() in ("asc", "desc"):
            field, direction = "created_on", direction or field.lower()
        direction = (direction or "desc").lower()
        if field not in _ORDER_FIELDS:
            raise BadRequest(f"Invalid order_by {order_by!r}: one of {', '.join(_ORDER_FIELDS)}")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid direction {direction!r}: asc or desc")
        by_id = sorted(invoices, key=lambda inv: inv.number)
        return sorted(by_id, key=_ORDER_FIELDS[field], reverse=direction == "desc")

    # -- rendering -----------------------------------------------------------------------

    @staticmethod
    def _money(inv: Invoice, minor: int) -> str:
        return str(inv.major(minor))

    def _kpi(self, inv: Invoice, minor: int) -> Any:
        return inv.major(minor) if self.kpis_as_numbers else self._money(inv, minor)

    @staticmethod
    def _order_id(inv: Invoice) -> str:
        return f"ORD-{inv.customer.id.upper()}-{inv.kind.upper()}"

    def _currency(self, code: str) -> dict[str, str]:
        currency_uuid = _uuid("currency", code)
        return {
            "uuid": currency_uuid,
            "name": code,
            "link": f"{LINK_HOST}/api/v1/currencies/{currency_uuid}",
        }

    def _lines(self, inv: Invoice, in_account: bool) -> list[dict[str, Any]]:
        customer = inv.customer
        code = customer.exemption.upper() if customer.exemption else customer.tax_name.upper()
        rate = Decimal(0) if customer.exemption else customer.tax_rate
        percent = (rate * 100).quantize(Decimal("0.0001"))
        tax_uuid = _uuid("tax", code, str(percent))
        rendered = []
        for line, tax in zip(inv.lines, _line_taxes(inv), strict=True):
            item_id = line.name.upper().replace(" ", "-")
            row = {
                "subtotal": self._money(inv, line.amount),
                "total": self._money(inv, line.amount + tax),
                "tax": {
                    "amount": self._money(inv, tax),
                    "uuid": tax_uuid,
                    "code": code,
                    "rate": str(percent),
                    "link": f"{LINK_HOST}/api/v1/taxes/{tax_uuid}",
                },
                "accounting_code": {"sales_revenue": "4000"},
                "item_uuid": _uuid("item", item_id),
                "item_id": item_id,
                "item_order_quantity": str(line.quantity),
                "item_uom": "Each",
                "item_warehouse": "Default Warehouse",
                "pricing_snapshot_uuid": _uuid("pricing", line.id),
                "charging_start_date": _stamp(line.period_start),
                "alternate_charging_start_date": _stamp(line.period_start),
                "charging_end_date": _stamp(line.period_end),
                "alternate_charging_end_date": _stamp(line.period_end),
                "uuid": _uuid("line", line.id),
                "version": "1",
            }
            if in_account:
                row["item_name"] = line.description
            rendered.append(row)
        return rendered

    def render(self, inv: Invoice, in_account: bool = False) -> dict[str, Any]:
        self.serve(inv)
        status = _STATUS.get(inv.status, "ACTIVE")
        settled = [t for t in inv.transactions if t.kind == PAYMENT and t.status == SETTLED]
        last = settled[-1] if settled else None
        overdue = inv.due_date is not None and inv.due_date < self.ledger.today
        rendered: dict[str, Any] = {
            "status": status,
            "id": inv.number,
            "type": "LINKED_WITH_ORDER",
            "custom_form": {"uuid": _uuid("form", "invoice"), "name": "Default Invoice Form"},
            "currency": self._currency(inv.currency),
            "customer_purchase_order_id": f"PO-{inv.number[4:]}" if inv.memo else "",
            "billing_start_date": _stamp(inv.period_start),
            "alternate_billing_start_date": _stamp(inv.period_start),
            "billing_end_date": _stamp(inv.period_end),
            "alternate_billing_end_date": _stamp(inv.period_end),
            "issue_date": _stamp(inv.issue_date),
            "alternate_issue_date": _stamp(inv.issue_date),
            "due_date": _stamp(inv.due_date),
            "alternate_due_date": _stamp(inv.due_date),
            "subtotal": self._money(inv, inv.subtotal),
            "tax": self._money(inv, inv.tax),
            "tax_total": self._money(inv, inv.tax),
            "total": self._money(inv, inv.total),
            "paid": self._money(inv, inv.payments_settled),
            "due": self._money(inv, inv.amount_due),
            "payment_status": _payment_status(inv),
            "last_payment": (
                {
                    "id": last.id,
                    "amount": self._money(inv, last.amount),
                    "created_at": _stamp(last.processed_at),
                }
                if last
                else {}
            ),
            "discount_amount": self._money(inv, 0),
            "price_tax_inclusive": "false",
            "invoice_note": inv.memo or "",
            "account_id": inv.customer.id,
            "order_id": self._order_id(inv),
            "kpis": {
                "outstanding": self._kpi(inv, inv.amount_due),
                "overdue": self._kpi(inv, inv.amount_due if overdue else 0),
                "last_payment_date": _stamp(last.processed_at) if last else None,
                "payment_applied": self._kpi(inv, inv.payments_settled),
                "credit_applied": self._kpi(inv, inv.credits),
                "credit_issued": self._kpi(inv, inv.refunds_settled),
                "last_reactivated_on": None,
                "last_cancelled_on": None,
                "last_amended_on": None,
                "voided_on": _stamp(inv.voided_at),
                "deleted_on": None,
            },
            "created_by": "billing-run",
            "created_on": _stamp(inv.created_at),
            "last_updated_by": "billing-run",
            "last_updated_on": _stamp(inv.updated_at),
            "uuid": _uuid("invoice", inv.id),
            "version": str(inv.version),
            "custom_attributes": [
                {"name": "cost_centre", "value": f"CC-{int(inv.number[4:]) % 5 + 1}"},
                {"name": "region", "value": inv.customer.country},
            ],
            "custom_objects": [],
            "lines": self._lines(inv, in_account),
        }
        if in_account:
            rendered["account_name"] = inv.customer.name
            rendered["shipping_cost"] = self._money(inv, 0)
        return rendered

    # -- ground truth --------------------------------------------------------------------

    def figures(self, inv: Invoice) -> Figures:
        return Figures(
            status=inv.status,
            total=inv.major(inv.total),
            amount_paid=inv.major(inv.payments_settled - inv.refunds_settled),
            amount_due=inv.major(inv.amount_due),
            credited=inv.major(inv.credits),
            refunded=inv.major(inv.refunds_settled),
        )

    def identity(self, inv: Invoice) -> tuple[str, date, date | None]:
        return inv.number, inv.issue_date, inv.due_date

    def dated(self, inv: Invoice) -> tuple[Transitions, tuple[Money, ...]]:
        """Only the last payment is dated (`last_payment.created_at`, which for a paid invoice
        is when it was paid) and a void (`kpis.voided_on`); earlier payments, refunds
        (`kpis.credit_issued`), write-offs and finalisations are not."""
        settled = [t for t in inv.transactions if t.kind == PAYMENT and t.status == SETTLED]
        last = settled[-1:]
        paid = (
            written(last[0].processed_at, "s") if last and _payment_status(inv) == "PAID" else None
        )
        transitions = Transitions(paid=paid, voided=written(inv.voided_at, "s"))
        return transitions, settled_money(inv, last, "s")

    def stamp(self, inv: Invoice) -> datetime | None:
        return written(inv.updated_at, "s")


def make_emulator(ledger: Ledger, faults: Faults | None = None, **options: Any) -> ExsitedEmulator:
    return ExsitedEmulator(ledger, faults, **options)


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "ExsitedEmulator", "make_emulator"]
