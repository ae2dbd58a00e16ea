"""The relationship with a donor beyond money: interactions (calls, meetings, e-mails,
events) on a timeline, and tasks for staff (a due date, an assignee)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

INTERACTION_KINDS = ("call", "meeting", "email", "event", "letter", "note")
TASK_STATUSES = ("open", "done")


class Interaction(SQLModel, table=True):
    """Something that happened between the organisation and a donor, as staff recorded it."""

    __table_args__ = (
        CheckConstraint(in_list("kind", INTERACTION_KINDS), name="kind"),
        # The donor's timeline: newest first.
        Index("ix_interaction_donor_occurred", "donor_id", "occurred_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id")
    kind: str = Field(max_length=20)
    #: When it happened (not when it was written down).
    occurred_on: date
    #: One line: "Thanked for the spring gift; interested in the evaluations report".
    summary: str = Field(max_length=200)
    note: str | None = Field(default=None, sa_column=Column(Text))
    #: The staff user who recorded it.
    author_id: int = Field(foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class Task(SQLModel, table=True):
    """Something a staff member is to do, usually about a donor, by a date."""

    __table_args__ = (
        CheckConstraint(in_list("status", TASK_STATUSES), name="status"),
        CheckConstraint("(status = 'done') = (done_at IS NOT NULL)", name="done_when_done"),
        # "My tasks": a user's open tasks by due date.
        Index("ix_task_assignee_status_due", "assignee_id", "status", "due_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    #: The donor it is about, if any.
    donor_id: int | None = Field(default=None, foreign_key="donor.id", index=True)
    assignee_id: int = Field(foreign_key="staff_user.id")
    due_on: date
    status: str = Field(default="open", max_length=10)
    note: str | None = Field(default=None, sa_column=Column(Text))
    created_by_id: int = Field(foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None
    done_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
