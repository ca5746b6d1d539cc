"""The one calendar day a test session compares against.

Sandbox ledgers are built around a day (due dates, what a vendor reports as overdue), and the
tests ask the views for figures as of a day. Both take it from here, fixed once when the
session starts, so a run that crosses midnight, or a machine whose local zone is not UTC
(the ledger's clock), still compares like with like.
"""

from datetime import UTC, datetime

TODAY = datetime.now(UTC).date()
