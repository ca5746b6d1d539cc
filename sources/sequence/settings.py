"""Sequence's documented values (vendor notes §2 and its 2024-07-30 OpenAPI spec), in one place."""

API_VERSION = "2024-07-30"  # sent as the `sequence-version` header on every request
LIST_PATH = "/invoices"  # whole invoices (the spec's `Invoice`), with `creditNoteIds`
DETAIL_PATH = "/invoices/{invoice_id}"
LINE_ITEMS_PATH = "/invoices/{invoice_id}/line-items"
SUMMARY_PATH = "/invoices/summary"

LIMIT = 100  # the API's maximum page size (1..100); no default is documented, so always sent
# Oldest first (sortBy defaults to creation time): invoices created during a sync land after
# the pages already read, and a cursor never shifts under us.
SORT_ORDER = "ASC"

INVOICE_STATUSES = frozenset({"IN_PROGRESS", "DRAFT", "FINAL", "SENT", "VOIDED"})
PAYMENT_STATUSES = frozenset({"UNPAID", "PARTIALLY_PAID", "PAID", "UNCOLLECTIBLE"})
TAX_STATUSES = frozenset({"TAXED", "TAX_EXEMPT", "REVERSE_CHARGED"})
PAYMENT_ORIGINS = frozenset({"MANUAL", "STRIPE"})
CREDIT_GRANT_STATUSES = frozenset({"APPLIED", "PROJECTED"})

# Invoices that can still change without the list showing it (another payment on a partly
# paid invoice, credit applied to an unpaid one, a draft edited): their detail is read on
# every sync. Everything else is settled: PAID (a refund adds a credit note id to the list
# entry) or VOIDED (final).
CHANGEABLE_STATUSES = frozenset({"IN_PROGRESS", "DRAFT"})
CHANGEABLE_PAYMENT_STATUSES = frozenset({"UNPAID", "PARTIALLY_PAID", "UNCOLLECTIBLE"})

# Settled invoices are watched through this many buckets (by invoice id), each holding the XOR
# of its invoices' list-entry digests: the state stays this size however many invoices exist.
BUCKETS = 1024

# Currencies of the spec's `Currency` enum (the sandbox ledger uses the ones we have data for).
CURRENCIES = frozenset(
    """AED ARS AUD BRL BGN CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD ILS INR ISK JPY KRW
    MXN NOK NZD PLN SAR SEK SGD THB USD UYU ZAR""".split()  # noqa: SIM905
)
SANDBOX_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "INR")
