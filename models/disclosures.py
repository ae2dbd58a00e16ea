"""Published conflict-of-interest disclosures and the acknowledgements sent to donors.

Both are frozen records: a published disclosure keeps the exact JSON it was published
with (later ledger changes never alter it), and an acknowledgement keeps the letter it
sent, each with the SHA-256 of that canonical JSON so anyone can check it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

ACKNOWLEDGEMENT_KINDS = ("gift", "annual")
#: How an acknowledgement went out: e-mailed from the app, or posted (recorded by staff).
ACKNOWLEDGEMENT_CHANNELS = ("email", "post")


class PublishedDisclosure(SQLModel, table=True):
    __tablename__ = "published_disclosure"
    __table_args__ = (
        CheckConstraint("period_end >= period_start", name="period_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period_start: date
    period_end: date
    #: The disclosure as canonical JSON (sorted keys, no spaces, UTF-8): served verbatim.
    content: str = Field(sa_column=Column(Text, nullable=False))
    #: SHA-256 (hex) of `content` encoded as UTF-8.
    content_hash: str = Field(max_length=64)
    #: Hash of the newest audit entry when the figures were computed: the ledger state
    #: the disclosure describes.
    audit_head: str = Field(max_length=64)
    policy_version: str = Field(max_length=50)
    published_at: datetime = Field(default_factory=utcnow)
    published_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class PublishedFundingReport(SQLModel, table=True):
    """A published public funding page (app.ledger.funding_report): funding by category per
    year, frozen as canonical JSON with its SHA-256, like a published disclosure."""

    __tablename__ = "published_funding_report"
    __table_args__ = (
        CheckConstraint("last_year >= first_year", name="years_ordered"),
    )

    id: int | None = Field(default=None, primary_key=True)
    first_year: int
    last_year: int
    #: The day the figures were computed (refunds up to it are counted).
    as_of: date
    #: The report as canonical JSON (sorted keys, no spaces, UTF-8): served verbatim.
    content: str = Field(sa_column=Column(Text, nullable=False))
    #: SHA-256 (hex) of `content` encoded as UTF-8.
    content_hash: str = Field(max_length=64)
    #: Hash of the newest audit entry when the figures were computed.
    audit_head: str = Field(max_length=64)
    published_at: datetime = Field(default_factory=utcnow)
    published_by_id: int | None = Field(default=None, foreign_key="staff_user.id")


class Acknowledgement(SQLModel, table=True):
    """A written acknowledgement sent to a donor: one gift, or a donor's year."""

    __table_args__ = (
        CheckConstraint(in_list("kind", ACKNOWLEDGEMENT_KINDS), name="kind"),
        CheckConstraint(in_list("channel", ACKNOWLEDGEMENT_CHANNELS), name="channel"),
        CheckConstraint(
            "(kind = 'gift' AND gift_id IS NOT NULL) OR (kind = 'annual' AND year IS NOT NULL)",
            name="subject",
        ),
        CheckConstraint(
            "goods_value_minor IS NULL OR goods_value_minor >= 0", name="goods_value_not_negative"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    gift_id: int | None = Field(default=None, foreign_key="gift.id", index=True)
    #: Calendar year of an annual giving statement.
    year: int | None = None
    sent_at: datetime = Field(default_factory=utcnow)
    #: "email" (sent from the app) or "post" (a printed letter, recorded by staff).
    channel: str = Field(default="email", max_length=10,
                         sa_column_kwargs={"server_default": "email"})
    #: The e-mail address, or the postal address, it was sent to.
    sent_to: str = Field(max_length=320)
    #: The letter's content as canonical JSON, and its SHA-256.
    content: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    #: Goods or services the organisation provided in return, if any, and a good-faith
    #: estimate of their value in the reporting currency.
    goods_description: str | None = Field(default=None, max_length=1000)
    goods_value_minor: int | None = Field(default=None, sa_column=Column(BigInteger))
    sent_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
