-- billing.ar_overdue: open invoices past their due date, as of today.
CREATE OR REPLACE VIEW billing.ar_overdue AS
SELECT * FROM billing.ar_overdue_at(current_date);
