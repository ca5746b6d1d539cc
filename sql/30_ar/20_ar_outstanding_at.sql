-- billing.ar_outstanding_at(as_of): open invoices with something due.
CREATE OR REPLACE MACRO billing.ar_outstanding_at(as_of) AS TABLE
SELECT * FROM billing.ar_invoices_at(as_of) WHERE status = 'open' AND amount_due > 0;
