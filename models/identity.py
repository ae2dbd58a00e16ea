"""Rosters of people at covered labs who are not donors, and reviewers' verdicts on
possible matches between records."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

VERDICTS = ("different", "same")


class RosterEntry(SQLModel, table=True):
    """Someone known to work at an organisation (from a leadership page, a filing, the
    press) who is not a donor: donors and gifts are matched against them like donors."""

    __tablename__ = "roster_entry"
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    title: str | None = Field(default=None, max_length=200)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    start_date: date
    #: Last day in the role (inclusive); None while it lasts.
    end_date: date | None = None
    senior_decision_maker: bool = Field(default=False)
    #: Where the entry comes from ("leadership page, 2026-11-02", a filing's reference).
    source: str = Field(max_length=500)
    #: Blocking keys of the name (policies.identity.block_keys), as on donors.
    name_key_a: str | None = Field(default=None, max_length=200, index=True)
    name_key_b: str | None = Field(default=None, max_length=200, index=True)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class IdentityVerdict(SQLModel, table=True):
    """A reviewer's answer about one pair of records: "different" people (the pair is never
    flagged again) or the "same" person (the roster entry's role was put on the donor)."""

    __tablename__ = "identity_verdict"
    __table_args__ = (CheckConstraint(in_list("verdict", VERDICTS), name="verdict"),)

    id: int | None = Field(default=None, primary_key=True)
    #: The pair, written one way only ("donor:3|donor:7", the smaller donor first;
    #: "donor:3|roster:5"): at most one verdict per pair.
    pair: str = Field(max_length=60, unique=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    other_donor_id: int | None = Field(default=None, foreign_key="donor.id", index=True)
    roster_entry_id: int | None = Field(default=None, foreign_key="roster_entry.id", index=True)
    verdict: str = Field(max_length=10)
    reason: str = Field(max_length=2000)
    decided_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    decided_at: datetime = Field(default_factory=utcnow)
