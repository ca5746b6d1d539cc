-- billing.ar_invoices_at(as_of): every invoice with days past due and aging bucket on a date.
CREATE OR REPLACE MACRO billing.ar_invoices_at(as_of) AS TABLE
SELECT
    i.*,
    CAST(date_diff('day', i.due_date, CAST(as_of AS DATE)) AS INTEGER) AS days_past_due,
    CASE
        WHEN i.due_date IS NULL OR i.due_date >= CAST(as_of AS DATE) THEN 'current'
        WHEN date_diff('day', i.due_date, CAST(as_of AS DATE)) <= 30 THEN '1-30'
        WHEN date_diff('day', i.due_date, CAST(as_of AS DATE)) <= 60 THEN '31-60'
        WHEN date_diff('day', i.due_date, CAST(as_of AS DATE)) <= 90 THEN '61-90'
        ELSE '90+'
    END AS aging_bucket
FROM billing.invoices AS i;
