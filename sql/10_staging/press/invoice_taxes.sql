-- Press's billing summary carries no tax (GST is not in the response): always empty.
CREATE OR REPLACE VIEW staging.press_invoice_taxes AS
SELECT
    'press' AS source,
    i.name AS invoice_id,
    CAST(NULL AS VARCHAR) AS name,
    CAST(NULL AS DECIMAL(12, 8)) AS rate,
    CAST(NULL AS DECIMAL(18, 4)) AS taxable_amount,
    CAST(NULL AS DECIMAL(18, 4)) AS tax_amount,
    CAST(NULL AS VARCHAR) AS exemption
FROM press.invoices AS i
WHERE false;
