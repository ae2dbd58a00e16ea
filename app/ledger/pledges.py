"""Pledges and their instalment schedules: what is paid, due and overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlmodel import Session

from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.errors import ValidationFailed
from app.ledger.locking import ledger_write
from models import Donor, Gift, Pledge, PledgeInstalment
from models.schemas import PledgeCreate


def create_pledge(session: Session, data: PledgeCreate, actor: Actor) -> Pledge:
    with ledger_write(session):
        if session.get(Donor, data.donor_id) is None:
            raise ValidationFailed({"donor_id": ["no such donor"]})
        pledge = Pledge(donor_id=data.donor_id, amount_minor=data.amount_minor,
                        currency=data.currency, pledged_on=data.pledged_on,
                        description=data.description)
        session.add(pledge)
        session.flush()
        instalments = list(zip(data.instalments, data.instalment_minor, strict=True)) or [
            (None, data.amount_minor)
        ]
        for item, minor in instalments:
            session.add(PledgeInstalment(pledge_id=pledge.id,
                                         due_on=item.due_on if item else data.pledged_on,
                                         amount_minor=minor))
        audit.append(session, actor, "pledge.created", "pledge", pledge.id,
                     {"donor_id": data.donor_id, "amount": data.amount, "currency": data.currency})
    return pledge


@dataclass(frozen=True)
class InstalmentState:
    id: int
    due_on: date
    amount_minor: int
    paid_minor: int
    state: str  # "paid" | "part_paid" | "due" | "overdue"


def pledge_schedule(session: Session, pledge: Pledge, today: date) -> list[InstalmentState]:
    """Apply accepted payments to instalments oldest first."""
    instalments = session.execute(
        select(PledgeInstalment).where(PledgeInstalment.pledge_id == pledge.id)
        .order_by(PledgeInstalment.due_on, PledgeInstalment.id)
    ).scalars().all()
    paid_pool = sum(
        g.amount_minor - g.refunded_minor
        for g in session.execute(
            select(Gift).where(Gift.pledge_id == pledge.id, Gift.status == "accepted")
        ).scalars()
    )
    result = []
    for inst in instalments:
        paid = min(paid_pool, inst.amount_minor)
        paid_pool -= paid
        if paid == inst.amount_minor:
            state = "paid"
        elif inst.due_on < today:
            state = "overdue"
        elif paid:
            state = "part_paid"
        else:
            state = "due"
        result.append(InstalmentState(inst.id, inst.due_on, inst.amount_minor, paid, state))
    return result
