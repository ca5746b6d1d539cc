-- billing.invoices: one row per invoice per source, from every vendor's staging view.
CREATE OR REPLACE VIEW billing.invoices AS
SELECT
    source, invoice_id, invoice_number, customer_id, customer_name, status, vendor_status,
    vendor_payment_status, currency, issue_date, due_date, period_start, period_end, subtotal,
    tax, total, amount_paid, amount_due, created_at, updated_at
FROM ({{ staging:invoices }});
