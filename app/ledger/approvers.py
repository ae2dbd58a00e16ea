"""Who may be the second person: the check every approval (override, enforcement change)
makes of its approver.

Two persons must really be two. The approver is a named user other than the proposer,
active, holding a reviewing role (reviewer or admin), and has held that role for the
policy's approver_min_age_days: an admin who makes a second account, or gives one a
reviewing role, cannot approve with it until that time has passed, in which the new
account is visible to everyone on the admin page and in the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from app.errors import NotAllowed
from models import User, utcnow
from policies import Policy

REVIEWING_ROLES = ("reviewer", "admin")


def check_may_approve(session: Session, approver_id: int | None, proposer_id: int | None,
                      policy: Policy, *, what: str = "this", now: datetime | None = None) -> None:
    """Raise NotAllowed unless approver_id may approve what proposer_id proposed."""
    if approver_id is None:
        raise NotAllowed(f"{what} must be approved by a named reviewer")
    if approver_id == proposer_id:
        raise NotAllowed(f"{what} needs the approval of a second reviewer, not its proposer")
    approver = session.get(User, approver_id)
    if approver is None or not approver.active:
        raise NotAllowed(f"{what} must be approved by an active reviewer")
    if approver.role not in REVIEWING_ROLES:
        raise NotAllowed(f"{what} must be approved by a reviewer or an admin")
    days = policy.approver_min_age_days
    if days and (now or utcnow()) - approver.role_since < timedelta(days=days):
        ready = (approver.role_since + timedelta(days=days)).date().isoformat()
        raise NotAllowed(
            f"{approver.email} has held the {approver.role} role for less than {days} days "
            f"and may approve from {ready}; ask a longer-standing reviewer")
