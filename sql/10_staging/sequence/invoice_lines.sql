-- Sequence line items (from GET /invoices/{id}/line-items). Sequence has no sub-line items,
-- so parent_line_id is always null; a rate shown as a percentage is not a unit price.
CREATE OR REPLACE VIEW staging.sequence_invoice_lines AS
SELECT
    'sequence' AS source,
    i.id AS invoice_id,
    l.line_id,
    CAST(NULL AS VARCHAR) AS parent_line_id,
    coalesce(l.description, l.title) AS description,
    CAST(l.quantity AS DECIMAL(28, 10)) AS quantity,
    CAST(
        CASE WHEN coalesce(l.rate_display, 'ABSOLUTE') = 'ABSOLUTE' THEN l.rate END
        AS DECIMAL(28, 10)
    ) AS unit_price,
    CAST(l.net_total AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(l.tax_rate AS DECIMAL(12, 8)) AS tax_rate,
    l.period_start,
    l.period_end,
    l.title,
    l.line_index,
    l.group_id,
    CAST(l.total_tax AS DECIMAL(18, 4)) AS line_tax,
    CAST(l.gross_total AS DECIMAL(18, 4)) AS line_total
FROM sequence.invoices__line_items AS l
JOIN sequence.invoices AS i ON l._dlt_parent_id = i._dlt_id;
