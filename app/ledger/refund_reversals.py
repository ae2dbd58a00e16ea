"""Reversing a refund whose money came back (Stripe reports the refund failed later).

The refund stays in history. A reversal is a refund row of its own with the negated
amounts, `reverses_refund_id` naming the refund, dated the day the money came back
(models.Refund explains why a signed row and not a table of its own). So, as for a
refund: windows ending before that day are unchanged, windows ending on or after it count
the money again; the gift's refunded amount, its refund status, the daily funding totals
and every sum of refunds by date agree with no reader knowing reversals exist.

A reversal moves the lab-employee share the other way from its refund: reversing the
refund of lab-employee money raises the share again, from the reversal's date on. Like a
refund, it can put the share at the cap with no new gift (a breach, shown by the summary
and the breach report from the same windows; decisions already made are not rewritten).
Its audit entry records the share before and after, on its date and today, so a reader
of the trail sees what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db import org_today
from app.db.locking import ledger_write
from app.errors import Duplicate, NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, funding, pledges, windows
from app.ledger.audit import Actor
from models import Gift, Refund
from models.money import format_amount
from policies import Policy, below_cap, percent_text, share


@dataclass(frozen=True)
class ShareMove:
    """The lab-employee share in the window ending on `end`, before and after a change."""

    end: date
    before: str
    after: str
    #: The share after the change is at or above the cap (a breach on that day).
    at_cap_after: bool

    def as_dict(self) -> dict:
        return {"end": self.end, "before": self.before, "after": self.after,
                "at_cap_after": self.at_cap_after}


@dataclass(frozen=True)
class Reversal:
    row: Refund
    gift: Gift
    #: On the reversal's date and today (one entry when they are the same day); empty
    #: without a policy.
    shares: tuple[ShareMove, ...]

    @property
    def breach(self) -> bool:
        return any(move.at_cap_after for move in self.shares)


def reversal_of(session: Session, refund_id: int) -> Refund | None:
    return session.execute(
        select(Refund).where(Refund.reverses_refund_id == refund_id)
    ).scalar_one_or_none()


def latest_reversal_day(session: Session, gift_id: int) -> date | None:
    """The latest date a refund of the gift was reversed on. A refund dated before it could
    count, in some window, together with the refund that reversal took back, more than the
    gift: refund_gift refuses such dates."""
    return session.execute(
        select(func.max(Refund.refunded_on))
        .where(Refund.gift_id == gift_id, Refund.reverses_refund_id.is_not(None))
    ).scalar_one_or_none()


def _windows(session: Session, ends: list[date], policy: Policy):
    return windows.window_totals(session, ends, policy.window_days)


def reverse_refund(session: Session, refund_id: int, actor: Actor, *, reversed_on: date,
                   reason: str, policy: Policy | None = None) -> Reversal:
    """Record that a refund's money came back on `reversed_on`, once per refund."""
    with ledger_write(session):
        refund = session.get(Refund, refund_id)
        if refund is None:
            raise NotFound("refund", refund_id)
        if refund.is_reversal:
            raise NotAllowed(f"refund {refund_id} is itself a reversal")
        existing = reversal_of(session, refund.id)
        if existing is not None:
            raise Duplicate("reverses_refund_id", existing.id)
        today = org_today(session)
        if reversed_on < refund.refunded_on or reversed_on > today:
            # Before its refund it would count the money twice in the windows between.
            raise ValidationFailed({"reversed_on": [
                f"must be between the refund's date ({refund.refunded_on.isoformat()}) "
                f"and today ({today.isoformat()})"]})
        gift = session.get(Gift, refund.gift_id)
        ends = sorted({reversed_on, today})
        before_windows = _windows(session, ends, policy) if policy else []

        # Converted cumulatively at the gift's stored rate, as refund_gift does, so a
        # gift's refund rows keep adding up to refunded_reporting(its refunded amount)
        # (what funding_day holds for it): reversing the latest refund takes back exactly
        # its reporting amount; an older one may differ from it by the rounding unit.
        refunded_before = gift.refunded_minor
        reporting_before = windows.refunded_reporting(gift, refunded_before)
        gift.refunded_minor = refunded_before - refund.amount_minor
        reporting_after = windows.refunded_reporting(gift, gift.refunded_minor)
        row = Refund(
            gift_id=gift.id,
            amount_minor=-refund.amount_minor,
            reporting_amount_minor=reporting_after - reporting_before,
            refunded_on=reversed_on,
            gift_received_on=gift.received_on,
            reason=reason,
            reverses_refund_id=refund.id,
            created_by_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        funding.deduct_refund(session, gift, refunded_before)

        shares: tuple[ShareMove, ...] = ()
        if policy:
            after_windows = _windows(session, ends, policy)
            shares = tuple(
                ShareMove(end=b.end, before=percent_text(share(b.lab_minor, b.total_minor), 2),
                          after=percent_text(share(a.lab_minor, a.total_minor), 2),
                          at_cap_after=not below_cap(a.lab_minor, a.total_minor, policy.cap))
                for b, a in zip(before_windows, after_windows, strict=True))
        audit.append(session, actor, "gift.refund_reversed", "gift", gift.id, {
            "refund_id": refund.id,
            "reversal_id": row.id,
            "amount": format_amount(refund.amount_minor, gift.currency),
            "currency": gift.currency,
            "refunded_on": refund.refunded_on,
            "reversed_on": reversed_on,
            "reason": reason,
            "lab_employee_share": [move.as_dict() for move in shares],
        }, sealed=[gift, row])
        pledges.track_payments(session, gift.pledge_id, actor)
    return Reversal(row, gift, shares)
