-- Meteroid transactions: payments, refunds and failed attempts.
CREATE OR REPLACE VIEW staging.meteroid_payments AS
SELECT
    'meteroid' AS source,
    i.id AS invoice_id,
    t.id AS payment_id,
    lower(t.payment_type) AS kind,
    lower(t.status) AS status,
    CAST(t.amount AS DECIMAL(18, 4)) AS amount,
    t.currency,
    lower(t.payment_method_type) AS method,
    CAST(t.processed_at AS TIMESTAMPTZ) AS processed_at
FROM meteroid.invoices__transactions AS t
JOIN meteroid.invoices AS i ON t._dlt_parent_id = i._dlt_id;
