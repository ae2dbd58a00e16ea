"""Pledges (promises to give) with dated instalments. Payments are gifts with pledge_id."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow


class Pledge(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(in_list("state", ("active", "fulfilled", "cancelled")), name="state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    pledged_on: date
    description: str | None = Field(default=None, max_length=500)
    state: str = Field(default="active", max_length=10)
    created_at: datetime = Field(default_factory=utcnow)


class PledgeInstalment(SQLModel, table=True):
    __tablename__ = "pledge_instalment"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    due_on: date
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
