-- Press invoices in contract shape. Mapping and derivations: sources/press/README.md.
-- The summary has no total, tax, due date or customer: total is the sum of the items, or
-- for a paid invoice the amount paid when that is larger (it includes tax such as GST, which
-- the items leave out); tax is that difference on paid invoices and unknown (NULL) on unpaid
-- ones. Due date (and issue date) is the period end, customer the configured team. An invoice
-- missing from the latest snapshot left Paid/Unpaid: last seen Paid -> refunded (nothing
-- paid), last seen Unpaid -> uncollectible; neither counts as outstanding.
CREATE OR REPLACE VIEW staging.press_invoices AS
WITH mapped AS (
    SELECT
        i.*,
        coalesce(m.in_snapshot, true) AS in_snapshot,
        m.vanished_at,
        -- the latest load that wrote either row: a vanished invoice's marker is written alone
        greatest(i._dlt_load_id, m._dlt_load_id) AS load_id,
        CASE
            WHEN NOT coalesce(m.in_snapshot, true) AND i.status = 'Paid' THEN 'refunded'
            WHEN NOT coalesce(m.in_snapshot, true) THEN 'uncollectible'
            WHEN i.status = 'Paid' THEN 'paid'
            WHEN i.status = 'Unpaid' THEN 'open'
        END AS contract_status
    FROM press.invoices AS i
    LEFT JOIN press.snapshot_membership AS m ON m.name = i.name
), totalled AS (
    SELECT
        *,
        CASE
            WHEN contract_status = 'paid' THEN greatest(items_total, amount_paid)
            ELSE items_total
        END AS derived_total
    FROM mapped
)
SELECT
    'press' AS source,
    m.name AS invoice_id,
    m.name AS invoice_number,
    m.team AS customer_id,
    CAST(NULL AS VARCHAR) AS customer_name,
    m.contract_status AS status,
    m.status AS vendor_status,
    m.payment_mode AS vendor_payment_status,
    m.currency,
    m.period_end AS issue_date,
    m.period_end AS due_date,
    CAST(NULL AS DATE) AS period_start,
    m.period_end,
    CAST(m.items_total AS DECIMAL(18, 4)) AS subtotal,
    CAST(
        CASE WHEN m.contract_status = 'paid' THEN m.derived_total - m.items_total END
        AS DECIMAL(18, 4)
    ) AS tax,
    CAST(m.derived_total AS DECIMAL(18, 4)) AS total,
    CAST(
        CASE WHEN m.contract_status = 'refunded' THEN 0 ELSE m.amount_paid END AS DECIMAL(18, 4)
    ) AS amount_paid,
    CAST(
        CASE
            WHEN m.contract_status = 'open' THEN greatest(m.items_total - m.amount_paid, 0)
            ELSE 0
        END AS DECIMAL(18, 4)
    ) AS amount_due,
    CAST(NULL AS TIMESTAMPTZ) AS created_at,
    CAST(NULL AS TIMESTAMPTZ) AS updated_at,
    m.type AS vendor_invoice_type,
    CAST(m.amount_paid AS DECIMAL(18, 4)) AS vendor_amount_paid,
    -- derived: a Paid invoice is settled, so what its payments do not cover was settled by
    -- credits (prepaid or partner credits)
    CAST(
        CASE WHEN m.contract_status = 'paid' THEN m.derived_total - m.amount_paid END
        AS DECIMAL(18, 4)
    ) AS amount_credited,
    -- derived: an invoice inferred refunded gave back what it had been paid
    CAST(
        CASE WHEN m.contract_status = 'refunded' THEN m.amount_paid END AS DECIMAL(18, 4)
    ) AS amount_refunded,
    m.in_snapshot,
    CAST(m.vanished_at AS TIMESTAMPTZ) AS vanished_at,
    m.load_id,
    -- Point in time: Press dates nothing (the derived refund in payments is dated when a sync
    -- saw the invoice vanish); the warehouse's history dates every change.
    false AS finalization_dated,
    CAST(NULL AS TIMESTAMPTZ) AS finalized_at,
    CAST(NULL AS TIMESTAMPTZ) AS paid_at,
    CAST(NULL AS TIMESTAMPTZ) AS refunded_at,
    CAST(NULL AS TIMESTAMPTZ) AS voided_at,
    CAST(NULL AS TIMESTAMPTZ) AS uncollectible_at,
    CAST(NULL AS TIMESTAMPTZ) AS vendor_updated_at
FROM totalled AS m;
