-- The warehouse's own history, written by pipelines/history.py after each successful sync and
-- kept through --full-refresh (docs/point-in-time.md). billing.invoice_history: what the syncs
-- saw of each invoice (status, amount paid, amount due, credit applied), one row per change,
-- valid from valid_from until valid_to (NULL: still so). billing.payment_history: every dated
-- payment or refund a sync saw, kept when the vendor stops sending it (Exsited sends only an
-- invoice's last payment). The point-in-time macros read both.
CREATE TABLE IF NOT EXISTS billing.invoice_history (
    source VARCHAR NOT NULL,
    invoice_id VARCHAR NOT NULL,
    valid_from TIMESTAMPTZ NOT NULL,
    valid_to TIMESTAMPTZ,
    status VARCHAR,
    amount_paid DECIMAL(18, 4),
    amount_due DECIMAL(18, 4),
    amount_credited DECIMAL(18, 4),
    vendor_updated_at TIMESTAMPTZ,
    first_seen BOOLEAN NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    load_id VARCHAR
);
CREATE TABLE IF NOT EXISTS billing.payment_history (
    source VARCHAR NOT NULL,
    invoice_id VARCHAR NOT NULL,
    payment_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    amount DECIMAL(18, 4) NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL
);
