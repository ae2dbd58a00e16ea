"""Who may be the second person: the check every approval (override, enforcement change)
makes of its approver.

Two persons must really be two. The approver is a named user other than the proposer,
active, holding a reviewing role (reviewer or admin), and has held that role for the
policy's approver_min_age_days: an admin who makes a second account, or gives one a
reviewing role, cannot approve with it until that time has passed, in which the new
account is visible to everyone on the admin page and in the audit trail.

And the account must be as the audit trail last recorded it: its role, role date, status,
second factor and (keyed) password hash equal the seals of the latest entry about it
(app.ledger.row_hashes). An insider who set a known password hash on a reviewer's account,
or backdated its role, behind the app's back, cannot approve with it; verify-audit names
the row as well.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from app.errors import NotAllowed
from app.ledger.row_hashes import seals_of
from models import AuditEntry, User, utcnow
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
    if not _as_last_sealed(session, approver):
        raise NotAllowed(
            f"{approver.email}'s account differs from what the audit trail last recorded of "
            "it (changed outside the app): it may not approve until an admin has checked it "
            "(armslength verify-audit)")
    days = policy.approver_min_age_days
    if days and (now or utcnow()) - approver.role_since < timedelta(days=days):
        ready = (approver.role_since + timedelta(days=days)).date().isoformat()
        raise NotAllowed(
            f"{approver.email} has held the {approver.role} role for less than {days} days "
            f"and may approve from {ready}; ask a longer-standing reviewer")


def _as_last_sealed(session: Session, account: User) -> bool:
    """False if the latest audit entry about the account that sealed it recorded other
    seals than its row gives now. Entries about an account are few, found by the indexed
    entity_id; an account sealed only by `armslength seal-rows` (no entry about it) is left
    to verify-audit."""
    now = {(table, row_id): digest for table, row_id, digest in seals_of(account)}
    entries = session.execute(
        select(AuditEntry.row_hashes)
        .where(AuditEntry.entity_id == account.id, AuditEntry.entity_type == "user",
               AuditEntry.row_hashes.is_not(None))
        .order_by(AuditEntry.id.desc())).scalars()
    for sealed in entries:
        recorded = {(t, i): h for t, i, h in sealed if (t, i) in now}
        if recorded:
            return all(now[key] == digest for key, digest in recorded.items())
    return True
