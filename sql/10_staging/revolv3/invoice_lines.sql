-- Revolv3 sends no line items: this view has the contract's shape and no rows.
CREATE OR REPLACE VIEW staging.revolv3_invoice_lines AS
SELECT
    CAST(NULL AS VARCHAR) AS source,
    CAST(NULL AS VARCHAR) AS invoice_id,
    CAST(NULL AS VARCHAR) AS line_id,
    CAST(NULL AS VARCHAR) AS parent_line_id,
    CAST(NULL AS VARCHAR) AS description,
    CAST(NULL AS DECIMAL(28, 10)) AS quantity,
    CAST(NULL AS DECIMAL(28, 10)) AS unit_price,
    CAST(NULL AS DECIMAL(18, 4)) AS amount,
    CAST(NULL AS VARCHAR) AS currency,
    CAST(NULL AS DECIMAL(12, 8)) AS tax_rate,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end
WHERE false;
