-- Sequence sends no tax breakdown: one row per invoice and tax rate, summed from its line
-- items; the exemption comes from the customer's tax status on the invoice.
CREATE OR REPLACE VIEW staging.sequence_invoice_taxes AS
SELECT
    'sequence' AS source,
    i.id AS invoice_id,
    CAST(NULL AS VARCHAR) AS name,
    CAST(l.tax_rate AS DECIMAL(12, 8)) AS rate,
    CAST(sum(l.net_total) AS DECIMAL(18, 4)) AS taxable_amount,
    CAST(sum(l.total_tax) AS DECIMAL(18, 4)) AS tax_amount,
    CASE i.customer_tax_status
        WHEN 'TAX_EXEMPT' THEN 'tax_exempt'
        WHEN 'REVERSE_CHARGED' THEN 'reverse_charge'
    END AS exemption
FROM sequence.invoices__line_items AS l
JOIN sequence.invoices AS i ON l._dlt_parent_id = i._dlt_id
GROUP BY i.id, l.tax_rate, i.customer_tax_status;
