-- Exsited sends only each invoice's last payment (`last_payment`); it lands here as a settled
-- payment. Earlier payments, failed attempts and refunds are not in the invoice API.
CREATE OR REPLACE VIEW staging.exsited_payments AS
SELECT
    'exsited' AS source,
    i.id AS invoice_id,
    i.last_payment_id AS payment_id,
    'payment' AS kind,
    'settled' AS status,
    CAST(i.last_payment_amount AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(NULL AS VARCHAR) AS method,
    CAST(i.last_payment_created_at AS TIMESTAMPTZ) AS processed_at
FROM exsited.invoices AS i
WHERE i.last_payment_id IS NOT NULL;
