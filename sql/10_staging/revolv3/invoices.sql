-- Revolv3 invoices in contract shape. Mapping and derivations: sources/revolv3/README.md.
-- Reads only revolv3.invoices (attempt figures are summed at load time), so the view never
-- depends on whether any invoice has attempts.
CREATE OR REPLACE VIEW staging.revolv3_invoices AS
WITH mapped AS (
    SELECT
        i.*,
        CASE
            WHEN i.invoice_status IN (
                'Pending', 'OneTimePaymentPending', 'BatchPending', 'CapturePending',
                'Recycle', 'RetryPending', 'Failed'
            ) THEN 'open'
            WHEN i.invoice_status IN (
                'Paid', 'MerchantPaid', 'PartialRefund', 'RefundPending', 'RefundDeclined',
                'RefundFailed'
            ) THEN 'paid'
            WHEN i.invoice_status = 'Refund' THEN 'refunded'
            WHEN i.invoice_status IN ('Void', 'MerchantCancelled') THEN 'void'
            WHEN i.invoice_status = 'Noncollectable' THEN 'uncollectible'
        END AS contract_status,
        CASE
            -- Paid outside Revolv3: the total was paid, no successful attempt carries it.
            WHEN i.invoice_status = 'MerchantPaid' AND i.amount_received = 0
                THEN i.total - i.amount_refunded
            ELSE i.amount_received - i.amount_refunded
        END AS paid_net
    FROM revolv3.invoices AS i
)
SELECT
    'revolv3' AS source,
    CAST(m.invoice_id AS VARCHAR) AS invoice_id,
    m.merchant_invoice_ref_id AS invoice_number,
    coalesce(m.merchant_customer_ref_id, m.customer_id) AS customer_id,
    nullif(trim(concat_ws(' ', m.customer_first_name, m.customer_last_name)), '') AS customer_name,
    m.contract_status AS status,
    m.invoice_status AS vendor_status,
    m.last_attempt_status AS vendor_payment_status,
    m.currency,
    m.billing_date AS issue_date,
    m.billing_date AS due_date,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    CAST(m.subtotal AS DECIMAL(18, 4)) AS subtotal,
    CAST(m.tax AS DECIMAL(18, 4)) AS tax,
    CAST(m.total AS DECIMAL(18, 4)) AS total,
    CAST(m.paid_net AS DECIMAL(18, 4)) AS amount_paid,
    CAST(
        CASE
            WHEN m.contract_status = 'open' THEN greatest(m.total - m.amount_received, 0)
            ELSE 0
        END AS DECIMAL(18, 4)
    ) AS amount_due,
    CAST(m.billing_date AS TIMESTAMPTZ) AS created_at,
    CAST(coalesce(m.last_attempt_at, CAST(m.billing_date AS TIMESTAMPTZ)) AS TIMESTAMPTZ)
        AS updated_at,
    m.billing_date_text AS vendor_billing_date,
    m.merchant_legal_name,
    CAST(m.parent_invoice_id AS VARCHAR) AS parent_invoice_id,
    CAST(m.amount_refunded AS DECIMAL(18, 4)) AS amount_refunded,
    m._dlt_load_id AS load_id,
    -- Point in time: Revolv3 dates each attempt (in payments), which dates payments and
    -- refunds; voids, write-offs and MerchantPaid are dated by the warehouse's history, from
    -- the row's lastUpdateDate where it has one. No drafts: an invoice is open from its
    -- billing date.
    false AS finalization_dated,
    CAST(m.billing_date AS TIMESTAMP) AT TIME ZONE 'UTC' AS finalized_at,
    CAST(NULL AS TIMESTAMPTZ) AS paid_at,
    CAST(NULL AS TIMESTAMPTZ) AS refunded_at,
    CAST(NULL AS TIMESTAMPTZ) AS voided_at,
    CAST(NULL AS TIMESTAMPTZ) AS uncollectible_at,
    CAST(m.last_update_date AS TIMESTAMPTZ) AS vendor_updated_at
FROM mapped AS m;
