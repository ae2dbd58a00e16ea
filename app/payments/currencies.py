"""Currencies offered for online giving: preset amounts, bounds, and preview rates.

Amounts here are in major units as decimal strings ("25", "3000" for JPY) and are
turned into minor units with models.money, so zero-decimal currencies need no
special case.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from models.money import MoneyError, normalise_currency, parse_amount, parse_rate


@dataclass(frozen=True)
class GivingCurrency:
    code: str
    symbol: str
    presets: tuple[str, ...]
    #: Smallest and largest online gift (larger gifts are welcome by bank transfer).
    minimum: str
    maximum: str

    def minor(self, text: str) -> int:
        return parse_amount(text, self.code)

    @property
    def minimum_minor(self) -> int:
        return self.minor(self.minimum)

    @property
    def maximum_minor(self) -> int:
        return self.minor(self.maximum)

    def label(self, amount: str) -> str:
        return f"{self.symbol}{Decimal(amount):,}"


#: Known currencies. Bounds sit above Stripe's minimum charge and below what we take online.
KNOWN: dict[str, GivingCurrency] = {
    "USD": GivingCurrency("USD", "$", ("25", "50", "100", "250", "500"), "1", "25000"),
    "EUR": GivingCurrency("EUR", "€", ("25", "50", "100", "250", "500"), "1", "25000"),
    "GBP": GivingCurrency("GBP", "£", ("25", "50", "100", "250", "500"), "1", "20000"),
    "JPY": GivingCurrency("JPY", "¥", ("3000", "5000", "10000", "30000", "50000"), "100",
                          "3000000"),
}

#: Indicative rates for a USD-reporting organisation, used only when no rates are configured.
DEFAULT_PREVIEW_RATES_USD = {"EUR": "1.08", "GBP": "1.27", "JPY": "0.0067"}


def preview_rates(config: dict, reporting_currency: str) -> dict[str, str]:
    """DONATION_PREVIEW_RATES as {code: rate}: "EUR:1.08,GBP:1.27". None: the defaults
    for a USD-reporting organisation; "" (or any other reporting currency): none."""
    text = config.get("DONATION_PREVIEW_RATES")
    if text is None:
        return dict(DEFAULT_PREVIEW_RATES_USD) if reporting_currency == "USD" else {}
    rates: dict[str, str] = {}
    for item in str(text).split(","):
        if not item.strip():
            continue
        code, _, rate = item.partition(":")
        try:
            code = normalise_currency(code.strip())
            parse_rate(rate.strip())
        except MoneyError as error:
            raise ValueError(f"DONATION_PREVIEW_RATES: {item.strip()!r}: {error}") from None
        rates[code] = rate.strip()
    return rates


def offered(config: dict, reporting_currency: str) -> list[GivingCurrency]:
    """The currencies the donate page offers: configured, known, and screenable before payment
    (the reporting currency itself, or one with a preview rate)."""
    rates = preview_rates(config, reporting_currency)
    codes = [c.strip().upper() for c in str(config.get("DONATION_CURRENCIES") or "").split(",")]
    return [KNOWN[c] for c in codes
            if c in KNOWN and (c == reporting_currency or c in rates)]
