"""Machinery shared by every vendor: money, dates, HTTP client set-up, errors, the sandbox."""
