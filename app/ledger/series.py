"""The lab-employee share day by day, its breach periods, and the funding mix by month.

The daily windows are app.ledger.windows.daily_windows(); this module turns them into
shares and breach periods, and sums the funding mix by month.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select
from sqlmodel import Session

from app.db.lookups import one_of
from app.ledger.funding import ORGANISATION_CATEGORIES
from app.ledger.summary import breach_start
from app.ledger.windows import daily_windows, refunded_gifts, refunded_lab
from models import Attribution, Donor, FundingDay, FundingMixDay, Refund
from policies import Policy, below_cap, share

PPM = 1_000_000
#: Ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits.
CHUNK = 5000

#: Funding-mix column of each donor category; a lab employee's part is its own column
#: and whatever is attributed to people (category "individual") is "individuals".
MIX_COLUMN = {"foundation": "foundations", "company": "other", "daf_sponsor": "other",
              "other": "other"}

#: The longest range the dashboard and the series API draw, in days.
MAX_SERIES_DAYS = 10 * 366
DEFAULT_DAYS = 365
#: Dates a range may name: far enough from the calendar's ends for window arithmetic.
EARLIEST, LATEST = date(1900, 1, 1), date(9000, 12, 31)


class RangeError(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors


def series_range(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The range asked for, or the last DEFAULT_DAYS days up to `end` (default today)."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise RangeError({name: [f"must lie between {EARLIEST} and {LATEST}"]})
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise RangeError({"from": ["must not be after `to`"]})
    if (end - start).days + 1 > MAX_SERIES_DAYS:
        raise RangeError({"from": [f"the range may span at most {MAX_SERIES_DAYS} days"]})
    return start, end


@dataclass(frozen=True)
class DayShare:
    day: date
    total_minor: int
    lab_minor: int
    share: Fraction
    #: At or above the cap: the share must stay strictly below it.
    in_breach: bool
    at_warning: bool


@dataclass(frozen=True)
class BreachPeriod:
    """An unbroken run of days with the share at or above the cap."""

    #: The run's first day; earlier than the series' first day when the run began before it.
    first_day: date
    last_day: date
    #: The run lasts to the series' last day (still in breach then).
    ongoing: bool

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


@dataclass(frozen=True)
class ShareSeries:
    start: date
    end: date
    window_days: int
    cap: Decimal
    warning: Decimal
    days: list[DayShare]
    breaches: list[BreachPeriod]

    @property
    def peak(self) -> DayShare | None:
        return max(self.days, key=lambda d: (d.share, d.day), default=None)


def share_series(session: Session, start: date, end: date, policy: Policy) -> ShareSeries:
    warning = Fraction(policy.warning)
    days = [
        DayShare(
            day=w.end, total_minor=w.total_minor, lab_minor=w.lab_minor,
            share=share(w.lab_minor, w.total_minor),
            in_breach=not below_cap(w.lab_minor, w.total_minor, policy.cap),
            at_warning=share(w.lab_minor, w.total_minor) >= warning,
        )
        for w in daily_windows(session, start, end, policy.window_days)
    ]
    return ShareSeries(start, end, policy.window_days, policy.cap, policy.warning, days,
                       breach_periods(session, days, policy))


def breach_periods(session: Session, days: list[DayShare], policy: Policy) -> list[BreachPeriod]:
    periods: list[BreachPeriod] = []
    run_start: date | None = None
    for i, point in enumerate(days):
        if point.in_breach and run_start is None:
            run_start = point.day
            if i == 0:
                # The run may have begun before the series: date it from its real start.
                run_start = breach_start(session, point.day, policy)
        if run_start is not None and (not point.in_breach or i == len(days) - 1):
            last = point.day if point.in_breach else days[i - 1].day
            periods.append(BreachPeriod(run_start, last, ongoing=point.in_breach))
            run_start = None
    return periods


# --- funding mix --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MonthMix:
    """Accepted cash funding dated in one month (or the part of it in the range), net of
    refunds made by the range's end, split by who it is attributed to."""

    month: date  # the month's first day
    first_day: date
    last_day: date
    total_minor: int
    lab_minor: int
    individuals_minor: int
    foundations_minor: int
    other_minor: int

    @property
    def label(self) -> str:
        return self.month.strftime("%Y-%m")

    @property
    def partial(self) -> bool:
        last = calendar.monthrange(self.month.year, self.month.month)[1]
        return self.first_day.day != 1 or self.last_day.day != last


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months_between(start: date, end: date) -> list[date]:
    """First days of the months from start's to end's, both included."""
    months = []
    current = month_start(start)
    while current <= end:
        months.append(current)
        current = month_end(current) + timedelta(days=1)
    return months


