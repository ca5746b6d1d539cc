"""Revolv3's documented values (vendor notes §3, the seed document, the vendor's API reference),
in one place."""

INVOICES_PATH = "/api/Invoices"  # `/api/Invoices/{id}` is the detail
# The detailed list (the vendor's recommended endpoint): rows with attempts and line items,
# filters `billingStartDate`/`billingEndDate` and `lastUpdateStartDate`/`lastUpdateEndDate`
# (UTC days, both inclusive), `orderBy`, `page` 1..1000.
LIST_PATH = "/api/Invoices/v1"
# `orderBy` is an integer enum; the numbers are the vendor's, their names inferred. Numbers are
# what the vendor documents, so numbers are what we send.
BY_BILLING_DATE = 1  # billing date descending, then invoiceId ascending
BY_INVOICE_ID = 3
# The first sync reads by billing date: billing dates never change, and invoices billed while
# we page arrive at the top. Changes are read in invoice id order: ids never change, so an
# invoice that changes while we page can only join the window (rows shift down and are met
# twice), never shift one past us.
FULL_ORDER = BY_BILLING_DATE
CHANGES_ORDER = BY_INVOICE_ID
# How many days before the high-water mark the next incremental window starts (the filter
# has day resolution; the overlap absorbs clock skew, equal stamps and changes made mid-sync).
OVERLAP_DAYS = 1
# A window split after page-cap overflows, re-read this many times at most when invoices keep
# leaving it while we page (each re-read only happens if something changed mid-read).
MAX_WINDOW_READS = 20
TOKEN_HEADER = "x-revolv3-token"

# The vendor binds camelCase `page` (1-based) and `pageSize` (max 100, default 100). The seed's
# `page_size` and default of 25 disagree; a server that ignores our size is still read fully
# because paging stops on an empty page, or on a short one only once a full page has shown
# that the server honours our size.
PAGE_SIZE = 100
# `GET /api/Invoices/v1` limits `page` to 1..1000; a query that would pass it is continued in a
# narrower billing-date window (see `sources/revolv3/README.md`).
MAX_PAGES = 1000

# Revolv3's rate limits: 20 requests a second and 20,000 in any 15 minutes, per IP. Requests
# are paced below both (0 turns a limit's pacing off); a 429 is still waited out.
MAX_REQUESTS_PER_SECOND = 20.0
REQUEST_BUDGET = 20_000
REQUEST_BUDGET_SECONDS = 900.0

# The classic list sends no currency, v1 rows may send null: then invoices are in the merchant's
# settlement currency, this setting.
DEFAULT_CURRENCY = "USD"

# The seventeen invoice statuses and the contract status each maps onto (README explains why).
STATUS_MAP = {
    "Pending": "open",
    "OneTimePaymentPending": "open",
    "BatchPending": "open",
    "CapturePending": "open",
    "Recycle": "open",
    "RetryPending": "open",
    "Failed": "open",
    "Paid": "paid",
    "MerchantPaid": "paid",
    "PartialRefund": "paid",
    "RefundPending": "paid",
    "RefundDeclined": "paid",
    "RefundFailed": "paid",
    "Refund": "refunded",
    "Void": "void",
    "MerchantCancelled": "void",
    "Noncollectable": "uncollectible",
}
INVOICE_STATUSES = frozenset(STATUS_MAP)
# Paid outside Revolv3: no successful attempt carries the money, the invoice total is paid.
PAID_OUTSIDE_STATUSES = frozenset({"MerchantPaid"})

# Invoice attempt statuses. Only "Success" is confirmed by the vendor; the rest are inferred.
ATTEMPT_STATUSES = frozenset({"Success", "Fail", "Pending", "Cancelled", "Refund", "RefundFail"})
ATTEMPT_PAYMENT_IN = "Success"  # money received
ATTEMPT_REFUND = "Refund"  # money returned (a positive amount)
REFUND_ATTEMPT_STATUSES = frozenset({"Refund", "RefundFail"})

# Line item `valueType` (vendor's docs on invoice and checkout line items). The v1 rows' example
# sends null for plain charges: taken as `Standard`.
LINE_VALUE_TYPES = frozenset(
    {"Standard", "Discount", "DiscountPercentage", "FinalDiscount", "PriceOverride"}
)
LINE_PERCENTAGE = "DiscountPercentage"  # a percentage of the charges, not an amount
LINE_DISCOUNTS = frozenset({"Discount", "FinalDiscount", LINE_PERCENTAGE})  # taken off
