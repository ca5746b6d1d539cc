-- billing.ar_aging_at(as_of): every bucket for each source and currency with money outstanding.
CREATE OR REPLACE MACRO billing.ar_aging_at(as_of) AS TABLE
WITH buckets(aging_bucket, bucket_order) AS (
    VALUES ('current', 1), ('1-30', 2), ('31-60', 3), ('61-90', 4), ('90+', 5)
), outstanding AS (
    SELECT * FROM billing.ar_outstanding_at(as_of)
)
SELECT
    k.source,
    k.currency,
    b.aging_bucket,
    count(o.invoice_id) AS invoice_count,
    CAST(coalesce(sum(o.amount_due), 0) AS DECIMAL(38, 4)) AS amount_due
FROM (SELECT DISTINCT source, currency FROM outstanding) AS k
CROSS JOIN buckets AS b
LEFT JOIN outstanding AS o
    ON o.source = k.source AND o.currency = k.currency AND o.aging_bucket = b.aging_bucket
GROUP BY k.source, k.currency, b.aging_bucket, b.bucket_order
ORDER BY k.source, k.currency, b.bucket_order;
