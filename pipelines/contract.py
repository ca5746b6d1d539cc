"""The `billing` schema's public columns and their DuckDB types (see the project README).

The view builder uses these to stand in for a vendor that has no data yet, and the tests pin
every view to them. Add columns freely; never rename one.
"""

MONEY = "DECIMAL(18,4)"
TOTAL = "DECIMAL(38,4)"  # sums of MONEY
QUANTITY = "DECIMAL(28,10)"
RATE = "DECIMAL(12,8)"

STATUSES = ("draft", "open", "paid", "void", "uncollectible", "refunded")
AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")

INVOICES = {
    "source": "VARCHAR",
    "invoice_id": "VARCHAR",
    "invoice_number": "VARCHAR",
    "customer_id": "VARCHAR",
    "customer_name": "VARCHAR",
    "status": "VARCHAR",
    "vendor_status": "VARCHAR",
    "vendor_payment_status": "VARCHAR",
    "currency": "VARCHAR",
    "issue_date": "DATE",
    "due_date": "DATE",
    "period_start": "DATE",
    "period_end": "DATE",
    "subtotal": MONEY,
    "tax": MONEY,
    "total": MONEY,
    "amount_paid": MONEY,
    "amount_due": MONEY,
    "created_at": "TIMESTAMP WITH TIME ZONE",
    "updated_at": "TIMESTAMP WITH TIME ZONE",
}
INVOICE_LINES = {
    "source": "VARCHAR",
    "invoice_id": "VARCHAR",
    "line_id": "VARCHAR",
    "parent_line_id": "VARCHAR",
    "description": "VARCHAR",
    "quantity": QUANTITY,
    "unit_price": QUANTITY,
    "amount": MONEY,
    "currency": "VARCHAR",
    "tax_rate": RATE,
    "period_start": "DATE",
    "period_end": "DATE",
}
PAYMENTS = {
    "source": "VARCHAR",
    "invoice_id": "VARCHAR",
    "payment_id": "VARCHAR",
    "kind": "VARCHAR",
    "status": "VARCHAR",
    "amount": MONEY,
    "currency": "VARCHAR",
    "method": "VARCHAR",
    "processed_at": "TIMESTAMP WITH TIME ZONE",
}
INVOICE_TAXES = {
    "source": "VARCHAR",
    "invoice_id": "VARCHAR",
    "name": "VARCHAR",
    "rate": RATE,
    "taxable_amount": MONEY,
    "tax_amount": MONEY,
    "exemption": "VARCHAR",
}
AR_INVOICE = {**INVOICES, "days_past_due": "INTEGER", "aging_bucket": "VARCHAR"}
AR_SUMMARY = {
    "source": "VARCHAR",
    "currency": "VARCHAR",
    "open_count": "BIGINT",
    "outstanding": TOTAL,
    "overdue_count": "BIGINT",
    "overdue": TOTAL,
    "paid_count": "BIGINT",
    "paid": TOTAL,
    "draft_count": "BIGINT",
    "void_count": "BIGINT",
}
AR_AGING = {
    "source": "VARCHAR",
    "currency": "VARCHAR",
    "aging_bucket": "VARCHAR",
    "invoice_count": "BIGINT",
    "amount_due": TOTAL,
}

# Per-vendor staging entities the unified views read (file stem in sql/10_staging/<vendor>/).
STAGING_ENTITIES = {
    "invoices": INVOICES,
    "invoice_lines": INVOICE_LINES,
    "payments": PAYMENTS,
    "invoice_taxes": INVOICE_TAXES,
}

VIEWS = {
    "invoices": INVOICES,
    "invoice_lines": INVOICE_LINES,
    "payments": PAYMENTS,
    "invoice_taxes": INVOICE_TAXES,
    "ar_outstanding": AR_INVOICE,
    "ar_overdue": AR_INVOICE,
    "ar_paid": AR_INVOICE,
    "ar_summary": AR_SUMMARY,
    "ar_aging": AR_AGING,
}
MACROS = {
    "ar_summary_at": AR_SUMMARY,
    "ar_aging_at": AR_AGING,
    "ar_overdue_at": AR_INVOICE,
}
