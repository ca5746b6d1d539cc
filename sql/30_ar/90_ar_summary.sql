-- billing.ar_summary: billing.ar_summary_at as of today.
CREATE OR REPLACE VIEW billing.ar_summary AS
SELECT * FROM billing.ar_summary_at(current_date);
