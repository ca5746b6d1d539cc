-- Revolv3 sends one tax amount per invoice and no breakdown: one row per invoice with tax,
-- with no name, rate or taxable amount (the vendor sends none of them).
CREATE OR REPLACE VIEW staging.revolv3_invoice_taxes AS
SELECT
    'revolv3' AS source,
    CAST(i.invoice_id AS VARCHAR) AS invoice_id,
    CAST(NULL AS VARCHAR) AS name,
    CAST(NULL AS DECIMAL(12, 8)) AS rate,
    CAST(NULL AS DECIMAL(18, 4)) AS taxable_amount,
    CAST(i.tax AS DECIMAL(18, 4)) AS tax_amount,
    CAST(NULL AS VARCHAR) AS exemption
FROM revolv3.invoices AS i
WHERE i.tax <> 0;
