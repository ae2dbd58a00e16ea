"""Organisations, donors, affiliations and in-kind arrangements.

Changing an affiliation re-screens the person's affected gifts in the same
transaction: each gets a new `hold` decision and waits for a reviewer.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlmodel import Session

from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.errors import NotFound, ValidationFailed
from app.ledger.facts import CoveredOrganizations
from app.ledger.locking import ledger_write
from app.ledger.reviews import hold_for_rescreen
from models import Affiliation, Attribution, Decision, Donor, Gift, InKindArrangement, Organization
from models.schemas import AffiliationCreate, DonorCreate, InKindCreate, OrganizationCreate
from policies import Policy


def create_organization(session: Session, data: OrganizationCreate, actor: Actor) -> Organization:
    with ledger_write(session):
        if data.parent_id is not None and session.get(Organization, data.parent_id) is None:
            raise ValidationFailed({"parent_id": ["no such organisation"]})
        clash = session.execute(
            select(Organization.id).where(Organization.name == data.name)
        ).scalar_one_or_none()
        if clash is not None:
            raise ValidationFailed({"name": [f"an organisation with this name exists (id {clash})"]})
        org = Organization(name=data.name, covered_lab=data.covered_lab, aliases=data.aliases,
                           parent_id=data.parent_id)
        session.add(org)
        session.flush()
        audit.append(session, actor, "organization.created", "organization", org.id,
                     data.model_dump())
    return org


def create_donor(session: Session, data: DonorCreate, actor: Actor) -> Donor:
    with ledger_write(session):
        if data.organization_id is not None:
            if data.type != "organization":
                raise ValidationFailed({"organization_id": [
                    "only an organisation donor is an organisation; record a person's "
                    "employer as an affiliation"
                ]})
            if session.get(Organization, data.organization_id) is None:
                raise ValidationFailed({"organization_id": ["no such organisation"]})
        donor = Donor(type=data.type, name=data.name, email=data.email,
                      organization_id=data.organization_id, category=data.category,
                      anonymous=data.anonymous)
        session.add(donor)
        session.flush()
        audit.append(session, actor, "donor.created", "donor", donor.id,
                     {"type": donor.type, "category": donor.category})
    return donor


def _affected_range(aff: Affiliation, policy: Policy) -> tuple[date, date | None]:
    """Gift dates on which this affiliation counts: start .. end + cooling-off."""
    if aff.end_date is None:
        return aff.start_date, None
    return aff.start_date, aff.end_date + timedelta(days=policy.cooling_off_days - 1)


def rescreen_person(session: Session, donor_id: int, ranges: list[tuple[date, date | None]],
                    policy: Policy, actor: Actor, why: str) -> list[Decision]:
    """Hold every accepted or held gift of the person dated within the ranges."""
    conditions = []
    for first, last in ranges:
        cond = Gift.received_on >= first
        if last is not None:
            cond = cond & (Gift.received_on <= last)
        conditions.append(cond)
    if not conditions:
        return []
    attributed = select(Attribution.gift_id).where(Attribution.donor_id == donor_id)
    gifts = session.execute(
        select(Gift)
        .where(
            or_(Gift.donor_id == donor_id, Gift.id.in_(attributed)),
            Gift.status.in_(("accepted", "held")),
            or_(*conditions),
        )
        .order_by(Gift.received_on, Gift.id)
    ).scalars().all()
    return [hold_for_rescreen(session, gift, policy, actor, why) for gift in gifts]


def add_affiliation(session: Session, donor_id: int, data: AffiliationCreate, actor: Actor,
                    policy: Policy) -> tuple[Affiliation, list[Decision]]:
    with ledger_write(session):
        donor = session.get(Donor, donor_id)
        if donor is None:
            raise NotFound("donor", donor_id)
        if donor.type != "person":
            raise ValidationFailed({"donor_id": ["affiliations link a person to an organisation"]})
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        aff = Affiliation(donor_id=donor_id, **data.model_dump())
        session.add(aff)
        session.flush()
        audit.append(session, actor, "affiliation.added", "donor", donor_id,
                     {"affiliation_id": aff.id, **data.model_dump()})
        rescreened = []
        if CoveredOrganizations(session).covered(aff.organization_id):
            rescreened = rescreen_person(
                session, donor_id, [_affected_range(aff, policy)], policy, actor,
                f"Affiliation recorded: {donor.name}, {aff.kind} at organisation "
                f"{aff.organization_id} from {aff.start_date.isoformat()}",
            )
    return aff, rescreened


def update_affiliation(session: Session, affiliation_id: int, data: AffiliationCreate,
                       actor: Actor, policy: Policy) -> tuple[Affiliation, list[Decision]]:
    with ledger_write(session):
        aff = session.get(Affiliation, affiliation_id)
        if aff is None:
            raise NotFound("affiliation", affiliation_id)
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        covered = CoveredOrganizations(session)
        ranges = []
        if covered.covered(aff.organization_id):
            ranges.append(_affected_range(aff, policy))
        before = {k: getattr(aff, k) for k in data.model_dump()}
        for key, value in data.model_dump().items():
            setattr(aff, key, value)
        session.flush()
        if covered.covered(aff.organization_id):
            ranges.append(_affected_range(aff, policy))
        audit.append(session, actor, "affiliation.changed", "donor", aff.donor_id,
                     {"affiliation_id": aff.id, "before": before, "after": data.model_dump()})
        rescreened = rescreen_person(session, aff.donor_id, ranges, policy, actor,
                                     f"Affiliation {aff.id} changed")
    return aff, rescreened


def create_in_kind(session: Session, data: InKindCreate, actor: Actor) -> InKindArrangement:
    with ledger_write(session):
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        item = InKindArrangement(
            organization_id=data.organization_id, description=data.description,
            purpose=data.purpose, start_date=data.start_date, end_date=data.end_date,
            estimated_value_minor=data.estimated_value_minor, currency=data.currency,
        )
        session.add(item)
        session.flush()
        audit.append(session, actor, "in_kind.recorded", "in_kind_arrangement", item.id,
                     data.model_dump())
    return item
