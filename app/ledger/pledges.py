"""Pledges and their instalment schedules: what is paid, due and overdue."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from app.db import org_today
from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, row_hashes
from app.ledger.audit import Actor
from models import Donor, DonorMerge, Gift, Pledge, PledgeInstalment, move_pledge
from models.money import MoneyError, format_amount, parse_amount
from models.schemas import PledgeCancel, PledgeCreate, PledgeSchedule


def create_pledge(session: Session, data: PledgeCreate, actor: Actor) -> Pledge:
    with ledger_write(session):
        if session.get(Donor, data.donor_id) is None:
            raise ValidationFailed({"donor_id": ["no such donor"]})
        merged = session.get(DonorMerge, data.donor_id)
        if merged is not None:
            raise ValidationFailed({"donor_id": [
                f"donor {data.donor_id} was merged into donor {merged.survivor_id}"]})
        pledge = Pledge(donor_id=data.donor_id, amount_minor=data.amount_minor,
                        currency=data.currency, pledged_on=data.pledged_on,
                        description=data.description)
        session.add(pledge)
        session.flush()
        instalments = list(zip(data.instalments, data.instalment_minor, strict=True)) or [
            (None, data.amount_minor)
        ]
        schedule = [PledgeInstalment(pledge_id=pledge.id,
                                     due_on=item.due_on if item else data.pledged_on,
                                     amount_minor=minor) for item, minor in instalments]
        session.add_all(schedule)
        session.flush()
        audit.append(session, actor, "pledge.created", "pledge", pledge.id,
                     {"donor_id": data.donor_id, "amount": data.amount, "currency": data.currency},
                     sealed=[pledge, *schedule])
    return pledge


def _open_pledge(session: Session, pledge_id: int, doing: str) -> Pledge:
    pledge = session.get(Pledge, pledge_id)
    if pledge is None:
        raise NotFound("pledge", pledge_id)
    if pledge.state != "active":
        raise NotAllowed(f"pledge {pledge_id} is {pledge.state}: only an active pledge can be "
                         f"{doing}")
    return pledge


def cancel_pledge(session: Session, pledge_id: int, data: PledgeCancel, actor: Actor) -> Pledge:
    """The donor will not pay the rest: the pledge stops counting as due or overdue (lists and
    totals leave cancelled pledges out). Payments already made stay what they are, gifts."""
    with ledger_write(session):
        pledge = _open_pledge(session, pledge_id, "cancelled")
        outstanding = max(0, pledge.amount_minor - paid_minor(session, pledge_id))
        move_pledge(pledge, "cancelled")
        pledge.cancelled_on = org_today(session)
        pledge.cancel_reason = data.reason
        session.flush()
        audit.append(session, actor, "pledge.cancelled", "pledge", pledge.id, {
            "donor_id": pledge.donor_id, "cancelled_on": pledge.cancelled_on.isoformat(),
            "outstanding": format_amount(outstanding, pledge.currency),
            "currency": pledge.currency,
        }, sealed=[pledge])
    return pledge


def reschedule_pledge(session: Session, pledge_id: int, data: PledgeSchedule,
                      actor: Actor) -> Pledge:
    """Replace an active pledge's schedule. Payments are applied to instalments oldest first
    whatever the schedule (pledge_schedule), so what is paid stays paid; the new instalments
    must add up to the pledged amount, as at creation."""
    with ledger_write(session):
        pledge = _open_pledge(session, pledge_id, "rescheduled")
        amounts = []
        for i, item in enumerate(data.instalments):
            try:
                amounts.append(parse_amount(item.amount, pledge.currency))
            except MoneyError as error:
                raise ValidationFailed({f"instalments.{i}.amount": [str(error)]}) from None
        if sum(amounts) != pledge.amount_minor:
            raise ValidationFailed({"instalments": [
                f"instalments add up to {format_amount(sum(amounts), pledge.currency)}, the "
                f"pledge is {format_amount(pledge.amount_minor, pledge.currency)}"]})
        old = session.execute(
            select(PledgeInstalment).where(PledgeInstalment.pledge_id == pledge_id)
            .order_by(PledgeInstalment.due_on, PledgeInstalment.id)
        ).scalars().all()
        # The rows are reused in place, extra ones deleted or added: deleting them all and
        # inserting anew would let SQLite give a new row the id of one deleted in the same
        # entry, and the entry would seal that id both as gone and as written.
        wanted = list(zip(data.instalments, amounts, strict=True))
        kept = old[:len(wanted)]
        for inst, (item, minor) in zip(kept, wanted, strict=False):
            inst.due_on, inst.amount_minor = item.due_on, minor
        gone = old[len(wanted):]
        for inst in gone:
            session.delete(inst)
        session.flush()
        added = [PledgeInstalment(pledge_id=pledge_id, due_on=item.due_on, amount_minor=minor)
                 for item, minor in wanted[len(kept):]]
        session.add_all(added)
        session.flush()
        new = [*kept, *added]
        audit.append(session, actor, "pledge.rescheduled", "pledge", pledge.id, {
            "donor_id": pledge.donor_id,
            "instalments": [[inst.due_on.isoformat(), format_amount(inst.amount_minor,
                                                                     pledge.currency)]
                            for inst in new],
            "removed_instalment_ids": [inst.id for inst in gone],
            "currency": pledge.currency,
        }, sealed=[*new, *(row_hashes.removed(PledgeInstalment, inst.id) for inst in gone)])
    return pledge


_PAID = (
    select(func.coalesce(func.sum(Gift.amount_minor - Gift.refunded_minor), 0))
    .where(Gift.pledge_id == bindparam("pledge_id"), Gift.status == "accepted")
)


def paid_minor(session: Session, pledge_id: int) -> int:
    """Accepted payments of the pledge, net of their refunds, in the pledge currency."""
    return int(session.execute(_PAID, {"pledge_id": pledge_id}).scalar_one())


def track_payments(session: Session, pledge_id: int | None, actor: Actor) -> None:
    """Move the pledge to `fulfilled` once its accepted payments reach the pledged amount,
    and back to `active` if a refund (or a payment pulled back for review) leaves it short.

    Called under the ledger lock by every change to what a pledge payment counts: a payment
    accepted, held again or refunded. An overpayment is recorded, never refused (the money
    has arrived): the pledge shows it (overpaid_minor) and so does the review queue."""
    if pledge_id is None:
        return
    pledge = session.get(Pledge, pledge_id)
    if pledge is None or pledge.state == "cancelled":
        return
    paid = paid_minor(session, pledge_id)
    if pledge.state == "active" and paid >= pledge.amount_minor:
        move_pledge(pledge, "fulfilled")
        action = "pledge.fulfilled"
    elif pledge.state == "fulfilled" and paid < pledge.amount_minor:
        move_pledge(pledge, "active")
        action = "pledge.reopened"
    else:
        return
    session.flush()
    audit.append(session, actor, action, "pledge", pledge.id, {
        "paid": format_amount(paid, pledge.currency),
        "amount": format_amount(pledge.amount_minor, pledge.currency),
        "overpaid": format_amount(max(0, paid - pledge.amount_minor), pledge.currency),
        "currency": pledge.currency,
    }, sealed=[pledge])


def overpaid_pledges(session: Session) -> list[tuple[Pledge, int]]:
    """Pledges whose accepted payments exceed the pledged amount, with the excess."""
    paid = (select(Gift.pledge_id, func.sum(Gift.amount_minor - Gift.refunded_minor).label("paid"))
            .where(Gift.pledge_id.is_not(None), Gift.status == "accepted")
            .group_by(Gift.pledge_id).subquery())
    rows = session.execute(
        select(Pledge, paid.c.paid).join(paid, paid.c.pledge_id == Pledge.id)
        .where(paid.c.paid > Pledge.amount_minor).order_by(Pledge.id)
    ).all()
    return [(pledge, int(total) - pledge.amount_minor) for pledge, total in rows]


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
    return _apply_payments(instalments, paid_pool, today)


def pledge_schedules(session: Session, pledge_ids: list[int],
                     today: date) -> dict[int, list[InstalmentState]]:
    """pledge_schedule for many pledges in two queries (for lists)."""
    if not pledge_ids:
        return {}
    by_pledge: dict[int, list[PledgeInstalment]] = {i: [] for i in pledge_ids}
    for inst in session.execute(
        select(PledgeInstalment).where(PledgeInstalment.pledge_id.in_(pledge_ids))
        .order_by(PledgeInstalment.due_on, PledgeInstalment.id)
    ).scalars():
        by_pledge[inst.pledge_id].append(inst)
    paid = dict(session.execute(
        select(Gift.pledge_id, func.sum(Gift.amount_minor - Gift.refunded_minor))
        .where(Gift.pledge_id.in_(pledge_ids), Gift.status == "accepted")
        .group_by(Gift.pledge_id)
    ).all())
    return {i: _apply_payments(by_pledge[i], int(paid.get(i) or 0), today) for i in pledge_ids}


def _apply_payments(instalments, paid_pool: int, today: date) -> list[InstalmentState]:
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


#: Months between instalments for each schedule frequency a form offers.
FREQUENCY_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, or the month's last day if it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def equal_instalments(total_minor: int, count: int, first_due: date,
                      months_between: int) -> list[tuple[date, int]]:
    """`count` equal instalments in exact minor units; the last absorbs the remainder.

    10000.00 in 3 -> 3333.33, 3333.33, 3333.34. Each due date keeps the first one's day
    of the month (clamped: 31 January, then 28 or 29 February, then 31 March).
    """
    if count < 1:
        raise ValidationFailed({"instalment_count": ["at least one instalment"]})
    base = total_minor // count
    if base == 0:
        raise ValidationFailed({"instalment_count": [
            "too many instalments: each must be at least the smallest unit of the currency"
        ]})
    amounts = [base] * (count - 1) + [total_minor - base * (count - 1)]
    return [(add_months(first_due, i * months_between), minor) for i, minor in enumerate(amounts)]
