"""Exsited's documented values (vendor notes §4 and the v3 invoice API document), in one place."""

TOKEN_PATH = "/api/v1/oauth2/token"
INVOICES_PATH = "/api/v3/invoices"
ACCOUNT_INVOICES_PATH = "/api/v3/accounts/{account_id}/invoices"

# No default or maximum limit is documented; 100 keeps pages small and requests few.
LIMIT = 100
# The official SDK sends `order_by` (a field) and a separate `direction`. Oldest first on an
# immutable field, so invoices created during a sync land after the pages already read.
ORDER_BY = "created_on"
DIRECTION = "asc"
# The token request carries a redirect_uri even for client credentials; the API does not
# use it for this grant, so an empty string is sent unless one is configured.
REDIRECT_URI = ""

INVOICE_STATUSES = frozenset({"DRAFT", "ACTIVE", "VOIDED", "WRITTEN_OFF"})
PAYMENT_STATUSES = frozenset({"UNPAID", "PARTIALLY_PAID", "PAID"})

# Tax codes this tenant uses for untaxed lines; any other code is an ordinary tax.
EXEMPTION_CODES = frozenset({"REVERSE_CHARGE", "TAX_EXEMPT", "NOT_REGISTERED"})
