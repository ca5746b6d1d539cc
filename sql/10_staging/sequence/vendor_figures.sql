-- Sequence's own per-currency invoice count and gross total (GET /invoices/summary), read by
-- billing.data_checks to reconcile what the sync loaded.
CREATE OR REPLACE VIEW staging.sequence_vendor_figures AS
SELECT
    'sequence' AS source,
    currency,
    CAST(NULL AS DECIMAL(38, 4)) AS outstanding,
    CAST(NULL AS DECIMAL(38, 4)) AS overdue,
    CAST(invoice_count AS BIGINT) AS invoice_count,
    CAST(gross_total AS DECIMAL(38, 4)) AS gross_total
FROM sequence.vendor_totals;
