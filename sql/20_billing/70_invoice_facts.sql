-- staging.invoice_facts: one row per invoice: its contract columns now, the credit in them,
-- and the dates of its status changes: the vendor's, else, for a paid (refunded) invoice
-- whose payments (refunds) are all dated, the last of them. last_event_at is the latest dated
-- event: a history row is never valid before it. Beside them, the invoice's open history row
-- (recorded_from, recorded_stamp) and whether its figures differ from it (unrecorded).
CREATE OR REPLACE VIEW staging.invoice_facts AS
WITH staged AS (
    {{ staging:invoices }}
), money AS (
    SELECT
        source,
        invoice_id,
        sum(CASE WHEN kind = 'payment' THEN amount ELSE 0 END) AS dated_paid_in,
        sum(CASE WHEN kind = 'refund' THEN amount ELSE 0 END) AS dated_paid_back,
        max(CASE WHEN kind = 'payment' THEN processed_at END) AS last_payment_at,
        max(CASE WHEN kind = 'refund' THEN processed_at END) AS last_refund_at
    FROM staging.dated_money
    GROUP BY source, invoice_id
), dated AS (
    SELECT
        s.source, s.invoice_id, s.invoice_number, s.customer_id, s.customer_name, s.status,
        s.vendor_status, s.vendor_payment_status, s.currency, s.issue_date, s.due_date,
        s.period_start, s.period_end, s.subtotal, s.tax, s.total, s.amount_paid, s.amount_due,
        s.created_at, s.updated_at,
        CAST(coalesce(s.amount_credited, 0) AS DECIMAL(18, 4)) AS amount_credited,
        coalesce(s.finalization_dated, false) AS finalization_dated,
        s.finalized_at,
        coalesce(
            s.paid_at,
            CASE
                WHEN s.status IN ('paid', 'refunded')
                    AND s.amount_paid + coalesce(s.amount_refunded, 0) = m.dated_paid_in
                    THEN m.last_payment_at
            END
        ) AS paid_at,
        coalesce(
            s.refunded_at,
            CASE
                WHEN s.status = 'refunded' AND coalesce(s.amount_refunded, 0) = m.dated_paid_back
                    THEN m.last_refund_at
            END
        ) AS refunded_at,
        s.voided_at,
        s.uncollectible_at,
        s.vendor_updated_at,
        m.last_payment_at,
        m.last_refund_at,
        s.load_id
    FROM staged AS s
    LEFT JOIN money AS m ON m.source = s.source AND m.invoice_id = s.invoice_id
)
SELECT
    d.source, d.invoice_id, d.invoice_number, d.customer_id, d.customer_name, d.status,
    d.vendor_status, d.vendor_payment_status, d.currency, d.issue_date, d.due_date,
    d.period_start, d.period_end, d.subtotal, d.tax, d.total, d.amount_paid, d.amount_due,
    d.created_at, d.updated_at, d.amount_credited, d.finalization_dated, d.finalized_at,
    d.paid_at, d.refunded_at, d.voided_at, d.uncollectible_at, d.vendor_updated_at,
    greatest(
        d.finalized_at, d.paid_at, d.refunded_at, d.voided_at, d.uncollectible_at,
        d.last_payment_at, d.last_refund_at
    ) AS last_event_at,
    d.load_id,
    to_timestamp(CAST(d.load_id AS DOUBLE)) AS loaded_at,
    h.valid_from AS recorded_from,
    h.vendor_updated_at AS recorded_stamp,
    h.invoice_id IS NULL
        OR h.status IS DISTINCT FROM d.status
        OR h.amount_paid IS DISTINCT FROM d.amount_paid
        OR h.amount_due IS DISTINCT FROM d.amount_due
        OR h.amount_credited IS DISTINCT FROM d.amount_credited AS unrecorded
FROM dated AS d
LEFT JOIN billing.invoice_history AS h
    ON h.source = d.source AND h.invoice_id = d.invoice_id AND h.valid_to IS NULL;
