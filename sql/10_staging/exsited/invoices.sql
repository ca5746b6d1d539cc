-- Exsited invoices in contract shape. Mapping and derivations: sources/exsited/README.md.
CREATE OR REPLACE VIEW staging.exsited_invoices AS
WITH mapped AS (
    SELECT
        i.*,
        CASE
            WHEN i.status = 'DRAFT' THEN 'draft'
            WHEN i.status = 'VOIDED' THEN 'void'
            WHEN i.status = 'WRITTEN_OFF' THEN 'uncollectible'
            WHEN i.status = 'ACTIVE' AND i.payment_status = 'PAID'
                AND i.paid > 0 AND coalesce(i.kpi_credit_issued, 0) >= i.paid THEN 'refunded'
            WHEN i.status = 'ACTIVE' AND i.payment_status = 'PAID' THEN 'paid'
            WHEN i.status = 'ACTIVE' THEN 'open'
        END AS contract_status
    FROM (
        -- One row per invoice. A full refresh (replace) that re-read an invoice changed while it
        -- paged holds both copies; the newest wins (a merge keeps only the last one read).
        SELECT * FROM exsited.invoices
        QUALIFY row_number() OVER (
            PARTITION BY id
            ORDER BY last_updated_on DESC NULLS LAST, TRY_CAST(version AS BIGINT) DESC NULLS LAST
        ) = 1
    ) AS i
)
SELECT
    'exsited' AS source,
    m.id AS invoice_id,
    m.id AS invoice_number,
    m.account_id AS customer_id,
    m.account_name AS customer_name,
    m.contract_status AS status,
    m.status AS vendor_status,
    m.payment_status AS vendor_payment_status,
    m.currency,
    m.issue_date,
    m.due_date,
    m.billing_start_date AS period_start,
    m.billing_end_date AS period_end,
    CAST(m.subtotal AS DECIMAL(18, 4)) AS subtotal,
    CAST(m.tax AS DECIMAL(18, 4)) AS tax,
    CAST(m.total AS DECIMAL(18, 4)) AS total,
    CAST(m.paid - coalesce(m.kpi_credit_issued, 0) AS DECIMAL(18, 4)) AS amount_paid,
    CAST(
        CASE WHEN m.contract_status IN ('draft', 'void') THEN 0 ELSE greatest(m.due, 0) END
        AS DECIMAL(18, 4)
    ) AS amount_due,
    CAST(m.created_on AS TIMESTAMPTZ) AS created_at,
    CAST(coalesce(m.last_updated_on, m.created_on) AS TIMESTAMPTZ) AS updated_at,
    m.order_id AS vendor_order_id,
    m.version AS vendor_version,
    CAST(m.kpi_outstanding AS DECIMAL(18, 4)) AS vendor_outstanding,
    -- kpis.overdue is Exsited's figure on the day the invoice was read; an invoice that fell
    -- due since without changing is not re-read by an incremental sync: no figure, not a stale one.
    CAST(
        CASE
            WHEN m.due_date >= CAST(to_timestamp(CAST(m._dlt_load_id AS DOUBLE)) AS DATE)
                AND m.due_date < current_date THEN NULL
            ELSE m.kpi_overdue
        END AS DECIMAL(18, 4)
    ) AS vendor_overdue,
    CAST(m.kpi_credit_applied AS DECIMAL(18, 4)) AS amount_credited,
    CAST(m.kpi_credit_issued AS DECIMAL(18, 4)) AS amount_refunded,
    CAST(m.due AS DECIMAL(18, 4)) AS vendor_amount_due,
    m._dlt_load_id AS load_id,
    -- Point in time: Exsited dates only the last payment (which for a paid invoice is when
    -- it was paid) and a void; `last_updated_on` dates the changes the history sees.
    false AS finalization_dated,
    CAST(NULL AS TIMESTAMPTZ) AS finalized_at,
    CASE
        WHEN m.contract_status IN ('paid', 'refunded')
            THEN CAST(m.last_payment_created_at AS TIMESTAMPTZ)
    END AS paid_at,
    CAST(NULL AS TIMESTAMPTZ) AS refunded_at,
    CASE WHEN m.contract_status = 'void' THEN CAST(m.kpi_voided_on AS TIMESTAMPTZ) END
        AS voided_at,
    CAST(NULL AS TIMESTAMPTZ) AS uncollectible_at,
    CAST(m.last_updated_on AS TIMESTAMPTZ) AS vendor_updated_at
FROM mapped AS m;
