-- billing.data_checks: one row per problem found in the loaded data (check, source,
-- invoice_id, detail). Empty means every check passed. Definitions: README "Data checks".
-- Portable SQL (DuckDB and PostgreSQL): details are built with ||, amounts cast to text with
-- their scale, so both give the same text.
CREATE OR REPLACE VIEW billing.data_checks AS
WITH staged AS (
    {{ staging:invoices }}
), top_lines AS (
    SELECT source, invoice_id, sum(amount) AS line_total
    FROM billing.invoice_lines
    WHERE parent_line_id IS NULL
    GROUP BY source, invoice_id
), vendor_figures AS (
    {{ staging:vendor_figures }}
)
SELECT
    'lines_do_not_add_up' AS "check", s.source, s.invoice_id,
    'line items add up to ' || CAST(l.line_total AS VARCHAR) || ' ' || s.currency
        || ' but the subtotal is ' || coalesce(CAST(s.subtotal AS VARCHAR), 'n/a')
        AS detail
FROM staged AS s
JOIN top_lines AS l ON l.source = s.source AND l.invoice_id = s.invoice_id
WHERE l.line_total IS DISTINCT FROM s.subtotal
UNION ALL
SELECT
    'paid_plus_due_not_total', source, invoice_id,
    'paid ' || CAST(amount_paid AS VARCHAR)
        || ' + refunded ' || CAST(CAST(coalesce(amount_refunded, 0) AS DECIMAL(18, 4)) AS VARCHAR)
        || ' + credited ' || CAST(CAST(coalesce(amount_credited, 0) AS DECIMAL(18, 4)) AS VARCHAR)
        || ' + due ' || CAST(amount_due AS VARCHAR)
        || ' is not the total ' || CAST(total AS VARCHAR) || ' ' || currency
FROM staged
WHERE status IN ('open', 'paid')
    AND amount_paid + coalesce(amount_refunded, 0) + coalesce(amount_credited, 0) + amount_due
        <> total
UNION ALL
SELECT
    'negative_amount_due', source, invoice_id,
    'the vendor reports ' || CAST(vendor_amount_due AS VARCHAR) || ' ' || currency
        || ' due (shown as 0)'
FROM staged
WHERE vendor_amount_due < 0
UNION ALL
SELECT
    'unknown_status', source, invoice_id,
    'vendor status ' || coalesce(vendor_status, 'n/a') || ' / '
        || coalesce(vendor_payment_status, 'n/a') || ' maps to no contract status'
FROM staged
WHERE status IS NULL
    OR status NOT IN ('draft', 'open', 'paid', 'void', 'uncollectible', 'refunded')
UNION ALL
SELECT
    'duplicate_invoice_id', source, invoice_id,
    CAST(count(*) AS VARCHAR) || ' rows for one invoice'
FROM staged
GROUP BY source, invoice_id
HAVING count(*) > 1
UNION ALL
SELECT
    'vendor_outstanding_differs', source, invoice_id,
    'the vendor reports ' || CAST(vendor_outstanding AS VARCHAR) || ' ' || currency
        || ' outstanding, we have '
        || CAST(CAST(CASE WHEN status = 'open' THEN amount_due ELSE 0 END AS DECIMAL(18, 4))
            AS VARCHAR)
FROM staged
WHERE vendor_outstanding IS NOT NULL
    AND vendor_outstanding <> CASE WHEN status = 'open' THEN amount_due ELSE 0 END
UNION ALL
SELECT
    'vendor_overdue_differs', source, invoice_id,
    'the vendor reports ' || CAST(vendor_overdue AS VARCHAR) || ' ' || currency
        || ' overdue, we have '
        || CAST(CAST(
            CASE WHEN status = 'open' AND due_date < current_date THEN amount_due ELSE 0 END
            AS DECIMAL(18, 4)) AS VARCHAR)
FROM staged
WHERE vendor_overdue IS NOT NULL
    AND vendor_overdue
        <> CASE WHEN status = 'open' AND due_date < current_date THEN amount_due ELSE 0 END
UNION ALL
SELECT
    'vendor_totals_differ', f.source, CAST(NULL AS VARCHAR),
    'the vendor reports ' || f.currency
        || ': outstanding ' || coalesce(CAST(f.outstanding AS VARCHAR), 'n/a')
        || ', overdue ' || coalesce(CAST(f.overdue AS VARCHAR), 'n/a')
        || ', ' || coalesce(CAST(f.invoice_count AS VARCHAR), 'n/a')
        || ' invoices, gross ' || coalesce(CAST(f.gross_total AS VARCHAR), 'n/a')
        || '; we have ' || CAST(CAST(coalesce(a.outstanding, 0) AS DECIMAL(38, 4)) AS VARCHAR)
        || ', ' || CAST(CAST(coalesce(a.overdue, 0) AS DECIMAL(38, 4)) AS VARCHAR)
        || ', ' || CAST(coalesce(t.invoice_count, 0) AS VARCHAR)
        || ' invoices, gross ' || CAST(CAST(coalesce(t.gross_total, 0) AS DECIMAL(38, 4)) AS VARCHAR)
FROM vendor_figures AS f
LEFT JOIN billing.ar_summary AS a ON a.source = f.source AND a.currency = f.currency
LEFT JOIN (
    SELECT source, currency, count(*) AS invoice_count, sum(total) AS gross_total
    FROM billing.invoices
    GROUP BY source, currency
) AS t ON t.source = f.source AND t.currency = f.currency
WHERE f.outstanding <> coalesce(a.outstanding, 0)
    OR f.overdue <> coalesce(a.overdue, 0)
    OR f.invoice_count <> coalesce(t.invoice_count, 0)
    OR f.gross_total <> coalesce(t.gross_total, 0);
