-- billing.ar_summary_at(as_of): per source and currency, from the invoices as they stood that
-- day (billing.ar_invoices_at); amounts of different currencies never mix.
CREATE OR REPLACE MACRO billing.ar_summary_at(as_of) AS TABLE
SELECT
    i.source,
    i.currency,
    count(*) FILTER (WHERE i.status = 'open' AND i.amount_due > 0) AS open_count,
    coalesce(sum(i.amount_due) FILTER (WHERE i.status = 'open' AND i.amount_due > 0), 0)
        AS outstanding,
    count(*) FILTER (
        WHERE i.status = 'open' AND i.amount_due > 0 AND i.due_date < CAST(as_of AS DATE)
    ) AS overdue_count,
    coalesce(sum(i.amount_due) FILTER (
        WHERE i.status = 'open' AND i.amount_due > 0 AND i.due_date < CAST(as_of AS DATE)
    ), 0) AS overdue,
    count(*) FILTER (WHERE i.status = 'paid') AS paid_count,
    coalesce(sum(i.amount_paid) FILTER (WHERE i.status <> 'void'), 0) AS paid,
    count(*) FILTER (WHERE i.status = 'draft') AS draft_count,
    count(*) FILTER (WHERE i.status = 'void') AS void_count
FROM billing.ar_invoices_at(as_of) AS i
GROUP BY i.source, i.currency;
