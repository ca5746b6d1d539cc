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
AR_TREND = {
    "source": "VARCHAR",
    "currency": "VARCHAR",
    "as_of": "DATE",
    "outstanding": TOTAL,
    "overdue": TOTAL,
    "open_count": "BIGINT",
    "overdue_count": "BIGINT",
}

# Columns a vendor's staging invoices may add for the data checks (NULL where not sent):
# credits applied, refunds, the amount due exactly as the vendor reported it (before it is
# clamped at zero), and the vendor's own outstanding and overdue figures for the invoice.
INVOICE_CHECK_COLUMNS = {
    "amount_credited": MONEY,
    "amount_refunded": MONEY,
    "vendor_amount_due": MONEY,
    "vendor_outstanding": MONEY,
    "vendor_overdue": MONEY,
}
# The dlt load that last wrote any of the data an invoice's row is computed from: a sync's
# change counts hash again only the invoices loaded since they last counted (pipelines/runs.py).
INVOICE_LOAD_COLUMNS = {"load_id": "VARCHAR"}
# Point in time (docs/point-in-time.md): the dates a vendor sends for an invoice's status
# changes (NULL where it sends none: the warehouse's history dates those), whether a missing
# finalisation date means "never finalised", and the vendor's own update timestamp.
INVOICE_DATE_COLUMNS = {
    "finalization_dated": "BOOLEAN",
    "finalized_at": "TIMESTAMP WITH TIME ZONE",
    "paid_at": "TIMESTAMP WITH TIME ZONE",
    "refunded_at": "TIMESTAMP WITH TIME ZONE",
    "voided_at": "TIMESTAMP WITH TIME ZONE",
    "uncollectible_at": "TIMESTAMP WITH TIME ZONE",
    "vendor_updated_at": "TIMESTAMP WITH TIME ZONE",
}
# A vendor's own totals per currency, where its API reports them (NULL where it does not):
# outstanding and overdue, or the number of invoices and their gross total.
VENDOR_FIGURES = {
    "source": "VARCHAR",
    "currency": "VARCHAR",
    "outstanding": TOTAL,
    "overdue": TOTAL,
    "invoice_count": "BIGINT",
    "gross_total": TOTAL,
}
DATA_CHECKS = {
    "check": "VARCHAR",
    "source": "VARCHAR",
    "invoice_id": "VARCHAR",
    "detail": "VARCHAR",
}
CHECKS = (
    "lines_do_not_add_up",
    "paid_plus_due_not_total",
    "negative_amount_due",
    "unknown_status",
    "duplicate_invoice_id",
    "vendor_outstanding_differs",
    "vendor_overdue_differs",
    "vendor_totals_differ",
)

# Per-vendor staging entities (file stem in sql/10_staging/<vendor>/) and their shapes.
STAGING_ENTITIES = {
    "invoices": {
        **INVOICES,
        **INVOICE_CHECK_COLUMNS,
        **INVOICE_LOAD_COLUMNS,
        **INVOICE_DATE_COLUMNS,
    },
    "invoice_lines": INVOICE_LINES,
    "payments": PAYMENTS,
    "invoice_taxes": INVOICE_TAXES,
    "vendor_figures": VENDOR_FIGURES,
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
    "ar_trend": AR_TREND,
    "data_checks": DATA_CHECKS,
}
MACROS = {
    "ar_summary_at": AR_SUMMARY,
    "ar_aging_at": AR_AGING,
    "ar_overdue_at": AR_INVOICE,
    "ar_trend_at": AR_TREND,
    "ar_outstanding_at": AR_INVOICE,
    "ar_invoices_at": AR_INVOICE,
}
