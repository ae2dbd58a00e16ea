"""Where the public-support percentage is heading: the current tax year and the next two,
from the gifts recorded so far plus the money expected (unpaid pledge instalments falling
due, payments of active monthly online donations), and what a proposed gift would change.

Expected money counts in the year it falls due, for the donor who will pay it (a monthly
donation through a donor-advised fund: its sponsor, as recorded gifts count). Only money in
the reporting currency is counted (no rate is stored for the rest yet); overdue instalments
are not counted. Nothing else is assumed: a year with no gifts yet is a year of the gifts
already promised, so later years usually look more concentrated than they will be.
Expected contributions carry gift ids of 0 or below (none is recorded yet)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from app.ledger.pledges import pledge_schedules
from app.ledger.public_support import contributions
from models import OnlineDonation, Pledge
from policies.public_support import (
    Contribution,
    PublicSupport,
    PublicSupportRules,
    percent_text,
)

YEARS_AHEAD = 2


@dataclass(frozen=True)
class Expected:
    donor_id: int
    day: date
    amount_minor: int
    source: str  # "pledge" | "monthly" | "proposed"
    source_id: int | None


@dataclass
class ForecastYear:
    year: int
    result: PublicSupport
    expected_minor: int
    #: The percentage without the proposed gift (a what-if); None when there is none.
    without_proposed: PublicSupport | None = None

    def below(self, threshold) -> bool:
        return self.result.percentage is not None and self.result.percentage < threshold


@dataclass
class SupportForecast:
    today: date
    years: list[ForecastYear]
    expected: list[Expected]
    left_out_minor: int
    warning_below: object

    @property
    def warning_years(self) -> list[int]:
        return [y.year for y in self.years if y.below(self.warning_below)]


def expected_money(session: Session, today: date, until: date, currency: str
                   ) -> tuple[list[Expected], int]:
    """Unpaid pledge instalments due from today to `until`, and monthly donations' payments
    after today; and the amount left out (another currency)."""
    expected: list[Expected] = []
    left_out = 0
    pledges = session.execute(select(Pledge).where(Pledge.state == "active")
                              .order_by(Pledge.id)).scalars().all()
    schedules = pledge_schedules(session, [p.id for p in pledges], today)
    for pledge in pledges:
        for item in schedules[pledge.id]:
            remaining = item.amount_minor - item.paid_minor
            if remaining <= 0 or item.due_on > until or item.state == "overdue":
                continue
            if pledge.currency != currency:
                left_out += remaining
                continue
            expected.append(Expected(pledge.donor_id, item.due_on, remaining, "pledge",
                                     pledge.id))
    donations = session.execute(
        select(OnlineDonation).where(OnlineDonation.frequency == "monthly",
                                     OnlineDonation.state == "active")
        .order_by(OnlineDonation.id)).scalars().all()
    for donation in donations:
        year, month = today.year, today.month
        while date(year, month, 1) <= until:
            last = calendar.monthrange(year, month)[1]
            day = date(year, month, min(donation.created_at.day, last))
            if today < day <= until:
                if donation.currency != currency:
                    left_out += donation.amount_minor
                else:
                    expected.append(Expected(donation.payer_donor_id, day,
                                             donation.amount_minor, "monthly", donation.id))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return expected, left_out


def _expected(expected: list[Expected], unlimited: dict) -> list[Contribution]:
    return [Contribution(gift_id=-n if e.source != "proposed" else 0,
                         contributor_id=e.donor_id, year=e.day.year,
                         amount_minor=e.amount_minor, unlimited=e.donor_id in unlimited)
            for n, e in enumerate(expected, start=1)]


def support_forecast(session: Session, today: date, rules: PublicSupportRules, currency: str,
                     proposed: Expected | None = None) -> SupportForecast:
    """The current year and the next two; with `proposed`, each also without it."""
    until = date(today.year + YEARS_AHEAD, 12, 31)
    expected, left_out = expected_money(session, today, until, currency)
    # Donors who have only promised money yet join their groups too (a subsidiary's pledge).
    promising = {e.donor_id for e in expected}
    if proposed is not None:
        promising.add(proposed.donor_id)
    years = []
    for year in range(today.year, today.year + YEARS_AHEAD + 1):
        # Each year's five years read on their own: the ledger sums each donor's gifts
        # over exactly those years.
        found = contributions(session, year, rules, promising)
        coming = [e for e in expected if e.day.year == year]
        base = found.compute(year, rules, _expected(expected, found.unlimited))
        item = ForecastYear(year, base, sum(e.amount_minor for e in coming))
        if proposed is not None:
            item.without_proposed = base
            item.result = found.compute(year, rules,
                                        _expected(expected + [proposed], found.unlimited))
        years.append(item)
    return SupportForecast(today, years, expected, left_out, rules.forecast_warning_below)


def forecast_data(forecast: SupportForecast, currency: str) -> dict:
    def pct(result):
        return None if result is None else result.percentage_text

    return {
        "today": forecast.today.isoformat(),
        "currency": currency,
        "warning_below": percent_text(forecast.warning_below),
        "warning_years": forecast.warning_years,
        "left_out_minor": forecast.left_out_minor,
        "years": [{
            "year": y.year,
            "percentage": pct(y.result),
            "meets_support_test": y.result.meets_support_test,
            "total_support_minor": y.result.total_support_minor,
            "public_support_minor": y.result.public_support_minor,
            "expected_minor": y.expected_minor,
            "without_proposed": pct(y.without_proposed),
        } for y in forecast.years],
        "expected": [{"donor_id": e.donor_id, "day": e.day.isoformat(),
                      "amount_minor": e.amount_minor, "source": e.source,
                      "source_id": e.source_id} for e in forecast.expected],
    }
