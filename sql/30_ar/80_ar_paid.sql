-- billing.ar_paid: paid invoices, with days past due and bucket as of today.
CREATE OR REPLACE VIEW billing.ar_paid AS
SELECT * FROM billing.ar_invoices_at(current_date) WHERE status = 'paid';
