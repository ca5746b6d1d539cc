-- Press sends no payments, only amount_paid and payment_mode per invoice. Derived rows: one
-- settled payment of amount_paid per invoice that has one, and for an invoice last seen Paid
-- that left the snapshot (inferred refunded) a refund of the same amount, dated when noticed.
CREATE OR REPLACE VIEW staging.press_payments AS
SELECT
    'press' AS source,
    i.name AS invoice_id,
    i.name || ':paid' AS payment_id,
    'payment' AS kind,
    'settled' AS status,
    CAST(i.amount_paid AS DECIMAL(18, 4)) AS amount,
    i.currency,
    lower(i.payment_mode) AS method,
    CAST(NULL AS TIMESTAMPTZ) AS processed_at
FROM press.invoices AS i
WHERE i.amount_paid > 0
UNION ALL
SELECT
    'press' AS source,
    i.name AS invoice_id,
    i.name || ':refund' AS payment_id,
    'refund' AS kind,
    'settled' AS status,
    CAST(i.amount_paid AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(NULL AS VARCHAR) AS method,
    CAST(m.vanished_at AS TIMESTAMPTZ) AS processed_at
FROM press.invoices AS i
JOIN press.snapshot_membership AS m ON m.name = i.name
WHERE NOT m.in_snapshot AND i.status = 'Paid' AND i.amount_paid > 0;
