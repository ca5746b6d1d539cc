-- Meteroid line items and their sub-line items (sub-lines carry parent_line_id).
CREATE OR REPLACE VIEW staging.meteroid_invoice_lines AS
SELECT
    'meteroid' AS source,
    i.id AS invoice_id,
    l.line_id,
    CAST(NULL AS VARCHAR) AS parent_line_id,
    coalesce(l.description, l.name) AS description,
    CAST(l.quantity AS DECIMAL(28, 10)) AS quantity,
    CAST(l.unit_price AS DECIMAL(28, 10)) AS unit_price,
    CAST(l.amount_total AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(l.tax_rate AS DECIMAL(12, 8)) AS tax_rate,
    l.start_date AS period_start,
    l.end_date AS period_end
FROM meteroid.invoices__line_items AS l
JOIN meteroid.invoices AS i ON l._dlt_parent_id = i._dlt_id
UNION ALL
SELECT
    'meteroid' AS source,
    i.id AS invoice_id,
    s.id AS line_id,
    s.parent_line_id,
    s.name AS description,
    CAST(s.quantity AS DECIMAL(28, 10)) AS quantity,
    CAST(s.unit_price AS DECIMAL(28, 10)) AS unit_price,
    CAST(s.total AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(l.tax_rate AS DECIMAL(12, 8)) AS tax_rate,
    l.start_date AS period_start,
    l.end_date AS period_end
FROM meteroid.invoices__line_items__sub_line_items AS s
JOIN meteroid.invoices__line_items AS l ON s._dlt_parent_id = l._dlt_id
JOIN meteroid.invoices AS i ON l._dlt_parent_id = i._dlt_id;
