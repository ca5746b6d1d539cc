-- Revolv3 invoice attempts (from GET /api/Invoices/{id}): payments, refunds, failed tries.
CREATE OR REPLACE VIEW staging.revolv3_payments AS
SELECT
    'revolv3' AS source,
    CAST(i.invoice_id AS VARCHAR) AS invoice_id,
    CAST(a.invoice_attempt_id AS VARCHAR) AS payment_id,
    a.kind,
    CASE a.invoice_attempt_status
        WHEN 'Success' THEN 'settled'
        WHEN 'Refund' THEN 'settled'
        WHEN 'Fail' THEN 'failed'
        WHEN 'RefundFail' THEN 'failed'
        WHEN 'Pending' THEN 'pending'
        WHEN 'Cancelled' THEN 'cancelled'
    END AS status,
    CAST(a.amount AS DECIMAL(18, 4)) AS amount,
    i.currency,
    a.payment_method AS method,
    CAST(a.invoice_attempt_date AS TIMESTAMPTZ) AS processed_at,
    a.invoice_attempt_status AS vendor_status,
    a.payment_processor,
    a.processor_transaction_id,
    a.response_code,
    a.response_message
FROM revolv3.invoices__invoice_attempts AS a
JOIN revolv3.invoices AS i ON a._dlt_parent_id = i._dlt_id;
