-- staging.dated_money: the payments and refunds whose date the vendor sends (money received,
-- money given back), as loaded now or, if the vendor no longer sends one, as a sync saw it.
CREATE OR REPLACE VIEW staging.dated_money AS
SELECT p.source, p.invoice_id, p.payment_id, p.kind, p.amount, p.processed_at
FROM billing.payments AS p
WHERE p.processed_at IS NOT NULL
    AND (
        (p.kind = 'payment' AND p.status IN ('settled', 'refunded'))
        OR (p.kind = 'refund' AND p.status = 'settled')
    )
UNION ALL
SELECT h.source, h.invoice_id, h.payment_id, h.kind, h.amount, h.processed_at
FROM billing.payment_history AS h
WHERE NOT EXISTS (
    SELECT 1
    FROM billing.payments AS p
    WHERE p.source = h.source AND p.invoice_id = h.invoice_id AND p.payment_id = h.payment_id
);
