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
FROM (
    -- One row per invoice. A full refresh (replace) that re-read an invoice changed while it
    -- paged holds both copies; the newest wins (a merge keeps only the last one read).
    SELECT * FROM exsited.invoices
    QUALIFY row_number() OVER (
        PARTITION BY id
        ORDER BY last_updated_on DESC NULLS LAST, TRY_CAST(version AS BIGINT) DESC NULLS LAST
    ) = 1
) AS i
WHERE i.last_payment_id IS NOT NULL;
