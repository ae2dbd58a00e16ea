"""Donor segments (saved searches) and simple donor tags.

A segment keeps its filter, never a list of donors: it is evaluated afresh each time it is
used (the donors list, a CSV export, letters, reports), so a donor who gives next month
joins it without anyone touching it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import utcnow

#: A tag: lower-case words, digits and hyphens ("major-donor", "board-2026").
TAG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"


class Segment(SQLModel, table=True):
    __tablename__ = "donor_segment"
    __table_args__ = (UniqueConstraint("name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=500)
    #: The filter as app.ledger.segments.SegmentCriteria dumps it (JSON: dates as text,
    #: amounts as typed in the reporting currency's major units).
    criteria: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DonorTag(SQLModel, table=True):
    """A word staff put on a donor ("major-donor", "gala-2026") to find them again."""

    __tablename__ = "donor_tag"
    __table_args__ = (
        UniqueConstraint("donor_id", "tag"),
        CheckConstraint("length(tag) BETWEEN 1 AND 40", name="tag_length"),
        # Segments filter by tag.
        Index("ix_donor_tag_tag_donor", "tag", "donor_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id")
    tag: str = Field(max_length=40)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)