def funding_mix(session: Session, start: date, end: date) -> list[MonthMix]:
    """Funding in each calendar month from start's (counted from its first day) to end's
    (counted up to end), by attribution: lab employees (gift.lab_minor, the part the
    policy recorded as lab-employee money), foundations and other organisations (their
    attributed fractions, in exact millionths, rounded down), and individuals (the rest:
    money attributed to people who are not lab employees)."""
    if end < start:
        return []
    start = month_start(start)  # whole months: a chart of months starts on a 1st
    months = months_between(start, end)
    index = {m: i for i, m in enumerate(months)}
    totals = [0] * len(months)
    labs = [0] * len(months)
    parts_ppm: list[dict[str, int]] = [{"foundations": 0, "other": 0} for _ in months]

    for day, day_total, day_lab in session.execute(
        select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor)
        .where(FundingDay.day >= start, FundingDay.day <= end)
    ).all():
        i = index[month_start(day)]
        totals[i] += day_total
        labs[i] += day_lab
    refunded: dict[int, tuple[date, int]] = {}  # gift id -> (gift date, refunded by `end`)
    for gift in refunded_gifts(session, start, end):
        i = index[month_start(gift.day)]
        back = sum(amount for _, amount in gift.refunds)
        totals[i] -= back
        labs[i] -= refunded_lab(back, gift.lab_minor, gift.total_minor)
        refunded[gift.gift_id] = (gift.day, back)

    # What the counted gifts credit to organisations, kept per day and category by the
    # ledger (funding_mix_day): a few rows a day, however many gifts.
    for day, category, credited_ppm in session.execute(
        select(FundingMixDay.day, FundingMixDay.category, FundingMixDay.credited_ppm)
        .where(FundingMixDay.day >= start, FundingMixDay.day <= end)
    ).all():
        parts_ppm[index[month_start(day)]][MIX_COLUMN[category]] += credited_ppm
    if refunded:
        # The refunds taken off above, taken back from the organisations they credited:
        # the refunds by their gift-date index, each gift's shares by the gift_id index,
        # then the categories of the donors those shares name. (Joined to the donors in
        # one statement, SQLite's planner started from the organisations' index instead and
        # read every share of every organisation.)
        shares = session.connection().execute(
            select(Attribution.id, Attribution.gift_id, Attribution.donor_id,
                   Attribution.fraction_ppm).distinct()
            .select_from(Refund)
            .join(Attribution, Attribution.gift_id == Refund.gift_id)
            .where(Refund.gift_received_on >= start, Refund.gift_received_on <= end,
                   Refund.refunded_on <= end)
        ).all()
        categories = _categories(session, {donor_id for _id, _g, donor_id, _p in shares})
        for _id, gift_id, donor_id, ppm in shares:
            category = categories.get(donor_id)
            if gift_id in refunded and category in ORGANISATION_CATEGORIES:
                day, amount = refunded[gift_id]
                parts_ppm[index[month_start(day)]][MIX_COLUMN[category]] -= amount * ppm

    result = []
    for i, month in enumerate(months):
        foundations = parts_ppm[i]["foundations"] // PPM
        other = parts_ppm[i]["other"] // PPM
        result.append(MonthMix(
            month=month,
            first_day=max(month, start),
            last_day=min(month_end(month), end),
            total_minor=totals[i],
            lab_minor=labs[i],
            individuals_minor=totals[i] - labs[i] - foundations - other,
            foundations_minor=foundations,
            other_minor=other,
        ))
    return result


def _categories(session: Session, donor_ids: set[int]) -> dict[int, str | None]:
    ids = sorted(donor_ids)
    found: dict[int, str | None] = {}
    for i in range(0, len(ids), CHUNK):
        found.update(session.execute(select(Donor.id, Donor.category).where(
            one_of(session, Donor.id, ids[i:i + CHUNK]))).all())
    return found
