"""A reviewer's answer to rule possible_senior_decision_maker: is this title senior?

An affiliation at a covered lab whose title reads like a senior role ("Vice President of
Research") but is not marked senior holds the person's gifts. A reviewer answers once:

- senior: the flag is set (a tightening change, at once) and the person's gifts dated while
  the affiliation counts are re-screened, as any affiliation change re-screens them; rule
  senior_decision_maker then refuses them;
- not senior: the title as it stands is stored on the affiliation (title_cleared) and the
  rule does not ask again until the title changes. The gifts already held stay held for the
  reviewer to decide (deciding re-screens them with the cleared title). One reviewer may do
  this, as one reviewer may accept a held gift; it is audited with the reason.
"""

from __future__ import annotations

from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations
from app.ledger.parties import (
    CONFIRMING_ROLES,
    _affected_range,
    _affiliation_words,
    _today_by,
    rescreen_person,
)
from models import Affiliation, Decision, Donor, Organization
from policies import Policy


def review_title(session: Session, affiliation_id: int, senior: bool, reason: str,
                 actor: Actor, policy: Policy) -> tuple[Affiliation, list[Decision]]:
    """Record a reviewer's answer; returns the affiliation and the decisions of the gifts
    re-screened (none when the title is cleared)."""
    if actor.role not in CONFIRMING_ROLES:
        raise NotAllowed("only a reviewer or an admin may review an affiliation's title")
    if not (reason or "").strip():
        raise ValidationFailed({"reason": ["say why"]})
    reason = reason.strip()
    with ledger_write(session):
        aff = session.get(Affiliation, affiliation_id)
        if aff is None:
            raise NotFound("affiliation", affiliation_id)
        if aff.senior_decision_maker:
            raise NotAllowed(f"affiliation {affiliation_id} is already marked senior")
        if not aff.title:
            raise NotAllowed(f"affiliation {affiliation_id} has no title to review")
        donor = session.get(Donor, aff.donor_id)
        organization = session.get(Organization, aff.organization_id).name
        if not senior:
            aff.title_cleared = aff.title
            session.flush()
            audit.append(session, actor, "affiliation.title_cleared", "donor", aff.donor_id, {
                "affiliation_id": aff.id, "title": aff.title, "organization": organization,
                "reason": reason,
            }, sealed=[aff])
            return aff, []
        was = _affiliation_words(session, aff)
        aff.senior_decision_maker = True
        session.flush()
        audit.append(session, actor, "affiliation.changed", "donor", aff.donor_id, {
            "affiliation_id": aff.id, "before": {"senior_decision_maker": False},
            "after": {"senior_decision_maker": True}, "reason": reason,
            "why": "title reviewed as a senior decision-maker's",
        }, sealed=[aff])
        rescreened = []
        if CoveredOrganizations(session).covered(aff.organization_id):
            rescreened = rescreen_person(
                session, aff.donor_id, [_affected_range(aff, policy)], policy, actor,
                f"Affiliation changed: {donor.name}, {was}, is now "
                f"{_affiliation_words(session, aff)} (its title reviewed as senior); "
                f"changed {_today_by(actor)}.")
    return aff, rescreened
