-- billing.ar_outstanding: open invoices with something due, as of today.
CREATE OR REPLACE VIEW billing.ar_outstanding AS
SELECT * FROM billing.ar_outstanding_at(current_date);
