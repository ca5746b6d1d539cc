"""Meteroid's documented values (vendor notes §5 and its OpenAPI spec), in one place."""

INVOICES_PATH = "/api/v1/invoices"
PER_PAGE = 100  # the API's maximum; always sent because omitting it triggers a server bug
# Pages fetched at once after the first (dlt's extract workers, 5 by default, bound it).
PARALLEL_PAGES = 4
# Oldest first, so invoices created during a sync land after the pages already read.
ORDER_BY = "invoice_date.asc"

INVOICE_STATUSES = frozenset({"DRAFT", "FINALIZED", "UNCOLLECTIBLE", "VOID"})
PAYMENT_STATUSES = frozenset({"UNPAID", "PARTIALLY_PAID", "PAID", "ERRORED", "PROCESSING"})
INVOICE_TYPES = frozenset({"RECURRING", "ONE_OFF", "ADJUSTMENT", "USAGE_THRESHOLD"})
TRANSACTION_STATUSES = frozenset({"READY", "PENDING", "SETTLED", "CANCELLED", "FAILED", "REFUNDED"})
PAYMENT_TYPES = frozenset({"PAYMENT", "REFUND"})
EXEMPTION_TYPES = frozenset({"REVERSE_CHARGE", "TAX_EXEMPT", "NOT_REGISTERED"})
PAYMENT_METHOD_TYPES = frozenset({"CARD", "BANK_TRANSFER", "WALLET", "OTHER"})

# Transactions that put money in: a payment later refunded still counted as received; its
# refund arrives as its own REFUND transaction.
MONEY_IN_STATUSES = frozenset({"SETTLED", "REFUNDED"})
