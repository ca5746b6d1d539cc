-- billing.ar_trend_at(as_of): outstanding and overdue per source and currency at the 12
-- month-ends before `as_of` and at `as_of` itself, each from billing.ar_summary_at(that day),
-- so the trend is exactly as right as the point-in-time macros are. Every source and
-- currency that has figures on any of the 13 days has a row on each of them (zeros on a day
-- before its first invoice), so a chart of the trend has all its points.
-- Portable SQL: the 13 days come from a recursive CTE (no DuckDB-only generate_series or
-- last_day), and the macro is read with a LATERAL join, as a set-returning function is on
-- PostgreSQL. A month-end is the first of a month less one day, so February and 30-day
-- months come out right, and `as_of` on a month-end is not counted twice.
CREATE OR REPLACE MACRO billing.ar_trend_at(as_of) AS TABLE
WITH RECURSIVE months_back(n) AS (
    SELECT 0
    UNION ALL
    SELECT n + 1 FROM months_back WHERE n < 11
), days(day) AS (
    SELECT CAST(as_of AS DATE)
    UNION ALL
    SELECT CAST(
        CAST(date_trunc('month', CAST(as_of AS DATE)) AS DATE)
            - n * INTERVAL '1 month' - INTERVAL '1 day'
        AS DATE
    )
    FROM months_back
), figures AS (
    SELECT d.day, s.source, s.currency, s.outstanding, s.overdue, s.open_count, s.overdue_count
    FROM days AS d
    CROSS JOIN LATERAL billing.ar_summary_at(d.day) AS s
), series AS (
    SELECT DISTINCT source, currency FROM figures
)
SELECT
    k.source,
    k.currency,
    d.day AS as_of,
    CAST(coalesce(f.outstanding, 0) AS DECIMAL(38, 4)) AS outstanding,
    CAST(coalesce(f.overdue, 0) AS DECIMAL(38, 4)) AS overdue,
    CAST(coalesce(f.open_count, 0) AS BIGINT) AS open_count,
    CAST(coalesce(f.overdue_count, 0) AS BIGINT) AS overdue_count
FROM series AS k
CROSS JOIN days AS d
LEFT JOIN figures AS f ON f.source = k.source AND f.currency = k.currency AND f.day = d.day;
