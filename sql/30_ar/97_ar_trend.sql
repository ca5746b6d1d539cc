-- billing.ar_trend: billing.ar_trend_at as of today (the last 12 month-ends and today).
CREATE OR REPLACE VIEW billing.ar_trend AS
SELECT * FROM billing.ar_trend_at(current_date);
