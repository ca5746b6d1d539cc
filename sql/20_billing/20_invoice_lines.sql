-- billing.invoice_lines: line items, and sub-line items with parent_line_id set.
CREATE OR REPLACE VIEW billing.invoice_lines AS
SELECT
    source, invoice_id, line_id, parent_line_id, description, quantity, unit_price, amount,
    currency, tax_rate, period_start, period_end
FROM ({{ staging:invoice_lines }});
