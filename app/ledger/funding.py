"""Window sums of accepted funding, read from daily totals and refunds.

A window ending on E covers the days E - (window_days - 1) .. E. A gift counts in it
if its date is in that range; each of its refunds dated on or before E reduces it.
Reads are bounded by the window length and the refunds inside it, never the ledger.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import Session

from models import FundingDay, Gift, Refund
from policies import FundingFacts, WindowTotals


def window_start(end: date, window_days: int) -> date:
    return end - timedelta(days=window_days - 1)


def add_funding(session: Session, day: date, total_minor: int, lab_minor: int, count: int) -> None:
    """Add (or with negative numbers remove) a gift's contribution to its day."""
    row = session.get(FundingDay, day)
    if row is None:
        row = FundingDay(day=day, total_minor=0, lab_minor=0, gift_count=0)
        session.add(row)
    row.total_minor += total_minor
    row.lab_minor += lab_minor
    row.gift_count += count


def count_gift(session: Session, gift: Gift) -> None:
    if gift.kind == "cash":
        add_funding(session, gift.received_on, gift.reporting_amount_minor, gift.lab_minor, 1)


def uncount_gift(session: Session, gift: Gift) -> None:
    if gift.kind == "cash":
        add_funding(session, gift.received_on, -gift.reporting_amount_minor, -gift.lab_minor, -1)


@dataclass(frozen=True)
class _RefundRow:
    gift_day: date
    refunded_on: date
    total: int
    lab: int


def _refunds(session: Session, first_day: date, last_day: date) -> list[_RefundRow]:
    rows = session.execute(
        select(
            Refund.gift_received_on,
            Refund.refunded_on,
            Refund.reporting_amount_minor,
            Gift.lab_minor,
            Gift.reporting_amount_minor,
        )
        .join(Gift, Gift.id == Refund.gift_id)
        .where(
            Refund.gift_received_on >= first_day,
            Refund.gift_received_on <= last_day,
            Refund.refunded_on <= last_day,
            Gift.status == "accepted",
            Gift.kind == "cash",
        )
    ).all()
    result = []
    for gift_day, refunded_on, amount, gift_lab, gift_total in rows:
        # The refund takes back the lab part pro rata, rounded down so the share
        # is never understated.
        lab = amount * gift_lab // gift_total if gift_total else 0
        result.append(_RefundRow(gift_day, refunded_on, amount, lab))
    return result


def window_totals(session: Session, ends: list[date], window_days: int) -> list[WindowTotals]:
    """Totals for each window ending on a date in `ends`, in the order given."""
    if not ends:
        return []
    first_day = window_start(min(ends), window_days)
    last_day = max(ends)
    days = session.execute(
        select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor)
        .where(FundingDay.day >= first_day, FundingDay.day <= last_day)
        .order_by(FundingDay.day)
    ).all()
    keys = [d for d, _, _ in days]
    total_prefix = [0]
    lab_prefix = [0]
    for _, total, lab in days:
        total_prefix.append(total_prefix[-1] + total)
        lab_prefix.append(lab_prefix[-1] + lab)
    refunds = _refunds(session, first_day, last_day)

    result = []
    for end in ends:
        start = window_start(end, window_days)
        lo = bisect.bisect_left(keys, start)
        hi = bisect.bisect_right(keys, end)
        total = total_prefix[hi] - total_prefix[lo]
        lab = lab_prefix[hi] - lab_prefix[lo]
        for r in refunds:
            if start <= r.gift_day <= end and r.refunded_on <= end:
                total -= r.total
                lab -= r.lab
        result.append(WindowTotals(end=end, total_minor=total, lab_minor=lab))
    return result


def later_decision_points(session: Session, day: date, window_days: int) -> list[date]:
    """Later dates with accepted gifts whose windows still contain `day`."""
    last = day + timedelta(days=window_days - 1)
    return list(
        session.execute(
            select(FundingDay.day)
            .where(FundingDay.day > day, FundingDay.day <= last, FundingDay.gift_count > 0)
            .order_by(FundingDay.day)
        ).scalars()
    )


def funding_facts(session: Session, day: date, window_days: int) -> FundingFacts:
    """The window ending on `day`, then every later decision point it affects."""
    ends = [day, *later_decision_points(session, day, window_days)]
    return FundingFacts(tuple(window_totals(session, ends, window_days)))
