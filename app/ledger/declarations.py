"""A reviewer's answer to a donate-form declaration that differs from a donor's record.

The form's answers never change an existing donor's record by themselves (anyone can type
anyone's e-mail address). When one differs from the record, the payment's gift is held
(rule declaration_differs) and the declaration waits here: "apply" records it as the
donor's affiliation through parties.add_affiliation, which re-screens the donor's gifts;
"dismiss" records that it was not believed. Either way the reviewer then decides the held
gift itself in the review queue. Its own module: parties imports reviews.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlmodel import Session

from app.db.locking import ledger_batch, ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.parties import add_affiliation
from models import Attribution, Donor, Gift, OnlineDonation, RefusedDeclaration, utcnow
from models.schemas import AffiliationCreate
from policies import Policy
from policies.identity import email_key


def declared_title(senior: bool) -> str:
    """The title of an affiliation that came from the donate form."""
    return ("Senior decision-maker (declared on the donation form)" if senior
            else "Declared on the donation form")


def held_gifts_waiting(session: Session, donation: OnlineDonation) -> list[Gift]:
    """The held gifts of the declaring donor (given or attributed) that wait on its answer."""
    attributed = select(Attribution.gift_id).where(Attribution.donor_id == donation.donor_id)
    return list(session.execute(
        select(Gift).where(Gift.status == "held",
                           or_(Gift.donor_id == donation.donor_id, Gift.id.in_(attributed)))
        .order_by(Gift.id)
    ).scalars())


def _to_review(session: Session, donation_id: int) -> OnlineDonation:
    donation = session.get(OnlineDonation, donation_id)
    if donation is None:
        raise NotFound("online donation", donation_id)
    if donation.declaration_state != "to_review":
        raise NotAllowed(f"online donation {donation_id}'s declaration is "
                         f"{donation.declaration_state or 'absent'}, not waiting for review")
    return donation


def _answered(session: Session, donation: OnlineDonation, state: str, actor: Actor,
              reason: str) -> None:
    donation.declaration_state = state
    donation.updated_at = utcnow()
    audit.append(session, actor, f"donation.declaration_{state}", "online_donation", donation.id,
                 {"donor_id": donation.donor_id, "lab_id": donation.declared_lab_id,
                  "senior": donation.declared_senior, "gift_id": donation.declaration_gift_id,
                  "reason": reason}, sealed=[donation])


def apply_declaration(session: Session, donation_id: int, actor: Actor, policy: Policy,
                      reason: str, start_date: date) -> OnlineDonation:
    """The reviewer believes it: the declared role becomes the donor's affiliation from
    start_date (re-screening the donor's gifts), all in one transaction."""
    with ledger_batch(session):
        donation = _to_review(session, donation_id)
        senior = donation.declared_senior
        add_affiliation(session, donation.donor_id, AffiliationCreate(
            organization_id=donation.declared_lab_id, kind="employee",
            title=declared_title(senior),
            senior_decision_maker=senior, start_date=start_date,
        ), actor, policy)
        _answered(session, donation, "applied", actor, reason)
    return donation


def dismiss_declaration(session: Session, donation_id: int, actor: Actor,
                        reason: str) -> OnlineDonation:
    """The reviewer does not believe it: the record stays as it is; later payments of the
    donation are screened without the declaration."""
    with ledger_write(session):
        donation = _to_review(session, donation_id)
        _answered(session, donation, "dismissed", actor, reason)
    return donation


# --- declarations refused before payment -----------------------------------------------------

def waiting_refusals(session: Session, email: str | None) -> list[RefusedDeclaration]:
    """The declarations refused before payment for this e-mail (normalised as a donor's)
    that no reviewer dismissed: later attempts from the e-mail are screened with them."""
    key = email_key(email)
    if key is None:
        return []
    return list(session.execute(
        select(RefusedDeclaration).where(RefusedDeclaration.email_key == key,
                                         RefusedDeclaration.state == "waiting")
        .order_by(RefusedDeclaration.id)
    ).scalars())


def refusals_of_donor(session: Session, donor: Donor) -> list[RefusedDeclaration]:
    """Every refused declaration typed with this donor's e-mail, dismissed ones too, for
    the reviewer's view of the donor."""
    if donor.email_key is None:
        return []
    return list(session.execute(
        select(RefusedDeclaration)
        .where(RefusedDeclaration.email_key == donor.email_key)
        .order_by(RefusedDeclaration.id)
    ).scalars())


def dismiss_refusal(session: Session, refused_id: int, donor_id: int, actor: Actor,
                    reason: str) -> RefusedDeclaration:
    """A reviewer, from the donor's page, does not believe a declaration refused before
    payment under the donor's e-mail: later attempts are no longer held for it. The
    donor's record is not touched either way (a true role is recorded as an affiliation)."""
    if len((reason or "").strip()) < 3:
        raise ValidationFailed({"reason": ["say why, in 3 to 2000 characters"]})
    with ledger_write(session):
        refused = session.get(RefusedDeclaration, refused_id)
        donor = session.get(Donor, donor_id)
        if refused is None or donor is None or refused.email_key != donor.email_key:
            raise NotFound("refused declaration", refused_id)
        if refused.state != "waiting":
            raise NotAllowed(f"refused declaration {refused_id} is {refused.state} already")
        refused.state = "dismissed"
        refused.dismissed_by = actor.label
        refused.dismissed_reason = reason.strip()
        audit.append(session, actor, "donation.refused_declaration_dismissed",
                     "refused_declaration", refused.id,
                     {"donor_id": donor_id, "lab_id": refused.declared_lab_id,
                      "senior": refused.declared_senior, "reason": reason.strip()})
    return refused
