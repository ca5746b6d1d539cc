"""Field parsing every vendor's record code shares: exact values or an error naming the record.

Each parser raises `FieldError` naming the field; `record_errors(source, record_id)` turns any
field, money or date problem inside it into one `BadRecordError` naming the source and the
record, so a vendor's `invoice_record` reads as a list of fields, not of try/excepts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import requests

from sources.common.dates import DateParseError, parse_iso_date, parse_timestamp_utc
from sources.common.errors import BadRecordError, SyncError
from sources.common.money import MoneyError, currency_exponent, minor_to_major, parse_decimal

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class FieldError(ValueError):
    """A field that cannot be read without guessing; the message names the field."""


@contextmanager
def record_errors(source: str, record_id: object) -> Iterator[None]:
    """Re-raise field, money, date and shape problems as BadRecordError for this record."""
    try:
        yield
    except (FieldError, MoneyError, DateParseError) as err:
        raise BadRecordError(source, record_id, str(err)) from None
    except (KeyError, TypeError, AttributeError) as err:
        raise BadRecordError(source, record_id, f"unexpected shape: {err!r}") from None


def enum(value: Any, allowed: frozenset[str], field: str, *, screaming: bool = False) -> str:
    """A documented enum value. With `screaming`, PascalCase ("PartiallyPaid") and any casing
    are matched and returned as SCREAMING_SNAKE_CASE ("PARTIALLY_PAID")."""
    if not isinstance(value, str) or not value:
        raise FieldError(f"{field} is missing or not text: {value!r}")
    result = value
    if screaming:
        spaced = value if "_" in value or value.isupper() else _CAMEL_BOUNDARY.sub("_", value)
        result = spaced.upper()
    if result not in allowed:
        raise FieldError(f"unknown {field} {value!r} (known: {', '.join(sorted(allowed))})")
    return result


def optional_enum(
    value: Any, allowed: frozenset[str], field: str, *, screaming: bool = False
) -> str | None:
    return None if value is None else enum(value, allowed, field, screaming=screaming)


def minor_money(value: Any, currency: str, field: str) -> Decimal:
    """Integer minor units to exact major units (ISO 4217 exponent)."""
    try:
        return minor_to_major(value, currency)
    except MoneyError as err:
        raise FieldError(f"{field}: {err}") from None


def major_money(value: Any, currency: str, field: str) -> Decimal:
    """A decimal string or Decimal in major units, no finer than the currency's minor unit."""
    amount = decimal_value(value, field, required=True)
    if amount != amount.quantize(Decimal(1).scaleb(-currency_exponent(currency))):
        raise FieldError(f"{field}: {value!r} has more decimals than {currency} allows")
    return amount


def decimal_value(value: Any, field: str, *, required: bool = False) -> Decimal | None:
    """A decimal string, integer or Decimal (never a float)."""
    if value is None:
        if required:
            raise FieldError(f"{field} is missing")
        return None
    try:
        return parse_decimal(value)
    except MoneyError as err:
        raise FieldError(f"{field}: {err}") from None


def whole_number(value: Any, field: str, *, required: bool = False) -> int | None:
    """A JSON integer; a number with a zero fraction (30.0) is taken as that integer, any
    other fraction, a bool or text is refused: arrow would truncate 30.7 to 30 silently."""
    if value is None:
        if required:
            raise FieldError(f"{field} is missing")
        return None
    if type(value) is int:  # a bool is an int, but not a number here
        return value
    if type(value) in (float, Decimal) and math.isfinite(value) and value == int(value):
        return int(value)
    raise FieldError(f"{field}: {value!r} is not a whole number")


def iso_date(value: Any, field: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_iso_date(value)
    except DateParseError as err:
        raise FieldError(f"{field}: {err}") from None


def utc_timestamp(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp_utc(value)
    except DateParseError as err:
        raise FieldError(f"{field}: {err}") from None


def _decimal_loads(response: requests.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def decode_json(
    source: str,
    response: requests.Response,
    loads: Callable[[requests.Response], Any] = _decimal_loads,
) -> Any:
    """A response body decoded by `loads` (by default with JSON numbers that have a fraction
    as Decimal, never float), or a SyncError naming the request when it is not JSON (a body
    cut short, an HTML error page)."""
    try:
        return loads(response)
    except ValueError:
        path = response.request.path_url.split("?")[0] if response.request else "?"
        raise SyncError(
            source,
            f"malformed response from {path}: not JSON ({response.text[:80]!r})",
            "the API answered in an unexpected format; check the source's BASE_URL",
        ) from None
