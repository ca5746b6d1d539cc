-- Meteroid invoices in contract shape. Mapping and derivations: sources/meteroid/README.md.
CREATE OR REPLACE VIEW staging.meteroid_invoices AS
WITH periods AS (
    SELECT _dlt_parent_id, min(start_date) AS period_start, max(end_date) AS period_end
    FROM meteroid.invoices__line_items
    GROUP BY _dlt_parent_id
), mapped AS (
    SELECT
        i.*,
        CASE
            WHEN i.status = 'DRAFT' THEN 'draft'
            WHEN i.status = 'VOID' THEN 'void'
            WHEN i.status = 'UNCOLLECTIBLE' THEN 'uncollectible'
            WHEN i.status = 'FINALIZED' AND i.payment_status = 'PAID'
                AND i.amount_received > 0 AND i.amount_refunded >= i.amount_received THEN 'refunded'
            WHEN i.status = 'FINALIZED' AND i.payment_status = 'PAID' THEN 'paid'
            WHEN i.status = 'FINALIZED' THEN 'open'
        END AS contract_status
    FROM meteroid.invoices AS i
)
SELECT
    'meteroid' AS source,
    m.id AS invoice_id,
    m.invoice_number,
    m.customer_id,
    m.customer_name,
    m.contract_status AS status,
    m.status AS vendor_status,
    m.payment_status AS vendor_payment_status,
    m.currency,
    m.invoice_date AS issue_date,
    m.due_date,
    p.period_start,
    p.period_end,
    CAST(m.subtotal AS DECIMAL(18, 4)) AS subtotal,
    CAST(m.tax_amount AS DECIMAL(18, 4)) AS tax,
    CAST(m.total AS DECIMAL(18, 4)) AS total,
    CAST(m.amount_received - m.amount_refunded AS DECIMAL(18, 4)) AS amount_paid,
    CAST(
        CASE WHEN m.contract_status IN ('draft', 'void') THEN 0 ELSE greatest(m.amount_due, 0) END
        AS DECIMAL(18, 4)
    ) AS amount_due,
    CAST(m.created_at AS TIMESTAMPTZ) AS created_at,
    CAST(coalesce(m.updated_at, m.created_at) AS TIMESTAMPTZ) AS updated_at,
    m.invoice_type AS vendor_invoice_type,
    CAST(m.applied_credits AS DECIMAL(18, 4)) AS amount_credited,
    CAST(m.amount_refunded AS DECIMAL(18, 4)) AS amount_refunded,
    CAST(m.amount_due AS DECIMAL(18, 4)) AS vendor_amount_due,
    CAST(NULL AS DECIMAL(18, 4)) AS vendor_outstanding,
    CAST(NULL AS DECIMAL(18, 4)) AS vendor_overdue,
    m._dlt_load_id AS load_id,
    -- Point in time: Meteroid dates every status change (and each transaction, in payments);
    -- a date counts only for a change on the way to the invoice's status now.
    true AS finalization_dated,
    CASE WHEN m.contract_status <> 'draft' THEN CAST(m.finalized_at AS TIMESTAMPTZ) END
        AS finalized_at,
    CASE WHEN m.contract_status IN ('paid', 'refunded') THEN CAST(m.paid_at AS TIMESTAMPTZ) END
        AS paid_at,
    CAST(NULL AS TIMESTAMPTZ) AS refunded_at,  -- its refund transactions date it
    CASE WHEN m.contract_status = 'void' THEN CAST(m.voided_at AS TIMESTAMPTZ) END AS voided_at,
    CASE
        WHEN m.contract_status = 'uncollectible'
            THEN CAST(m.marked_as_uncollectible_at AS TIMESTAMPTZ)
    END AS uncollectible_at,
    CAST(m.updated_at AS TIMESTAMPTZ) AS vendor_updated_at
FROM mapped AS m
LEFT JOIN periods AS p ON p._dlt_parent_id = m._dlt_id;
