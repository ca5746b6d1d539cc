"""Revolv3's documented values (vendor notes §3 and the seed document), in one place."""

INVOICES_PATH = "/api/Invoices"  # the list; `/api/Invoices/{id}` is the detail
# The newer list with the incremental filter `lastUpdateStartDate`/`lastUpdateEndDate` (UTC
# days, both inclusive), `orderBy` and rows that carry `lastUpdateDate`.
CHANGES_PATH = "/api/Invoices/v1"
# We read changes in invoice id order: ids never change, so an invoice that changes while we
# page can only join the window (rows shift down and are met twice), never shift one past us.
CHANGES_ORDER = "InvoiceId"
# How many days before the high-water mark the next incremental window starts (the filter
# has day resolution; the overlap absorbs clock skew, equal stamps and changes made mid-sync).
OVERLAP_DAYS = 1
# A window split after page-cap overflows, re-read this many times at most when invoices keep
# leaving it while we page (each re-read only happens if something changed mid-read).
MAX_WINDOW_READS = 20
TOKEN_HEADER = "x-revolv3-token"

# The vendor binds camelCase `page` (1-based) and `pageSize` (max 100, default 100). The seed's
# `page_size` and default of 25 disagree; a server that ignores our size is still read fully
# because paging stops on an empty page, never on a short one.
PAGE_SIZE = 100
# `GET /api/Invoices/v1` limits `page` to 1..1000; a query that would pass it is continued in a
# narrower billing-date window (see `sources/revolv3/README.md`).
MAX_PAGES = 1000

# Revolv3 sends no currency: invoices are in the merchant's settlement currency.
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
