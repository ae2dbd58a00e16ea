"""Money helpers: integer minor units plus an ISO 4217 currency, never floats.

Amounts cross the API as plain decimal strings in major units ("1250.00",
"5000" for JPY). Parsing refuses anything that would need rounding.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

from iso4217 import Currency

_PLAIN_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
#: "30,000" and "1,250,000.50": commas only between whole groups of three digits.
_GROUPED_DECIMAL = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")

#: The largest gift the ledger ever records, in reporting-currency minor units (one
#: billion dollars); the MAX_GIFT_MINOR setting may only lower it. Every sum of money is
#: kept in a signed 64-bit integer (at most 2**63 - 1, about 9.22 x 10**18), and the
#: tightest is funding_mix_day.credited_ppm: a day's gifts, each as reporting amount x the
#: millionths of it credited to one donor category (at most 10**6), so at most 10**17 per
#: gift at this ceiling: 92 such gifts on one day before it could overflow. A day's or a
#: window's totals (funding_day, up to a 3,660-day window summed) would need 92 million.
#: Without a ceiling, one gift of 2**63 - 1 minor units filled its day's total and every
#: later gift dated that day failed to record.
GIFT_CEILING_MINOR = 10**11


class MoneyError(ValueError):
    """An amount, currency or rate that cannot be represented exactly."""


def currency_exponent(code: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (JPY 0, USD 2, BHD 3)."""
    try:
        currency = Currency(code)
    except ValueError:
        raise MoneyError(f"unknown currency code {code!r}") from None
    exponent = currency.exponent
    if exponent is None:  # funds and metals (XAU, XDR) have no minor unit
        raise MoneyError(f"{code} is not a currency for payments")
    return exponent


def normalise_currency(code: object) -> str:
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{3}", code):
        raise MoneyError("currency must be a three-letter ISO 4217 code")
    code = code.upper()
    currency_exponent(code)
    return code


def parse_amount(text: object, currency: str) -> int:
    """'1250.50' USD -> 125050. Refuses exponents, signs and excess digits."""
    if not isinstance(text, str):
        raise MoneyError("amount must be a decimal string such as \"250.00\"")
    text = text.strip()
    if not _PLAIN_DECIMAL.match(text):
        raise MoneyError("amount must be a plain decimal string such as \"250.00\"")
    exponent = currency_exponent(currency)
    _, _, fraction = text.partition(".")
    if len(fraction) > exponent:
        raise MoneyError(
            f"{currency} has {exponent} decimal places; {text!r} would need rounding"
        )
    minor = int(Decimal(text).scaleb(exponent))
    if minor <= 0:
        raise MoneyError("amount must be greater than zero")
    return minor


def ungroup_amount(text: str) -> str:
    """What a person typed ("30,000.50") as the plain decimal string parse_amount takes.

    Commas count only as thousands separators, between whole groups of three digits:
    "30,00", "1,5" or "1.234,56" could be a decimal comma and are refused, never guessed.
    Anything without a comma is returned as typed (stripped), for parse_amount to judge.
    """
    text = text.strip()
    if "," not in text:
        return text
    if not _GROUPED_DECIMAL.match(text):
        raise MoneyError(f"{text!r} is ambiguous: use commas only between groups of three "
                         "digits and a point for decimals, e.g. 30,000.50")
    return text.replace(",", "")


def parse_typed_amount(text: object, currency: str) -> int:
    """An amount a person typed, thousands separators allowed: '30,000.50' USD -> 3000050."""
    if not isinstance(text, str):
        raise MoneyError("amount must be a decimal string such as \"250.00\"")
    return parse_amount(ungroup_amount(text), currency)


def format_amount(minor: int, currency: str) -> str:
    """125050 USD -> '1250.50' (the API's representation)."""
    exponent = currency_exponent(currency)
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    if exponent == 0:
        return f"{sign}{minor}"
    units, cents = divmod(minor, 10**exponent)
    return f"{sign}{units}.{cents:0{exponent}d}"


def display_amount(minor: int, currency: str) -> str:
    """Human form with thousands separators: '$12,400.00' style without symbol tables."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        # A Decimal here (PostgreSQL's SUM of a BIGINT) or a float means a caller did
        # arithmetic outside integer minor units: say so, rather than fail on formatting.
        raise TypeError(f"money must be integer minor units, not {type(minor).__name__} {minor!r}")
    exponent = currency_exponent(currency)
    units, cents = divmod(abs(minor), 10**exponent)
    text = f"{units:,}" + (f".{cents:0{exponent}d}" if exponent else "")
    return f"{'-' if minor < 0 else ''}{text} {currency}"


def parse_rate(text: object) -> Decimal:
    """An exchange rate: units of reporting currency per one unit of the gift currency."""
    if not isinstance(text, str) or not _PLAIN_DECIMAL.match(text.strip()):
        raise MoneyError("fx_rate must be a plain positive decimal string such as \"1.0825\"")
    try:
        rate = Decimal(text.strip())
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise MoneyError("fx_rate is not a decimal") from None
    if rate <= 0:
        raise MoneyError("fx_rate must be greater than zero")
    if len(text.strip()) > 24:
        raise MoneyError("fx_rate has too many digits")
    return rate


def convert(minor: int, currency: str, rate: Decimal, target: str) -> int:
    """Convert minor units between currencies with a major-unit rate, half-even rounded."""
    with localcontext() as ctx:
        # Room for every digit of the exact product: the one rounding is the final one (the
        # default 28 digits would round long products first, or fail on large ones).
        ctx.prec = len(str(abs(minor))) + len(rate.as_tuple().digits) + 2
        value = Decimal(minor).scaleb(-currency_exponent(currency)) * rate
        return int(value.scaleb(currency_exponent(target)).quantize(Decimal(1), ROUND_HALF_EVEN))
