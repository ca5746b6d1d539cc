"""Exact money: Decimal only, minor units converted with the currency's ISO 4217 exponent."""

from decimal import Decimal, InvalidOperation
from functools import cache

# ISO 4217 minor-unit exponents that differ from 2.
_EXPONENT_NOT_TWO = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "CLF": 4,
    "UYW": 4,
}

# Active ISO 4217 codes with two decimals (plus CNH, used by some processors).
_EXPONENT_TWO = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CNH CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR
    IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON
    RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STD STN SVC SYP SZL THB TJS
    TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG ZAR ZMW ZWG ZWL""".split()  # noqa: SIM905
)


class MoneyError(ValueError):
    """An amount or currency that cannot be turned into exact money."""


def currency_exponent(currency: str) -> int:
    """The number of decimals of `currency`'s minor unit (JPY 0, USD 2, KWD 3)."""
    if not isinstance(currency, str):
        raise MoneyError(f"unknown currency code {currency!r}: its minor unit is not known")
    return _exponent_of_code(currency)


@cache  # looked up for every amount; only known codes are kept (the others raise)
def _exponent_of_code(currency: str) -> int:
    code = currency.upper()
    if code in _EXPONENT_NOT_TWO:
        return _EXPONENT_NOT_TWO[code]
    if code in _EXPONENT_TWO:
        return 2
    raise MoneyError(f"unknown currency code {currency!r}: its minor unit is not known")


def minor_to_major(amount: object, currency: str) -> Decimal:
    """Integer minor units (cents, fils, yen) to an exact Decimal in major units."""
    if type(amount) is not int:  # a bool is an int, but not an amount
        raise MoneyError(f"expected an integer amount in minor units, got {amount!r}")
    return Decimal(amount).scaleb(-currency_exponent(currency))


def major_to_minor(amount: Decimal, currency: str) -> int:
    """Exact major units to integer minor units; refuses amounts finer than the minor unit."""
    scaled = amount.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} {currency} has more decimals than the currency allows")
    return int(scaled)


def parse_decimal(value: object) -> Decimal:
    """A decimal string, an integer or a Decimal to Decimal; never through binary floats.

    Floats are refused: callers that must accept JSON numbers decode them as Decimal
    (`json.loads(..., parse_float=Decimal)`), so a float here means a lossy path.
    """
    value_type = type(value)
    if value_type is str:  # the usual case first; Decimal ignores surrounding whitespace
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise MoneyError(f"not a decimal number: {value!r}") from None
    elif value_type is Decimal:
        result = value
    elif value_type is int:  # not bool
        result = Decimal(value)
    else:
        raise MoneyError(f"expected a decimal string or integer, got {value!r}")
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result
