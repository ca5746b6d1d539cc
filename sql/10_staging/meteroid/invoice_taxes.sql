-- Meteroid tax breakdown; exemption is reverse_charge, tax_exempt or not_registered.
CREATE OR REPLACE VIEW staging.meteroid_invoice_taxes AS
SELECT
    'meteroid' AS source,
    i.id AS invoice_id,
    x.name,
    CAST(x.tax_rate AS DECIMAL(12, 8)) AS rate,
    CAST(x.taxable_amount AS DECIMAL(18, 4)) AS taxable_amount,
    CAST(x.tax_amount AS DECIMAL(18, 4)) AS tax_amount,
    lower(x.exemption_type) AS exemption
FROM meteroid.invoices__tax_breakdown AS x
JOIN meteroid.invoices AS i ON x._dlt_parent_id = i._dlt_id;
