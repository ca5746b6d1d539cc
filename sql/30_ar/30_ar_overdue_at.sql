-- billing.ar_overdue_at(as_of): open invoices with something due, past their due date.
CREATE OR REPLACE MACRO billing.ar_overdue_at(as_of) AS TABLE
SELECT * FROM billing.ar_outstanding_at(as_of) WHERE due_date < CAST(as_of AS DATE);
