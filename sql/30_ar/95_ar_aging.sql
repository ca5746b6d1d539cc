-- billing.ar_aging: billing.ar_aging_at as of today.
CREATE OR REPLACE VIEW billing.ar_aging AS
SELECT * FROM billing.ar_aging_at(current_date);
