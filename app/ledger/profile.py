"""What a donor's page sums up: giving over time, from the ledger's accepted gifts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, func
from sqlmodel import Session

from app.ledger.giving import NetCash
from models import Gift


@dataclass(frozen=True)
class GivingSummary:
    """Accepted cash gifts net of their refunds, in the reporting currency (minor units).
    A year is the calendar year the gift was received in."""

    lifetime_minor: int = 0
    this_year_minor: int = 0
    last_year_minor: int = 0
    #: Gifts counted in lifetime_minor.
    gift_count: int = 0
    first_gift_on: date | None = None
    last_gift_on: date | None = None
    #: The largest single gift, net of its refunds.
    largest_minor: int = 0


def giving_summary(session: Session, donor_id: int, currency: str, today: date) -> GivingSummary:
    """One aggregate query over the donor's gifts (ix_gift_donor_id)."""
    cash = NetCash(currency, Gift.donor_id == donor_id)
    net = cash.net
    this_year, last_year = date(today.year, 1, 1), date(today.year - 1, 1, 1)
    row = session.execute(
        cash.select(
            func.coalesce(func.sum(net), 0),
            func.coalesce(func.sum(case((Gift.received_on >= this_year, net), else_=0)), 0),
            func.coalesce(func.sum(case((and_(Gift.received_on >= last_year,
                                              Gift.received_on < this_year), net), else_=0)), 0),
            func.count(),
            func.min(Gift.received_on),
            func.max(Gift.received_on),
            func.coalesce(func.max(net), 0),
        )
    ).one()
    lifetime, this, last, count, first, latest, largest = row
    return GivingSummary(int(lifetime), int(this), int(last), int(count), first, latest,
                         int(largest))
