-- Exsited taxes: the lines' tax objects summed per tax code and rate. Exemption comes from
-- the tenant's exemption tax codes (REVERSE_CHARGE, TAX_EXEMPT, NOT_REGISTERED).
CREATE OR REPLACE VIEW staging.exsited_invoice_taxes AS
SELECT
    'exsited' AS source,
    i.id AS invoice_id,
    l.tax_code AS name,
    CAST(l.tax_rate_percent / 100 AS DECIMAL(12, 8)) AS rate,
    CAST(sum(l.subtotal) AS DECIMAL(18, 4)) AS taxable_amount,
    CAST(sum(coalesce(l.tax_amount, 0)) AS DECIMAL(18, 4)) AS tax_amount,
    CASE
        WHEN l.tax_code IN ('REVERSE_CHARGE', 'TAX_EXEMPT', 'NOT_REGISTERED') THEN lower(l.tax_code)
    END AS exemption
FROM exsited.invoices__lines AS l
JOIN (
    -- One row per invoice. A full refresh (replace) that re-read an invoice changed while it
    -- paged holds both copies; the newest wins (a merge keeps only the last one read).
    SELECT * FROM exsited.invoices
    QUALIFY row_number() OVER (
        PARTITION BY id
        ORDER BY last_updated_on DESC NULLS LAST, TRY_CAST(version AS BIGINT) DESC NULLS LAST
    ) = 1
) AS i ON l._dlt_parent_id = i._dlt_id
WHERE l.tax_code IS NOT NULL
GROUP BY i.id, l.tax_code, l.tax_rate_percent;
