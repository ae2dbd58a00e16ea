"""Pledges (promises to give) with dated instalments. Payments are gifts with pledge_id."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

#: Pledge states and the moves between them. A pledge is fulfilled when its accepted
#: payments, net of refunds, reach the pledged amount; a later refund (or a payment pulled
#: back for review) can open it again. A cancelled pledge stays cancelled.
PLEDGE_TRANSITIONS: dict[str, frozenset[str]] = {
    "active": frozenset({"fulfilled", "cancelled"}),
    "fulfilled": frozenset({"active"}),
    "cancelled": frozenset(),
}


class IllegalPledgeTransition(Exception):
    """A pledge state move that the ledger does not allow."""

    def __init__(self, pledge_id: int | None, current: str, requested: str):
        super().__init__(f"pledge {pledge_id}: cannot move from {current!r} to {requested!r}")
        self.current = current
        self.requested = requested


class Pledge(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(in_list("state", ("active", "fulfilled", "cancelled")), name="state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    donor_id: int = Field(foreign_key="donor.id", index=True)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    pledged_on: date
    description: str | None = Field(default=None, max_length=500)
    #: active, fulfilled (accepted payments net of refunds reached the amount) or cancelled;
    #: changed only by move_pledge.
    state: str = Field(default="active", max_length=10)
    created_at: datetime = Field(default_factory=utcnow)
    #: When and why the pledge was cancelled (app.ledger.pledges.cancel_pledge). The reason is
    #: a person's words: kept here, not in the audit trail.
    cancelled_on: date | None = None
    cancel_reason: str | None = Field(default=None, max_length=500)


class PledgeInstalment(SQLModel, table=True):
    __tablename__ = "pledge_instalment"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    due_on: date
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))


def move_pledge(pledge: Pledge, new_state: str) -> None:
    """The only place a pledge's state changes."""
    if new_state not in PLEDGE_TRANSITIONS.get(pledge.state, frozenset()):
        raise IllegalPledgeTransition(pledge.id, pledge.state, new_state)
    pledge.state = new_state
