-- billing.payments: payments, refunds and payment attempts (kind is payment or refund).
CREATE OR REPLACE VIEW billing.payments AS
SELECT source, invoice_id, payment_id, kind, status, amount, currency, method, processed_at
FROM ({{ staging:payments }});
