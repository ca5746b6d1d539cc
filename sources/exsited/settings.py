"""Exsited's documented values (vendor notes §4 and the v3 invoice API document), in one place."""

TOKEN_PATH = "/api/v1/oauth2/token"
INVOICES_PATH = "/api/v3/invoices"
ACCOUNT_INVOICES_PATH = "/api/v3/accounts/{account_id}/invoices"

# No default or maximum limit is documented; 100 keeps pages small and requests few.
LIMIT = 100
# The official SDK sends `order_by` (a field name, a free string) and a separate `direction`.
# Newest-changed first, so a sync stops paging at the last sync's high-water mark. The order
# is verified on every page read (incremental.py); a list not in that order is read in full,
# oldest created first (an immutable key: invoices created mid-sync land after the pages read).
ORDER_BY = "last_updated_on"
DIRECTION = "desc"
FALLBACK_ORDER_BY = "created_on"
FALLBACK_DIRECTION = "asc"
# Re-read invoices changed up to this long before the high-water mark: equal timestamps
# (one-second resolution) and changes the API commits late with an earlier stamp.
OVERLAP_SECONDS = 300
# Passes re-reading what changed while paging, before leaving the rest to the next sync.
MAX_PASSES = 5
# The token request carries a redirect_uri even for client credentials; the API does not
# use it for this grant, so an empty string is sent unless one is configured.
REDIRECT_URI = ""

INVOICE_STATUSES = frozenset({"DRAFT", "ACTIVE", "VOIDED", "WRITTEN_OFF"})
PAYMENT_STATUSES = frozenset({"UNPAID", "PARTIALLY_PAID", "PAID"})

# Tax codes this tenant uses for untaxed lines; any other code is an ordinary tax.
EXEMPTION_CODES = frozenset({"REVERSE_CHARGE", "TAX_EXEMPT", "NOT_REGISTERED"})
