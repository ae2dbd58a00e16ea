"""Daily funding totals and the ledger lock row.

FundingDay keeps accepted cash funding per gift date, in the reporting currency, so a
window sum reads at most one row per day instead of scanning every gift. It also keeps,
per gift date, what those gifts have had refunded so far (whenever the refund was made),
so a window ending today (when no refund is dated later) needs no refund rows at all.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class FundingDay(SQLModel, table=True):
    __tablename__ = "funding_day"
    day: date = Field(primary_key=True)
    #: Gross accepted cash funding dated this day (refunds are applied per window).
    total_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    #: The lab-employee-attributed part of total_minor.
    lab_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    #: Accepted cash gifts dated this day: a date with gifts is a decision point.
    gift_count: int = Field(default=0)
    #: Refunds (reporting currency) of the counted gifts dated this day, whatever the date
    #: of the refund. A window ending on E adds back the refunds made after E.
    refunded_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False,
                                                            default=0, server_default="0"))
    #: The lab part of those refunds: per gift, its refunded sum x lab / total, rounded down
    #: (app.ledger.windows.refunded_lab), summed over the day's gifts.
    refunded_lab_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False,
                                                                default=0, server_default="0"))


class FundingMixDay(SQLModel, table=True):
    """Accepted cash funding credited to organisation donors, per gift date and category.

    For the dashboard's funding mix: per day, the sum over the counted gifts of reporting
    amount x the fraction (in millionths) attributed to organisation donors of each
    category, kept exact (divided by a million only when shown). Kept in step with
    funding_day by the ledger (app.ledger.funding: add_to_funding, remove_from_funding; a donor's
    category change moves its credits). Refunds are not in it: the mix reads them apart.
    The sum is a 64-bit integer: a day's credits to one category must stay below
    9.2 x 10^12 minor units (92 billion dollars).
    """

    __tablename__ = "funding_mix_day"
    day: date = Field(primary_key=True)
    category: str = Field(primary_key=True, max_length=20)
    credited_ppm: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class LedgerLock(SQLModel, table=True):
    """A single row (id=1) locked FOR UPDATE by every writer of money or audit entries."""

    __tablename__ = "ledger_lock"
    id: int = Field(primary_key=True)
