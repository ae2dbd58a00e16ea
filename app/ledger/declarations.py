"""A reviewer's answer to a donate-form declaration that differs from a donor's record.

The form's answers never change an existing donor's record by themselves (anyone can type
anyone's e-mail address). When one differs from the record, the payment's gift is held
(rule declaration_differs) and the declaration waits here: "apply" records it as the
donor's affiliation through parties.add_affiliation, which re-screens the donor's gifts;
"dismiss" records that it was not believed. Either way the reviewer then decides the held
gift itself in the review queue. Its own module: parties imports reviews.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from sqlalchemy import delete, func, or_, select
from sqlmodel import Session

from app.db.locking import ledger_batch, ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.parties import add_affiliation
from models import (
    Attribution,
    Donor,
    DonorMerge,
    Gift,
    OnlineDonation,
    RefusedDeclaration,
    utcnow,
)
from models.schemas import AffiliationCreate
from policies import Policy
from policies.identity import email_key

log = logging.getLogger(__name__)


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
#
# Anyone may submit the donate form, so these rows are bounded (docs/stripe.md):
# - one waiting row per e-mail and claim (lab, senior): a retry or a repeat finds it (and a
#   unique index on the waiting rows says so in the database); so per e-mail at most two per
#   covered lab;
# - a waiting row screens later attempts for REFUSAL_KEEP_DAYS, then ages out: it is deleted
#   (audited, by count) when the next refusal is kept;
# - at most MAX_WAITING_REFUSALS waiting rows: beyond that a refusal still refuses its gift
#   but is not kept, and a warning is logged (a flood of refusals, worth a look).
# And they only ever hold: for an e-mail a donor has (or had, before a merge), they never
# refuse that donor's gifts (app.payments.screening, recording._hold_for_refusals).

#: How long a refused declaration screens later attempts from its e-mail.
REFUSAL_KEEP_DAYS = 365
#: The most waiting refused declarations kept at once.
MAX_WAITING_REFUSALS = 10_000


def _fresh_since():
    return utcnow() - timedelta(days=REFUSAL_KEEP_DAYS)


def person_email_keys(session: Session, donor_id: int | None) -> list[str]:
    """The donor's normalised e-mail and those of the records merged into it (a person
    found under any of their addresses)."""
    if donor_id is None:
        return []
    own = session.execute(select(Donor.email_key).where(Donor.id == donor_id)).scalar_one_or_none()
    merged = session.execute(
        select(Donor.email_key).join(DonorMerge, DonorMerge.duplicate_id == Donor.id)
        .where(DonorMerge.survivor_id == donor_id, Donor.email_key.is_not(None))
        .order_by(Donor.id)).scalars().all()
    return [k for k in dict.fromkeys([own, *merged]) if k is not None]


def waiting_refusals(session: Session, email: str | None,
                     donor_id: int | None = None) -> list[RefusedDeclaration]:
    """The declarations refused before payment for this e-mail (normalised as a donor's),
    and for any address of the donor it belongs to (donor_id: its merged records' too),
    that no reviewer dismissed and that have not aged out: later attempts are screened with
    them."""
    keys = list(dict.fromkeys(k for k in [email_key(email), *person_email_keys(session, donor_id)]
                              if k is not None))
    if not keys:
        return []
    return list(session.execute(
        select(RefusedDeclaration).where(RefusedDeclaration.email_key.in_(keys),
                                         RefusedDeclaration.state == "waiting",
                                         RefusedDeclaration.created_at >= _fresh_since())
        .order_by(RefusedDeclaration.id)
    ).scalars())


def refusals_of_donor(session: Session, donor: Donor) -> list[RefusedDeclaration]:
    """Every refused declaration typed with this donor's e-mail, or with the e-mail of a
    record merged into it, dismissed ones too, for the reviewer's view of the donor."""
    keys = person_email_keys(session, donor.id)
    if not keys:
        return []
    return list(session.execute(
        select(RefusedDeclaration)
        .where(RefusedDeclaration.email_key.in_(keys))
        .order_by(RefusedDeclaration.id)
    ).scalars())


def keep_refusal(session: Session, actor: Actor, email: str, lab_id: int, senior: bool,
                 employer: str | None, rules: list[str], policy_version: str
                 ) -> tuple[RefusedDeclaration | None, str | None]:
    """Keep a declaration whose gift was refused before payment (inside the caller's
    ledger_write): (the row, None), the same claim's row already waiting (found, not added),
    or (None, why it was not kept). Ages out old rows first."""
    key = email_key(email)
    if key is None:
        return None, "no e-mail"
    kept = session.execute(select(RefusedDeclaration).where(
        RefusedDeclaration.email_key == key, RefusedDeclaration.declared_lab_id == lab_id,
        RefusedDeclaration.declared_senior == senior, RefusedDeclaration.state == "waiting",
    )).scalar_one_or_none()
    if kept is not None and kept.created_at >= _fresh_since():
        return kept, None  # the same claim again (a retry, or a visitor repeating it): one row
    _age_out(session, actor)
    waiting = session.execute(select(func.count()).select_from(RefusedDeclaration).where(
        RefusedDeclaration.state == "waiting")).scalar_one()
    if waiting >= MAX_WAITING_REFUSALS:
        log.warning("refused declaration not kept: %d are waiting already (the most kept); "
                    "the donate form may be flooded", waiting)
        return None, "the most refused declarations are waiting already"
    kept = RefusedDeclaration(email_key=key, declared_lab_id=lab_id, declared_senior=senior,
                              declared_employer=employer, rules=rules,
                              policy_version=policy_version)
    session.add(kept)
    session.flush()
    return kept, None


def _age_out(session: Session, actor: Actor) -> None:
    """Delete the waiting refusals older than REFUSAL_KEEP_DAYS (they screen nothing any
    more); one audit entry says how many. Dismissed ones stay: a reviewer's answer."""
    old = select(RefusedDeclaration.id).where(RefusedDeclaration.state == "waiting",
                                              RefusedDeclaration.created_at < _fresh_since())
    ids = session.execute(old.order_by(RefusedDeclaration.id)).scalars().all()
    if not ids:
        return
    session.execute(delete(RefusedDeclaration).where(RefusedDeclaration.id.in_(old)))
    audit.append(session, actor, "donation.refused_declarations_aged_out", "refused_declaration",
                 None, {"count": len(ids), "first_id": ids[0], "last_id": ids[-1],
                        "keep_days": REFUSAL_KEEP_DAYS})


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
        if refused is None or donor is None \
                or refused.email_key not in person_email_keys(session, donor.id):
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
