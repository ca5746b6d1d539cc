"""Unit tests of exact money and date parsing."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from sources.common.dates import DateParseError, parse_iso_date, parse_timestamp_utc
from sources.common.fields import FieldError, whole_number
from sources.common.money import (
    MoneyError,
    currency_exponent,
    major_to_minor,
    minor_to_major,
    parse_decimal,
)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (123456, "USD", Decimal("1234.56")),
        (123456, "JPY", Decimal("123456")),
        (123456, "KWD", Decimal("123.456")),
        (-5, "EUR", Decimal("-0.05")),
        (7, "CLF", Decimal("0.0007")),
    ],
)
def test_minor_units_use_the_iso_exponent(amount: int, currency: str, expected: Decimal) -> None:
    assert minor_to_major(amount, currency) == expected
    assert major_to_minor(expected, currency) == amount


def test_unknown_currency_and_non_integers_are_refused() -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        currency_exponent("XYZ")
    with pytest.raises(MoneyError):
        minor_to_major(12.5, "USD")
    with pytest.raises(MoneyError):
        minor_to_major(True, "USD")
    with pytest.raises(MoneyError, match="more decimals"):
        major_to_minor(Decimal("1.005"), "USD")


def test_parse_decimal_never_goes_through_float() -> None:
    assert parse_decimal("0.1") + parse_decimal("0.2") == Decimal("0.3")
    assert parse_decimal(" 150.0000 ") == Decimal("150.0000")
    for bad in (0.1, "abc", "NaN", None, "Infinity"):
        with pytest.raises(MoneyError):
            parse_decimal(bad)


def test_timestamps_without_offset_are_utc() -> None:
    assert parse_timestamp_utc("2024-09-17T18:40:38.107") == datetime(
        2024, 9, 17, 18, 40, 38, 107000, tzinfo=UTC
    )
    assert parse_timestamp_utc("2023-11-07T05:31:56Z") == datetime(
        2023, 11, 7, 5, 31, 56, tzinfo=UTC
    )
    assert parse_timestamp_utc("2023-11-07T07:31:56+02:00").hour == 5
    with pytest.raises(DateParseError):
        parse_timestamp_utc("07/11/2023")


def test_iso_dates() -> None:
    assert parse_iso_date("2023-12-25") == date(2023, 12, 25)
    for bad in ("2023-02-30", "12-25-2023", 20231225):
        with pytest.raises(DateParseError):
            parse_iso_date(bad)


def test_whole_numbers_are_exact_or_refused() -> None:
    assert whole_number(30, "net_terms") == 30
    assert whole_number(30.0, "net_terms") == 30
    assert whole_number(Decimal("30.00"), "net_terms") == 30
    assert whole_number(None, "net_terms") is None
    for bad in (30.7, Decimal("30.5"), float("nan"), Decimal("Infinity"), True, "30"):
        with pytest.raises(FieldError, match="net_terms"):
            whole_number(bad, "net_terms")
    with pytest.raises(FieldError, match="missing"):
        whole_number(None, "invoiceCount", required=True)
