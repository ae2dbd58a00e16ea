"""Corrections of mistaken gifts: a gift voided, and (for a correction) the gift recorded in
its place. History is not edited: the mistaken gift stays, reversed by a refund row dated on
its own date (so it counts in no window), and this row says why (app.ledger.corrections)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

CORRECTION_KINDS = ("void", "correction")


class GiftCorrection(SQLModel, table=True):
    __tablename__ = "gift_correction"
    __table_args__ = (
        CheckConstraint(in_list("kind", CORRECTION_KINDS), name="kind"),
        # A void has no replacement (a correction's is named once recorded, in the same
        # transaction).
        CheckConstraint("kind = 'correction' OR replacement_gift_id IS NULL",
                        name="replacement_when_corrected"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: The mistaken gift (voided once, never again).
    gift_id: int = Field(foreign_key="gift.id", unique=True)
    kind: str = Field(max_length=10)
    #: Why, in the words of the person who corrected it. Kept here, never in the audit
    #: entry's data.
    reason: str = Field(sa_column=Column(Text, nullable=False))
    #: The refund row, dated on the gift's own date, that takes it out of every window
    #: (None for a gift that never counted: held or rejected).
    refund_id: int | None = Field(default=None, foreign_key="refund.id")
    #: The gift recorded in its place, through the one door (a correction).
    replacement_gift_id: int | None = Field(default=None, foreign_key="gift.id")
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
