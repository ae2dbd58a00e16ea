"""Campaigns, appeals and funds: what a gift was raised for and where its money goes.

A campaign is a fundraising push with a goal and dates ("Year-end 2026"); an appeal is one
ask that brought gifts in (a letter, an e-mail, an event), usually inside a campaign; a fund
is where the money is to be spent: unrestricted (general operations) or restricted to a
purpose the donor set, which the organisation must honour and report apart.

A gift's designation (GiftDesignation) is written with the gift, through the one door, and
sealed with it in the audit chain. It is a table of its own, not columns on gift: the gift
row's seal covers every gift column, and new columns would change the seal of every gift
recorded before them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

#: How an appeal reached people.
APPEAL_CHANNELS = ("mail", "email", "event", "phone", "online", "social", "other")
#: A code is what a link or an import names: lower-case letters, digits and dashes.
CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,59}$"


class Campaign(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("goal_minor IS NULL OR goal_minor > 0", name="goal_positive"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="dates_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: What the donate link names (/donate?campaign=year-end-2026) and imports use.
    code: str = Field(max_length=60, unique=True)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, sa_column=Column(Text))
    #: The goal in minor units of `currency` (the reporting currency when it was set).
    goal_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str = Field(max_length=3)
    starts_on: date
    #: The last day of the campaign; None: open-ended.
    ends_on: date | None = None
    #: False once staff close it: the donate link no longer takes it.
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class Appeal(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint(in_list("channel", APPEAL_CHANNELS), name="channel"),
        CheckConstraint("goal_minor IS NULL OR goal_minor > 0", name="goal_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)
    name: str = Field(max_length=200)
    #: The campaign the ask belongs to; a gift naming the appeal counts for it too.
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    channel: str = Field(default="other", max_length=20)
    #: When the ask went out.
    sent_on: date | None = None
    goal_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str = Field(max_length=3)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class Fund(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("goal_minor IS NULL OR goal_minor > 0", name="goal_positive"),
        # Restricted money is held to the donor's purpose: the purpose must be written down.
        CheckConstraint("NOT restricted OR purpose IS NOT NULL", name="restricted_purpose"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)
    name: str = Field(max_length=200)
    #: True: the money may be spent only on `purpose` (reported apart).
    restricted: bool = Field(default=False)
    purpose: str | None = Field(default=None, max_length=1000)
    goal_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str = Field(max_length=3)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class GiftDesignation(SQLModel, table=True):
    """The campaign, appeal and fund a gift carries. At most one row per gift, written with
    the gift; a gift with none has no row."""

    __tablename__ = "gift_designation"
    __table_args__ = (
        CheckConstraint("campaign_id IS NOT NULL OR appeal_id IS NOT NULL OR fund_id IS NOT NULL",
                        name="names_something"),
        # Reports group by campaign and fund; the gift list filters by them.
        Index("ix_gift_designation_campaign_gift", "campaign_id", "gift_id"),
        Index("ix_gift_designation_fund_gift", "fund_id", "gift_id"),
        Index("ix_gift_designation_appeal_gift", "appeal_id", "gift_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    gift_id: int = Field(foreign_key="gift.id", unique=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    appeal_id: int | None = Field(default=None, foreign_key="appeal.id")
    fund_id: int | None = Field(default=None, foreign_key="fund.id")
