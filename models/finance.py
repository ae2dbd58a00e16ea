"""Budget, cash on hand, monthly spend and fundraising goals: what runway and goals read.

Amounts are integers in minor units plus an ISO 4217 currency, like every amount in the
ledger. The finance services keep them in the reporting currency, because runway divides
cash by spend and goal progress adds up gifts' stored reporting amounts.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from pydantic import model_validator
from sqlalchemy import BigInteger, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from models.base import utcnow
from models.money import MoneyError, normalise_currency, parse_amount
from models.schemas import Input, IsoDate, Name, _computed


class FiscalBudget(SQLModel, table=True):
    """The approved spending budget of a fiscal year (the calendar year)."""

    __tablename__ = "fiscal_budget"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("fiscal_year >= 2000 AND fiscal_year <= 2200", name="fiscal_year_range"),
    )

    id: int | None = Field(default=None, primary_key=True)
    fiscal_year: int = Field(unique=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CashSnapshot(SQLModel, table=True):
    """Cash on hand as finance counted it on a day; the latest one is what runway uses."""

    __tablename__ = "cash_snapshot"
    __table_args__ = (CheckConstraint("amount_minor >= 0", name="amount_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    as_of: date = Field(unique=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MonthlySpend(SQLModel, table=True):
    """What the organisation spent in one calendar month."""

    __tablename__ = "monthly_spend"
    __table_args__ = (CheckConstraint("amount_minor >= 0", name="amount_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    #: The month's first day (the services normalise any day of the month to it).
    month: date = Field(unique=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class FundraisingGoal(SQLModel, table=True):
    """Raise amount_minor between starts_on and deadline (both included)."""

    __tablename__ = "fundraising_goal"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("deadline >= starts_on", name="dates_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    starts_on: date
    deadline: date
    created_at: datetime = Field(default_factory=utcnow)


# --- validated inputs ------------------------------------------------------------------------

class _MoneyInput(Input):
    amount: str
    currency: str
    #: Set from `amount` and `currency`; not part of the input.
    amount_minor: int = _computed(default=0)

    @model_validator(mode="after")
    def _amount(self):
        field = "currency"
        try:
            self.currency = normalise_currency(self.currency)
            field = "amount"
            self.amount_minor = self._parse(self.amount)
        except MoneyError as error:
            raise ValueError(f"{field}: {error}") from None
        return self

    def _parse(self, text: str) -> int:
        return parse_amount(text, self.currency)


class _MoneyOrZeroInput(_MoneyInput):
    """Cash and spend may be zero; parse_amount refuses zero, so "0" is read here."""

    def _parse(self, text: str) -> int:
        if isinstance(text, str) and re.fullmatch(r"0+(\.0+)?", text.strip()):
            return 0
        return parse_amount(text, self.currency)


class FiscalBudgetCreate(_MoneyInput):
    fiscal_year: int = Field(ge=2000, le=2200)


class CashSnapshotCreate(_MoneyOrZeroInput):
    as_of: IsoDate


class MonthlySpendCreate(_MoneyOrZeroInput):
    #: Any day of the month; stored as the month's first day.
    month: IsoDate


class FundraisingGoalCreate(_MoneyInput):
    name: Name
    starts_on: IsoDate
    deadline: IsoDate

    @model_validator(mode="after")
    def _ordered(self):
        if self.deadline < self.starts_on:
            raise ValueError("deadline must not be before the start date")
        return self
