"""Arithmetic of the lab-employee share: exact fractions, no floats."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

from policies.facts import AffiliationFact, GiftFacts, Party

SHARE_PLACES = Decimal("0.000001")


def share(lab_minor: int, total_minor: int) -> Fraction:
    """Lab-employee share of a window; an empty window has share 0."""
    if total_minor <= 0:
        return Fraction(0)
    return Fraction(lab_minor, total_minor)


def share_text(value: Fraction) -> str:
    """Decimal string truncated to six places: a share is never rounded up."""
    with localcontext(rounding=ROUND_DOWN):  # the division itself must not round up
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(SHARE_PLACES, rounding=ROUND_DOWN))


@lru_cache(maxsize=64)
def _cap_ratio(cap: Decimal) -> tuple[int, int]:
    """The cap as an exact p / q (q > 0), worked out once per cap: a decision checks every
    window it touches (a back-dated gift a dozen or more), and building Fractions per window
    was a measurable part of a gift's CPU."""
    exact = Fraction(cap)
    return exact.numerator, exact.denominator


def below_cap(lab_minor: int, total_minor: int, cap: Decimal) -> bool:
    """Strictly below the cap. An empty window holds no lab money, so it is below."""
    if total_minor <= 0:
        return lab_minor <= 0
    p, q = _cap_ratio(cap)
    return lab_minor * q < p * total_minor  # L / T < p / q, with T and q positive


def headroom(lab_minor: int, total_minor: int, cap: Decimal) -> int:
    """Largest whole x (minor units) with (L + x) / (T + x) < cap; 0 when there is none."""
    p, q = _cap_ratio(cap)
    if q > p:
        # x < (cT - L) / (1 - c) = (pT - qL) / (q - p), in integers: the largest such
        # whole x is ceil(that) - 1.
        above = p * total_minor - q * lab_minor
        return -(-above // (q - p)) - 1 if above > 0 else 0
    c = Fraction(cap)  # a cap of 100% or more: as before (no finite limit)
    limit = (c * total_minor - lab_minor) / (1 - c)  # x must be strictly below this
    if limit <= 0:
        return 0
    return math.ceil(limit) - 1


def affiliation_counts(affiliation: AffiliationFact, on: date, cooling_off_days: int) -> bool:
    """Active on the date, or ended less than the cooling-off period before it."""
    if affiliation.start_date > on:
        return False
    if affiliation.end_date is None or affiliation.end_date >= on:
        return True
    return on - affiliation.end_date < timedelta(days=cooling_off_days)


def lab_affiliations(party: Party, on: date, cooling_off_days: int) -> list[AffiliationFact]:
    """A person's affiliations to covered organisations that count on the date."""
    if party.type != "person":
        return []
    return [
        a for a in party.affiliations
        if a.covered and affiliation_counts(a, on, cooling_off_days)
    ]


def lab_employee_fraction(gift: GiftFacts, cooling_off_days: int) -> Fraction:
    """Share of the gift attributed to lab employees (0..1)."""
    parties = gift.attributions or ((gift.payer,) if gift.payer else ())
    return sum(
        (p.fraction for p in parties if lab_affiliations(p, gift.received_on, cooling_off_days)),
        Fraction(0),
    )


def lab_employee_minor(gift: GiftFacts, cooling_off_days: int) -> int:
    """Lab-employee part of the gift, rounded up so the share is never understated."""
    if gift.kind != "cash":
        return 0
    return math.ceil(gift.amount_minor * lab_employee_fraction(gift, cooling_off_days))


def percent_text(value: Fraction | Decimal, places: int = 1) -> str:
    """0.487 -> '48.7%', truncated so a share just under the cap never reads as the cap."""
    value = Fraction(value)
    with localcontext(rounding=ROUND_DOWN):  # the division itself must not round up
        exact = Decimal(value.numerator * 100) / Decimal(value.denominator)
    text = str(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN))
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"
