"""Changes that weaken enforcement, waiting for a second person (app.ledger.changes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

#: What a pending change does when approved.
CHANGE_KINDS = ("policy_version", "organization", "affiliation", "affiliation_removal",
                "roster_entry", "roster_entry_removal", "in_kind", "relationship_end",
                "relationship_removal")
#: "expired": not approved within the policy's [approvals] pending_change_days of its
#: proposal; nothing of it applied (app.ledger.changes).
CHANGE_STATES = ("pending", "approved", "declined", "expired")


class PendingChange(SQLModel, table=True):
    """A change that could let through money otherwise stopped. Nothing of it applies until a
    second person (reviewer or admin, not the proposer) approves it; then it goes through the
    same ledger code as an immediate edit (re-screening included)."""

    __tablename__ = "pending_change"
    __table_args__ = (
        CheckConstraint(in_list("kind", CHANGE_KINDS), name="kind"),
        CheckConstraint(in_list("state", CHANGE_STATES), name="state"),
        CheckConstraint("decided_by_id IS NULL OR decided_by_id <> proposed_by_id",
                        name="second_person"),
        Index("ix_pending_change_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    #: The organisation or affiliation changed; None for a policy version (a new row).
    target_id: int | None = Field(default=None)
    #: The values it would set: the fields that weaken (organisation, affiliation), the whole
    #: policy document, or {} for a removal.
    proposed: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: The same fields as they were when proposed: approval refuses if they moved since.
    before: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Why it needs a second person, in words ("covered_lab true to false").
    weakens: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    proposed_by_id: int = Field(foreign_key="staff_user.id")
    proposed_at: datetime = Field(default_factory=utcnow)
    state: str = Field(default="pending", max_length=10)
    decided_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    decided_at: datetime | None = None
    #: The approver's or decliner's note.
    note: str | None = Field(default=None, sa_column=Column(Text))
    #: After approval of a policy version: the policy_version row it created.
    result_id: int | None = Field(default=None)
