"""Date and timestamp parsing that never guesses."""

from datetime import UTC, date, datetime


class DateParseError(ValueError):
    """A date or timestamp that does not match the vendor's documented format."""


def parse_iso_date(value: object) -> date:
    """`YYYY-MM-DD` (a longer ISO timestamp is cut to its date only if it says so)."""
    if not isinstance(value, str):
        raise DateParseError(f"expected a YYYY-MM-DD date, got {value!r}")
    try:
        return date.fromisoformat(value[:10]) if len(value) >= 10 else date.fromisoformat(value)
    except ValueError:
        raise DateParseError(f"not a YYYY-MM-DD date: {value!r}") from None


def parse_timestamp_utc(value: object) -> datetime:
    """An ISO 8601 timestamp; one without an offset is UTC (as the vendors document)."""
    if not isinstance(value, str):
        raise DateParseError(f"expected an ISO 8601 timestamp, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DateParseError(f"not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise DateParseError(f"outside the years 1 to 9999 in UTC: {value!r}") from None
