-- Sequence invoices in contract shape. Mapping and derivations: sources/sequence/README.md.
CREATE OR REPLACE VIEW staging.sequence_invoices AS
WITH mapped AS (
    SELECT
        i.*,
        CASE
            WHEN i.status IN ('IN_PROGRESS', 'DRAFT') THEN 'draft'
            WHEN i.status = 'VOIDED' THEN 'void'
            WHEN i.payment_status = 'UNCOLLECTIBLE' THEN 'uncollectible'
            WHEN i.payment_status = 'PAID'
                AND i.amount_allocated > 0 AND i.amount_credited >= i.amount_allocated THEN 'refunded'
            WHEN i.payment_status = 'PAID' THEN 'paid'
            WHEN i.payment_status IN ('UNPAID', 'PARTIALLY_PAID') THEN 'open'
        END AS contract_status,
        -- Credit notes on a paid invoice give money back: they are its refunds.
        CASE
            WHEN i.payment_status = 'PAID' THEN least(i.amount_credited, i.amount_allocated)
            ELSE 0
        END AS amount_refunded,
        -- What is still owed: Sequence's `balance`, or (when absent) rebuilt from its parts.
        coalesce(
            i.balance,
            i.gross_total - i.amount_credit_grants - i.amount_allocated - i.amount_credited
        ) AS owed
    FROM sequence.invoices AS i
)
SELECT
    'sequence' AS source,
    m.id AS invoice_id,
    m.invoice_number,
    m.customer_id,
    m.customer_name,
    m.contract_status AS status,
    m.status AS vendor_status,
    m.payment_status AS vendor_payment_status,
    m.currency,
    coalesce(m.issue_date, m.accounting_date) AS issue_date,
    m.due_date,
    m.period_start,
    m.period_end,
    CAST(m.net_total AS DECIMAL(18, 4)) AS subtotal,
    CAST(m.total_tax AS DECIMAL(18, 4)) AS tax,
    CAST(m.gross_total AS DECIMAL(18, 4)) AS total,
    CAST(m.amount_allocated - m.amount_refunded AS DECIMAL(18, 4)) AS amount_paid,
    CAST(
        CASE
            WHEN m.contract_status IN ('open', 'uncollectible') THEN greatest(m.owed, 0)
            ELSE 0
        END
        AS DECIMAL(18, 4)
    ) AS amount_due,
    CAST(m.created_at AS TIMESTAMPTZ) AS created_at,
    CAST(coalesce(m.updated_at, m.created_at) AS TIMESTAMPTZ) AS updated_at,
    -- Credit that reduced what is owed: applied credit grants, and credit notes that are
    -- not refunds (those on invoices that are not paid, or beyond what was paid).
    CAST(m.amount_credit_grants + m.amount_credited - m.amount_refunded AS DECIMAL(18, 4))
        AS amount_credited,
    CAST(m.amount_refunded AS DECIMAL(18, 4)) AS amount_refunded,
    CAST(m.balance AS DECIMAL(18, 4)) AS vendor_amount_due,
    CAST(NULL AS DECIMAL(18, 4)) AS vendor_outstanding,
    CAST(NULL AS DECIMAL(18, 4)) AS vendor_overdue,
    m.accounting_date,
    m.customer_tax_status AS vendor_tax_status,
    m._dlt_load_id AS load_id,
    -- Point in time: Sequence dates payments (each allocation's paidAt, in payments) and
    -- nothing else; `updatedAt` dates the changes the warehouse's history sees.
    false AS finalization_dated,
    CAST(NULL AS TIMESTAMPTZ) AS finalized_at,
    CAST(NULL AS TIMESTAMPTZ) AS paid_at,  -- its payment allocations date it
    CAST(NULL AS TIMESTAMPTZ) AS refunded_at,
    CAST(NULL AS TIMESTAMPTZ) AS voided_at,
    CAST(NULL AS TIMESTAMPTZ) AS uncollectible_at,
    CAST(m.updated_at AS TIMESTAMPTZ) AS vendor_updated_at
FROM mapped AS m;
