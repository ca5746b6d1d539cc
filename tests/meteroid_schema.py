"""The shape of Meteroid's invoice responses, as its official OpenAPI spec (v1) defines it.

Written out as JSON Schema so the emulator's responses can be checked without the spec file.
"""

from typing import Any


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


INT = {"type": "integer"}
STR = {"type": "string"}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
DECIMAL_TEXT = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}

SUB_LINE = {
    "type": "object",
    "required": ["id", "name", "total", "quantity", "unit_price"],
    "properties": {
        "id": STR,
        "name": STR,
        "quantity": DECIMAL_TEXT,
        "total": INT,
        "unit_price": DECIMAL_TEXT,
    },
}
LINE = {
    "type": "object",
    "required": ["name", "amount_total", "start_date", "end_date", "tax_rate", "sub_line_items"],
    "properties": {
        "amount_total": INT,
        "description": _nullable("string"),
        "end_date": DATE,
        "name": STR,
        "quantity": DECIMAL_TEXT,
        "start_date": DATE,
        "tax_rate": DECIMAL_TEXT,
        "unit_price": DECIMAL_TEXT,
        "sub_line_items": {"type": "array", "items": SUB_LINE},
    },
}
TAX = {
    "type": "object",
    "required": ["taxable_amount", "tax_amount", "tax_rate", "name"],
    "properties": {
        "name": STR,
        "tax_amount": {"type": "integer", "minimum": 0},
        "tax_rate": DECIMAL_TEXT,
        "taxable_amount": {"type": "integer", "minimum": 0},
        "exemption_type": {
            "oneOf": [{"type": "null"}, _enum("REVERSE_CHARGE", "TAX_EXEMPT", "NOT_REGISTERED")]
        },
    },
}
TRANSACTION = {
    "type": "object",
    "required": ["id", "amount", "currency", "status", "payment_type"],
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "currency": STR,
        "error": _nullable("string"),
        "id": STR,
        "payment_method_id": _nullable("string"),
        "payment_method_info": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["payment_method_type"],
                    "properties": {
                        "payment_method_type": _enum("CARD", "BANK_TRANSFER", "WALLET", "OTHER"),
                        "card_brand": _nullable("string"),
                        "card_last4": _nullable("string"),
                        "account_number_hint": _nullable("string"),
                    },
                },
            ]
        },
        "payment_type": _enum("PAYMENT", "REFUND"),
        "processed_at": _nullable("string"),
        "provider_transaction_id": _nullable("string"),
        "status": _enum("READY", "PENDING", "SETTLED", "CANCELLED", "FAILED", "REFUNDED"),
    },
}
INVOICE = {
    "type": "object",
    "required": [
        "id",
        "invoice_number",
        "status",
        "customer_id",
        "currency",
        "invoice_date",
        "subtotal",
        "subtotal_recurring",
        "tax_amount",
        "total",
        "amount_due",
        "line_items",
        "tax_breakdown",
        "transactions",
        "payment_status",
        "customer_details",
        "applied_credits",
        "coupons",
        "invoice_type",
        "net_terms",
        "created_at",
    ],
    "properties": {
        "amount_due": INT,
        "applied_credits": INT,
        "subtotal": INT,
        "subtotal_recurring": INT,
        "tax_amount": INT,
        "total": INT,
        "net_terms": INT,
        "coupons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["coupon_id", "name", "total"],
                "properties": {"coupon_id": STR, "name": STR, "total": INT},
            },
        },
        "created_at": STR,
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "customer_details": {
            "type": "object",
            "required": ["id", "name", "snapshot_at"],
            "properties": {
                "id": STR,
                "name": STR,
                "snapshot_at": STR,
                "alias": _nullable("string"),
                "email": _nullable("string"),
                "vat_number": _nullable("string"),
            },
        },
        "customer_id": STR,
        "due_date": {"oneOf": [{"type": "null"}, DATE]},
        "id": STR,
        "invoice_date": DATE,
        "invoice_number": STR,
        "invoice_type": _enum("RECURRING", "ONE_OFF", "ADJUSTMENT", "USAGE_THRESHOLD"),
        "line_items": {"type": "array", "items": LINE},
        "payment_status": _enum("UNPAID", "PARTIALLY_PAID", "PAID", "ERRORED", "PROCESSING"),
        "status": _enum("DRAFT", "FINALIZED", "UNCOLLECTIBLE", "VOID"),
        "tax_breakdown": {"type": "array", "items": TAX},
        "transactions": {"type": "array", "items": TRANSACTION},
        "finalized_at": _nullable("string"),
        "paid_at": _nullable("string"),
        "voided_at": _nullable("string"),
        "updated_at": _nullable("string"),
        "marked_as_uncollectible_at": _nullable("string"),
        "memo": _nullable("string"),
        "purchase_order": _nullable("string"),
        "reference": _nullable("string"),
        "subscription_id": _nullable("string"),
    },
}
LIST_RESPONSE = {
    "type": "object",
    "required": ["data", "pagination_meta"],
    "properties": {
        "data": {"type": "array", "items": INVOICE},
        "pagination_meta": {
            "type": "object",
            "required": ["page", "per_page", "total_items", "total_pages"],
            "properties": {
                k: {"type": "integer", "minimum": 0}
                for k in ("page", "per_page", "total_items", "total_pages")
            },
        },
    },
}
ERROR_RESPONSE = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": _enum(
            "BAD_REQUEST",
            "NOT_FOUND",
            "CONFLICT",
            "FORBIDDEN",
            "UNAUTHORIZED",
            "TOO_MANY_REQUESTS",
            "INTERNAL_SERVER_ERROR",
        ),
        "message": STR,
    },
}
