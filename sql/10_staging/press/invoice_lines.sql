-- Press invoice items (no sub-lines; no item id, so line_id is "<invoice>:<position>").
CREATE OR REPLACE VIEW staging.press_invoice_lines AS
SELECT
    'press' AS source,
    i.name AS invoice_id,
    l.line_id,
    CAST(NULL AS VARCHAR) AS parent_line_id,
    concat_ws(' ', l.document_type, l.document_name, '(' || l.plan || ')') AS description,
    CAST(l.quantity AS DECIMAL(28, 10)) AS quantity,
    CAST(l.rate AS DECIMAL(28, 10)) AS unit_price,
    CAST(l.amount AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(NULL AS DECIMAL(12, 8)) AS tax_rate,
    CAST(NULL AS DATE) AS period_start,
    i.period_end,
    l.document_type,
    l.document_name,
    l.plan
FROM press.invoices__items AS l
JOIN press.invoices AS i ON l._dlt_parent_id = i._dlt_id;
