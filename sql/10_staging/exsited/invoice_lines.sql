-- Exsited invoice lines (Exsited has no sub-lines); unit_price is derived: subtotal / quantity.
CREATE OR REPLACE VIEW staging.exsited_invoice_lines AS
SELECT
    'exsited' AS source,
    i.id AS invoice_id,
    l.line_id,
    CAST(NULL AS VARCHAR) AS parent_line_id,
    coalesce(l.item_name, l.item_id) AS description,
    CAST(l.quantity AS DECIMAL(28, 10)) AS quantity,
    CAST(
        CASE WHEN l.quantity <> 0 THEN CAST(l.subtotal AS DECIMAL(38, 18)) / l.quantity END
        AS DECIMAL(28, 10)
    ) AS unit_price,
    CAST(l.subtotal AS DECIMAL(18, 4)) AS amount,
    i.currency,
    CAST(l.tax_rate_percent / 100 AS DECIMAL(12, 8)) AS tax_rate,
    l.charging_start_date AS period_start,
    l.charging_end_date AS period_end
FROM exsited.invoices__lines AS l
JOIN (
    -- One row per invoice. A full refresh (replace) that re-read an invoice changed while it
    -- paged holds both copies; the newest wins (a merge keeps only the last one read).
    SELECT * FROM exsited.invoices
    QUALIFY row_number() OVER (
        PARTITION BY id
        ORDER BY last_updated_on DESC NULLS LAST, TRY_CAST(version AS BIGINT) DESC NULLS LAST
    ) = 1
) AS i ON l._dlt_parent_id = i._dlt_id;
