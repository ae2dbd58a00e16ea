"""In-kind support from organisations (model access, API credits, compute): disclosed, not funding."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

IN_KIND_PURPOSES = ("evaluation", "research", "other")


class InKindArrangement(SQLModel, table=True):
    __tablename__ = "in_kind_arrangement"
    __table_args__ = (
        CheckConstraint(in_list("purpose", IN_KIND_PURPOSES), name="purpose"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
        CheckConstraint(
            "estimated_value_minor IS NULL OR estimated_value_minor >= 0", name="value_not_negative"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    #: What is provided, e.g. "pre-release API access to frontier models".
    description: str = Field(max_length=1000)
    purpose: str = Field(max_length=20)
    start_date: date
    end_date: date | None = None
    estimated_value_minor: int | None = Field(default=None, sa_column=Column(BigInteger))
    currency: str | None = Field(default=None, max_length=3)
    created_at: datetime = Field(default_factory=utcnow)
