"""Frappe Cloud "press" billing summary: the vendor's documented values, in one place."""

SUMMARY_PATH = "/api/method/press.api.billing.get_summary"
TEAM_HEADER = "X-Press-Team"

# `get_summary` returns only these two statuses; any other value is a format change.
INVOICE_STATUSES = frozenset({"Paid", "Unpaid"})
PAYMENT_MODES = frozenset(
    {"", "Card", "Prepaid Credits", "NEFT", "Partner Credits", "Paid By Partner", "UPI Autopay"}
)
INVOICE_TYPES = frozenset(
    {"Subscription", "Prepaid Credits", "Service", "Summary", "Partnership Fees"}
)

# A JSON float further than this from the currency's minor unit is not a float artifact of a
# stored Currency value (Frappe rounds those to the currency's precision) but a real fraction.
FLOAT_TOLERANCE = "0.000001"

MEMBERSHIP_TABLE = "snapshot_membership"
