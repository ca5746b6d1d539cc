"""dlt sources for the billing vendors, one package per vendor, and their shared machinery."""
