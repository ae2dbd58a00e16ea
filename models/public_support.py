"""What the public-support test (policies.public_support) needs beyond gifts and donors:
donors treated as one contributor, donors whose gifts are not limited, and gifts a reviewer
marked as unusual grants. Every row is written and removed through
app.ledger.public_support, with an audit entry that seals it (app.ledger.row_hashes). The
reasons people type stay on these rows, never in the audit entries (personal data in a
chain that is kept forever): a removed or replaced fact leaves a support_fact_removal row
with what it said and why it went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

from models.base import in_list, utcnow

SUPPORT_RELATIONS = ("spouse", "family", "controlled_entity")
SUPPORT_CLASSES = ("governmental_unit", "public_charity")
SUPPORT_FACTS = ("support_link", "support_class", "unusual_grant")


class SupportLink(SQLModel, table=True):
    """Two donors treated as one contributor for the 2% limit (a person and their spouse;
    a company and an entity it controls that has no organisation link to say so)."""

    __tablename__ = "support_link"
    __table_args__ = (
        # One row per pair, written one way: the smaller id first.
        CheckConstraint("donor_id < other_donor_id", name="ordered_pair"),
        CheckConstraint(in_list("relation", SUPPORT_RELATIONS), name="relation"),
        UniqueConstraint("donor_id", "other_donor_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    other_donor_id: int = Field(foreign_key="donor.id", index=True)
    relation: str = Field(max_length=20)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class SupportClass(SQLModel, table=True):
    """A donor that is a governmental unit or a publicly supported charity: its gifts are
    not limited to 2% of total support (which classes are unlimited: the rules file)."""

    __tablename__ = "support_class"
    __table_args__ = (CheckConstraint(in_list("support_class", SUPPORT_CLASSES), name="class"),)

    donor_id: int = Field(foreign_key="donor.id", primary_key=True,
                          sa_column_kwargs={"autoincrement": False})
    support_class: str = Field(max_length=20)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    set_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    set_at: datetime = Field(default_factory=utcnow)


class UnusualGrant(SQLModel, table=True):
    """A gift a reviewer marked as an unusual grant: left out of the public-support
    computation (numerator and denominator alike) and listed apart."""

    __tablename__ = "unusual_grant"

    gift_id: int = Field(foreign_key="gift.id", primary_key=True,
                         sa_column_kwargs={"autoincrement": False})
    reason: str = Field(sa_column=Column(Text, nullable=False))
    marked_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    marked_at: datetime = Field(default_factory=utcnow)


class SupportFactRemoval(SQLModel, table=True):
    """A public-support fact removed, or replaced by another (a donor's class changed), or
    dropped by a merge of donor records: what it said, the reason it was recorded with,
    and why it went. Written once, never changed; the audit entry names it by id."""

    __tablename__ = "support_fact_removal"
    __table_args__ = (CheckConstraint(in_list("fact", SUPPORT_FACTS), name="fact"),)

    id: int | None = Field(default=None, primary_key=True)
    #: Which table the fact was a row of.
    fact: str = Field(max_length=20)
    #: That row's key: the link's id, the donor's id (a class), the gift's id (a grant).
    row_key: int = Field(index=True)
    #: The donors of a link (smaller id first), or the class's donor; None for a grant.
    donor_id: int | None = Field(default=None, foreign_key="donor.id")
    other_donor_id: int | None = Field(default=None, foreign_key="donor.id")
    #: The link's relation or the donor's class; None for a grant.
    was: str | None = Field(default=None, max_length=20)
    #: The reason the fact was recorded with.
    was_because: str = Field(sa_column=Column(Text, nullable=False))
    #: Why it was removed or replaced.
    reason: str = Field(sa_column=Column(Text, nullable=False))
    removed_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    removed_at: datetime = Field(default_factory=utcnow)


# --- inputs (the JSON API's bodies; shape only, the ledger checks the rest) ---------------

from typing import Annotated, Literal  # noqa: E402 - the inputs follow the tables

from pydantic import Field as InputField  # noqa: E402

from models.schemas import Input  # noqa: E402

Reason = Annotated[str, InputField(min_length=1, max_length=2000)]


class SupportLinkCreate(Input):
    donor_id: int
    other_donor_id: int
    relation: Literal[SUPPORT_RELATIONS]  # type: ignore[valid-type]
    reason: Reason


class SupportClassCreate(Input):
    donor_id: int
    support_class: Literal[SUPPORT_CLASSES]  # type: ignore[valid-type]
    reason: Reason


class UnusualGrantCreate(Input):
    gift_id: int
    reason: Reason


class SupportReason(Input):
    """The body of a removal: why."""

    reason: Reason
