"""Organisations, donors and their dated affiliations."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Column, Index, false, text, true
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

DONOR_TYPES = ("person", "organization")
DONOR_CATEGORIES = ("individual", "foundation", "company", "daf_sponsor", "other")
AFFILIATION_KINDS = ("employee", "contractor", "board_member", "advisor", "founder")


class Organization(SQLModel, table=True):
    __table_args__ = (CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    #: True for a frontier AI lab. Its affiliates (children) are covered through parent_id.
    covered_lab: bool = Field(default=False)
    #: Other names the organisation goes by ("DeepMind" for "Google DeepMind").
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    #: Parent organisation: a subsidiary or the lab's foundation points at the lab.
    parent_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Donor(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(in_list("type", DONOR_TYPES), name="type"),
        CheckConstraint(in_list("category", DONOR_CATEGORIES), name="category"),
        # The funding mix finds the organisation donors, few among many people.
        Index("ix_donor_category", "category"),
        # The possible-match lookup's keys, for lab-side records only (possibly_covered): a
        # common name's hundreds of namesakes with no tie to a lab are not in them, so a
        # lookup steps through the few that can match (docs/performance.md, issue 11).
        *(Index(f"ix_donor_{key}_lab_side", key, sqlite_where=text("possibly_covered = 1"),
                postgresql_where=text("possibly_covered"))
          for key in ("name_key_a", "name_key_b", "email_key", "phone_key")),
    )

    id: int | None = Field(default=None, primary_key=True)
    type: str = Field(max_length=20)
    name: str = Field(max_length=200, index=True)
    email: str | None = Field(default=None, max_length=320, index=True)
    #: For an organisation donor: the organisation it is, so a lab's own money is recognised.
    organization_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    category: str = Field(default="individual", max_length=20)
    #: Hidden from public listings; always fully known internally.
    anonymous: bool = Field(default=False)
    #: The donor agreed to be named on the public funding page (app.ledger.funding_report).
    #: Private unless they said yes; `anonymous` still hides them.
    public_name_consent: bool = Field(default=False,
                                      sa_column_kwargs={"server_default": false()})
    created_at: datetime = Field(default_factory=utcnow)
    #: Where known; compared when matching identities (policies.identity).
    phone: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=500)
    #: Blocking keys (policies.identity), kept in step with name, email and phone by the
    #: ledger (app.ledger.identity.donor_keys): a gift's possible matches are the few
    #: records sharing one of them, found by index, never by reading every donor.
    #: email_key is also how a new person donor whose address is already on file is
    #: refused (app.ledger.parties.same_email_donors): one indexed lookup.
    email_key: str | None = Field(default=None, max_length=320, index=True)
    name_key_a: str | None = Field(default=None, max_length=200, index=True)
    name_key_b: str | None = Field(default=None, max_length=200, index=True)
    phone_key: str | None = Field(default=None, max_length=10, index=True)
    #: The record has an affiliation to a covered lab or to an organisation with a parent
    #: (which may be a covered lab's affiliate): the only person records the possible-match
    #: lookup can find (app.ledger.identity). Derived from affiliation and organization, kept
    #: by every write that can change it (identity.refresh_possibly_covered), and recomputed
    #: and compared by verification (app.ledger.derived_verify): set by hand, it is reported.
    possibly_covered: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    #: Contact preferences: how the donor agreed to be contacted. do_not_contact overrides
    #: the rest (no appeals, no calls; receipts the law requires still go out).
    do_not_contact: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    email_ok: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    post_ok: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    phone_ok: bool = Field(default=True, sa_column_kwargs={"server_default": true()})


class DonorMerge(SQLModel, table=True):
    """A donor record merged into another (app.ledger.merge): the duplicate's row stays, with
    nothing left pointing at it, and this row says where it went, so its id is still found
    and leads to the survivor. A table of its own rather than a column on donor: SQLite
    cannot add or drop a foreign-key column on a table others reference without copying it."""

    __tablename__ = "donor_merge"
    __table_args__ = (CheckConstraint("survivor_id <> duplicate_id", name="not_into_itself"),)

    #: The merged record. Merged once: a record merged into a merged one is re-pointed.
    duplicate_id: int = Field(foreign_key="donor.id", primary_key=True,
                              sa_column_kwargs={"autoincrement": False})
    #: The record it was merged into, still a donor of its own.
    survivor_id: int = Field(foreign_key="donor.id", index=True)
    merged_at: datetime = Field(default_factory=utcnow)


class Affiliation(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(in_list("kind", AFFILIATION_KINDS), name="kind"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    kind: str = Field(default="employee", max_length=20)
    title: str | None = Field(default=None, max_length=200)
    senior_decision_maker: bool = Field(default=False)
    start_date: date
    #: Last day of the affiliation (inclusive); None while it lasts.
    end_date: date | None = None
    #: The title a reviewer confirmed is not a senior decision-maker's (rule
    #: possible_senior_decision_maker asks once): set to the title as it stood, so a new
    #: title is asked about again.
    title_cleared: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
