-- billing.invoice_taxes: tax breakdown per invoice, with exemptions.
CREATE OR REPLACE VIEW billing.invoice_taxes AS
SELECT source, invoice_id, name, rate, taxable_amount, tax_amount, exemption
FROM ({{ staging:invoice_taxes }});
