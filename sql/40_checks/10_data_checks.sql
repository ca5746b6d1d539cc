-- billing.data_checks: one row per problem found in the loaded data (check, source,
-- invoice_id, detail). Empty means every check passed. Definitions: README "Data checks".
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
    format(
        'line items add up to {} {} but the subtotal is {}',
        l.line_total, s.currency, coalesce(CAST(s.subtotal AS VARCHAR), 'n/a')
    )
        AS detail
FROM staged AS s
JOIN top_lines AS l ON l.source = s.source AND l.invoice_id = s.invoice_id
WHERE l.line_total IS DISTINCT FROM s.subtotal
UNION ALL
SELECT
    'paid_plus_due_not_total', source, invoice_id,
    format(
        'paid {} + refunded {} + credited {} + due {} is not the total {} {}',
        amount_paid, coalesce(amount_refunded, 0), coalesce(amount_credited, 0), amount_due,
        total, currency
    )
FROM staged
WHERE status IN ('open', 'paid')
    AND amount_paid + coalesce(amount_refunded, 0) + coalesce(amount_credited, 0) + amount_due
        <> total
UNION ALL
SELECT
    'negative_amount_due', source, invoice_id,
    format('the vendor reports {} {} due (shown as 0)', vendor_amount_due, currency)
FROM staged
WHERE vendor_amount_due < 0
UNION ALL
SELECT
    'unknown_status', source, invoice_id,
    format(
        'vendor status {} / {} maps to no contract status',
        coalesce(vendor_status, 'n/a'), coalesce(vendor_payment_status, 'n/a')
    )
FROM staged
WHERE status IS NULL
    OR status NOT IN ('draft', 'open', 'paid', 'void', 'uncollectible', 'refunded')
UNION ALL
SELECT 'duplicate_invoice_id', source, invoice_id, format('{} rows for one invoice', count(*))
FROM staged
GROUP BY source, invoice_id
HAVING count(*) > 1
UNION ALL
SELECT
    'vendor_outstanding_differs', source, invoice_id,
    format('the vendor reports {} {} outstanding, we have {}', vendor_outstanding, currency,
           CASE WHEN status = 'open' THEN amount_due ELSE 0 END)
FROM staged
WHERE vendor_outstanding IS NOT NULL
    AND vendor_outstanding <> CASE WHEN status = 'open' THEN amount_due ELSE 0 END
UNION ALL
SELECT
    'vendor_overdue_differs', source, invoice_id,
    format('the vendor reports {} {} overdue, we have {}', vendor_overdue, currency,
           CASE WHEN status = 'open' AND due_date < current_date THEN amount_due ELSE 0 END)
FROM staged
WHERE vendor_overdue IS NOT NULL
    AND vendor_overdue
        <> CASE WHEN status = 'open' AND due_date < current_date THEN amount_due ELSE 0 END
UNION ALL
SELECT
    'vendor_totals_differ', f.source, CAST(NULL AS VARCHAR),
    format(
        'the vendor reports {}: outstanding {}, overdue {}, {} invoices, gross {}; '
        || 'we have {}, {}, {} invoices, gross {}',
        f.currency, coalesce(CAST(f.outstanding AS VARCHAR), 'n/a'),
        coalesce(CAST(f.overdue AS VARCHAR), 'n/a'), coalesce(CAST(f.invoice_count AS VARCHAR), 'n/a'),
        coalesce(CAST(f.gross_total AS VARCHAR), 'n/a'),
        coalesce(a.outstanding, 0), coalesce(a.overdue, 0), coalesce(t.invoice_count, 0),
        coalesce(t.gross_total, 0)
    )
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
