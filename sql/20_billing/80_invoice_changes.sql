-- staging.observed_from(...): when a history row of an invoice becomes valid. For its first
-- row, the vendor's update stamp, else its issue date (what was already so when first seen);
-- later, the stamp if it moved since the row it follows, else when the sync fetched the data
-- (`fetched_at`); never before a dated event the row already holds, nor before the row it
-- follows. docs/point-in-time.md.
CREATE OR REPLACE MACRO staging.observed_from(
    previous_from, previous_stamp, stamp, issue_date, created_at, fetched_at, last_event_at
) AS greatest(
    CASE
        WHEN previous_from IS NULL
            THEN coalesce(stamp, CAST(issue_date AS TIMESTAMP) AT TIME ZONE 'UTC', created_at)
        WHEN stamp > previous_stamp THEN stamp
        ELSE fetched_at
    END,
    last_event_at,
    previous_from
);

-- staging.invoice_changes(seen_at): the history rows a sync at seen_at adds: one per invoice
-- whose status, amount paid, amount due or credit applied differs from its open history row,
-- or that has none (pipelines/history.py writes them). The sync fetched the data when its dlt
-- load began, or at seen_at if that is earlier.
CREATE OR REPLACE MACRO staging.invoice_changes(seen_at) AS TABLE
SELECT
    source,
    invoice_id,
    staging.observed_from(
        recorded_from, recorded_stamp, vendor_updated_at, issue_date, created_at,
        least(CAST(seen_at AS TIMESTAMPTZ), loaded_at), last_event_at
    ) AS valid_from,
    status,
    amount_paid,
    amount_due,
    amount_credited,
    vendor_updated_at,
    recorded_from IS NULL AS first_seen,
    load_id
FROM staging.invoice_facts
WHERE unrecorded;
