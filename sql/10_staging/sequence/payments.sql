-- Sequence payments: the payment allocations of each invoice (settled money), and, on paid
-- invoices, applied credit notes as refunds. Failed attempts are not in Sequence's API.
CREATE OR REPLACE VIEW staging.sequence_payments AS
SELECT
    'sequence' AS source,
    i.id AS invoice_id,
    a.payment_id,
    'payment' AS kind,
    'settled' AS status,
    CAST(a.amount AS DECIMAL(18, 4)) AS amount,
    i.currency,
    lower(a.origin) AS method,
    CAST(a.paid_at AS TIMESTAMPTZ) AS processed_at
FROM sequence.invoices__payment_allocations AS a
JOIN sequence.invoices AS i ON a._dlt_parent_id = i._dlt_id
UNION ALL
SELECT
    'sequence' AS source,
    i.id AS invoice_id,
    c.credit_note_id AS payment_id,
    'refund' AS kind,
    'settled' AS status,
    CAST(c.gross_total AS DECIMAL(18, 4)) AS amount,
    i.currency,
    'credit_note' AS method,
    CAST(NULL AS TIMESTAMPTZ) AS processed_at
FROM sequence.invoices__credit_notes AS c
JOIN sequence.invoices AS i ON c._dlt_parent_id = i._dlt_id
WHERE i.payment_status = 'PAID';
