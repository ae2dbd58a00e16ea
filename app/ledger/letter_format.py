"""Dates and amounts as people read them in the organisation's locale (ORG_LOCALE), for
letters and their previews: "December 4, 2026" and "$500.00" in en_US, "4 December 2026" in
en_GB, "1.234,56 €" in de_DE. Babel holds the Unicode CLDR's conventions for each locale,
so nothing here knows a country's habits. The API and exports keep their machine forms
(models.money.format_amount, ISO dates)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency

from models.money import currency_exponent

DEFAULT_LOCALE = "en_US"


@cache
def locale_of(name: str | None) -> Locale:
    """The Babel locale for a setting such as "en_GB" or "de-DE"; ValueError if unknown."""
    try:
        return Locale.parse((name or DEFAULT_LOCALE).replace("-", "_"))
    except (UnknownLocaleError, ValueError) as error:
        raise ValueError(f"ORG_LOCALE: {name!r} is not a locale Babel knows ({error})") from None


def money(minor: int, currency: str, locale: str | None = None) -> str:
    """An amount in minor units as the locale writes it, with the currency's own places."""
    # Decimal end to end: the amount is exact, never a float. Without quantization a digit
    # the ledger holds is never rounded away where CLDR gives a currency fewer places.
    value = Decimal(minor).scaleb(-currency_exponent(currency))
    return format_currency(value, currency, locale=locale_of(locale),
                           decimal_quantization=False)


def day(value: date, locale: str | None = None) -> str:
    """A date written out in the locale's long form ("December 4, 2026")."""
    return format_date(value, format="long", locale=locale_of(locale))
