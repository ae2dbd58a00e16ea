"""Relationships between people: household, spouse or partner, family, colleague.

A relationship is a dated link between two donor records, the same both ways: it is
stored once, the smaller donor id first. It is one of the policy's facts (rule
household_of_senior_decision_maker, when the policy enables it): the money of a senior
decision-maker's spouse or household can be theirs by another name.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

RELATIONSHIP_KINDS = ("household", "spouse_partner", "family", "colleague")
#: How each kind reads in a sentence ("Ann is the spouse or partner of Ben").
RELATIONSHIP_WORDS = {
    "household": "a household member",
    "spouse_partner": "the spouse or partner",
    "family": "family",
    "colleague": "a colleague",
}
#: The kinds that make a household (GET /households/<id>, the household page).
HOUSEHOLD_KINDS = ("household", "spouse_partner")


class Relationship(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(in_list("kind", RELATIONSHIP_KINDS), name="kind"),
        # Stored once, smaller id first: the link is the same both ways.
        CheckConstraint("donor_id < related_donor_id", name="ordered_pair"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
        Index("ix_relationship_donor_id", "donor_id"),
        Index("ix_relationship_related_donor_id", "related_donor_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id")
    related_donor_id: int = Field(foreign_key="donor.id")
    kind: str = Field(max_length=20)
    #: First day the relationship holds.
    start_date: date
    #: Last day it held (inclusive); None while it lasts. Ending one waits for a second
    #: person when it could let money through (app.ledger.relationships).
    end_date: date | None = None
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)

    def other(self, donor_id: int) -> int:
        return self.related_donor_id if donor_id == self.donor_id else self.donor_id

    def holds_on(self, day: date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)
