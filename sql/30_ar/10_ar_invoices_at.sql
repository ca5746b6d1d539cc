-- billing.ar_invoices_at(as_of): every invoice issued by the end of as_of (UTC), as it stood
-- then, with days past due and aging bucket on that day (docs/point-in-time.md).
-- The state the warehouse's history held on that day (the last row valid from on or before
-- it), moved on by the vendor's dated events after that row up to the day: its payments and
-- refunds, and the status changes it dates. Before an invoice's first history row: the
-- vendor's dated events alone. An invoice finalized by now counts from its issue date, as
-- open, even on days before it was finalized (a draft never counts; one voided without being
-- finalized was a draft until then). The amount due of an invoice open (or written off)
-- that day: what the row held less the payments dated after it, or, when it was not yet open
-- in that row, its total less the credit applied and the money received by then.
CREATE OR REPLACE MACRO billing.ar_invoices_at(as_of) AS TABLE
WITH facts AS (
    SELECT * FROM staging.invoice_facts
), unrecorded AS (
    -- loads the history does not hold yet (a sync stopped before writing it): the rows the
    -- next sync writes, as staging.invoice_changes makes them, fetched when their load began
    SELECT
        source,
        invoice_id,
        staging.observed_from(
            recorded_from, recorded_stamp, vendor_updated_at, issue_date, created_at,
            loaded_at, last_event_at
        ) AS valid_from,
        status,
        amount_paid,
        amount_due,
        amount_credited,
        recorded_from IS NULL AS first_seen,
        load_id
    FROM facts
    WHERE unrecorded
), observed AS (
    SELECT
        source, invoice_id, valid_from, status, amount_paid, amount_due, amount_credited,
        first_seen, load_id
    FROM billing.invoice_history
    UNION ALL
    SELECT
        source, invoice_id, valid_from, status, amount_paid, amount_due, amount_credited,
        first_seen, load_id
    FROM unrecorded
), seen AS (
    SELECT source, invoice_id, valid_from, status, amount_paid, amount_due, amount_credited
    FROM (
        SELECT
            o.*,
            row_number() OVER (
                PARTITION BY o.source, o.invoice_id
                ORDER BY o.valid_from DESC, CAST(o.load_id AS DOUBLE) DESC
            ) AS newest
        FROM observed AS o
        WHERE CAST(o.valid_from AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
    ) AS ranked
    WHERE newest = 1
), first_seen AS (
    SELECT source, invoice_id, status, amount_credited FROM observed WHERE first_seen
), finalized AS (
    -- invoices finalized by now, whenever that was: issued, they count from their issue date
    SELECT source, invoice_id
    FROM observed
    GROUP BY source, invoice_id
    HAVING bool_or(status NOT IN ('draft', 'void'))
), moved AS (
    SELECT
        m.source,
        m.invoice_id,
        sum(CASE WHEN m.kind = 'payment' THEN m.amount ELSE 0 END) AS paid_in,
        sum(CASE WHEN m.kind = 'refund' THEN m.amount ELSE 0 END) AS paid_back
    FROM staging.dated_money AS m
    LEFT JOIN seen AS s ON s.source = m.source AND s.invoice_id = m.invoice_id
    WHERE CAST(m.processed_at AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
        AND (s.valid_from IS NULL OR m.processed_at > s.valid_from)
    GROUP BY m.source, m.invoice_id
), based AS (
    SELECT
        f.*,
        s.valid_from AS seen_from,
        s.status AS seen_status,
        s.amount_paid AS seen_paid,
        s.amount_due AS seen_due,
        CASE
            -- credit is applied on finalization: not yet, on a day before the vendor dates it
            WHEN (s.invoice_id IS NULL OR s.status = 'draft') AND f.finalization_dated
                AND (
                    f.finalized_at IS NULL
                    OR CAST(f.finalized_at AT TIME ZONE 'UTC' AS DATE) > CAST(as_of AS DATE)
                )
                THEN CAST(0 AS DECIMAL(18, 4))
            ELSE coalesce(s.amount_credited, fs.amount_credited, f.amount_credited)
        END AS credited_then,
        coalesce(mv.paid_in, 0) AS paid_in,
        coalesce(mv.paid_back, 0) AS paid_back,
        CASE
            -- a draft finalized later counts from its issue date, as open
            WHEN s.status = 'draft' AND (fz.invoice_id IS NOT NULL OR f.finalized_at IS NOT NULL)
                THEN 'open'
            WHEN s.invoice_id IS NOT NULL THEN s.status
            WHEN fz.invoice_id IS NOT NULL OR f.finalized_at IS NOT NULL THEN 'open'
            ELSE 'draft'
        END AS base_status
    FROM facts AS f
    LEFT JOIN seen AS s ON s.source = f.source AND s.invoice_id = f.invoice_id
    LEFT JOIN first_seen AS fs ON fs.source = f.source AND fs.invoice_id = f.invoice_id
    LEFT JOIN finalized AS fz ON fz.source = f.source AND fz.invoice_id = f.invoice_id
    LEFT JOIN moved AS mv ON mv.source = f.source AND mv.invoice_id = f.invoice_id
    WHERE coalesce(f.issue_date, CAST(f.created_at AT TIME ZONE 'UTC' AS DATE))
        <= CAST(as_of AS DATE)
), stepped AS (
    -- a dated change counts if it happened by the end of the day and after the row it moves on
    SELECT
        b.*,
        CASE
            WHEN b.base_status = 'void' OR (
                CAST(b.voided_at AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
                AND (b.seen_from IS NULL OR b.voided_at > b.seen_from)
            ) THEN 'void'
            WHEN b.base_status = 'uncollectible' OR (
                CAST(b.uncollectible_at AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
                AND (b.seen_from IS NULL OR b.uncollectible_at > b.seen_from)
            ) THEN 'uncollectible'
            WHEN b.base_status = 'refunded' OR (
                CAST(b.refunded_at AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
                AND (b.seen_from IS NULL OR b.refunded_at > b.seen_from)
            ) THEN 'refunded'
            WHEN b.base_status = 'paid' OR (
                CAST(b.paid_at AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
                AND (b.seen_from IS NULL OR b.paid_at > b.seen_from)
            ) THEN 'paid'
            WHEN b.base_status = 'open' OR (
                CAST(b.finalized_at AT TIME ZONE 'UTC' AS DATE) <= CAST(as_of AS DATE)
                AND (b.seen_from IS NULL OR b.finalized_at > b.seen_from)
            ) THEN 'open'
            ELSE b.base_status
        END AS status_then
    FROM based AS b
), valued AS (
    SELECT
        st.*,
        CAST(coalesce(st.seen_paid, 0) + st.paid_in - st.paid_back AS DECIMAL(18, 4))
            AS paid_then,
        CAST(
            CASE
                WHEN st.status_then NOT IN ('open', 'uncollectible') THEN 0
                WHEN st.seen_status IN ('open', 'uncollectible')
                    THEN greatest(st.seen_due - st.paid_in, 0)
                ELSE greatest(
                    st.total - st.credited_then - (coalesce(st.seen_paid, 0) + st.paid_in), 0
                )
            END AS DECIMAL(18, 4)
        ) AS due_then
    FROM stepped AS st
)
SELECT
    v.source, v.invoice_id, v.invoice_number, v.customer_id, v.customer_name,
    v.status_then AS status, v.vendor_status, v.vendor_payment_status, v.currency, v.issue_date,
    v.due_date, v.period_start, v.period_end, v.subtotal, v.tax, v.total,
    v.paid_then AS amount_paid, v.due_then AS amount_due, v.created_at, v.updated_at,
    CAST(CAST(as_of AS DATE) - v.due_date AS INTEGER) AS days_past_due,
    CASE
        WHEN v.due_date IS NULL OR v.due_date >= CAST(as_of AS DATE) THEN 'current'
        WHEN CAST(as_of AS DATE) - v.due_date <= 30 THEN '1-30'
        WHEN CAST(as_of AS DATE) - v.due_date <= 60 THEN '31-60'
        WHEN CAST(as_of AS DATE) - v.due_date <= 90 THEN '61-90'
        ELSE '90+'
    END AS aging_bucket
FROM valued AS v;
