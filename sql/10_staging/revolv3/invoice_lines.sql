-- Revolv3 line items (`invoiceLineItems` of the v1 rows): no sub-lines, no quantity, unit price,
-- tax rate or period (the vendor sends none). `amount` is what the line adds to the subtotal,
-- signed by its valueType at load time (sources/revolv3/README.md, "Line items").
CREATE OR REPLACE VIEW staging.revolv3_invoice_lines AS
SELECT
    'revolv3' AS source,
    CAST(i.invoice_id AS VARCHAR) AS invoice_id,
    CAST(l.invoice_line_item_id AS VARCHAR) AS line_id,
    CAST(NULL AS VARCHAR) AS parent_line_id,
    coalesce(l.description, l.name) AS description,
    CAST(NULL AS DECIMAL(28, 10)) AS quantity,
    CAST(NULL AS DECIMAL(28, 10)) AS unit_price,
    CAST(l.amount AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(NULL AS DECIMAL(12, 8)) AS tax_rate,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    l.name,
    coalesce(l.value_type, 'Standard') AS value_type,
    CAST(l.value AS DECIMAL(18, 4)) AS vendor_value
FROM revolv3.invoices__invoice_line_items AS l
JOIN revolv3.invoices AS i ON l._dlt_parent_id = i._dlt_id;
