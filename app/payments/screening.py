"""Screening an online donation before any payment.

What the donor declares (who they are, their employer, a senior role) is a fact about
the donor, so it is stored through the ledger's services whatever the policy then says:
the donor is found by email or created, and a declared lab employer becomes an
Affiliation starting today. Then the gift is previewed with record_gift(dry_run=True).
A reject stops here, before Stripe is asked for anything; otherwise the pending
donation is stored and its id goes to Checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select
from sqlmodel import Session

from app.db.locking import ledger_batch, ledger_write
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations
from app.ledger.gifts import record_gift
from app.ledger.parties import add_affiliation, create_donor
from app.ledger.search import OrganizationNames
from models import Affiliation, Donor, OnlineDonation, Organization
from models.money import display_amount, format_amount
from models.schemas import AffiliationCreate, DonorCreate, GiftCreate
from policies import Evaluation, Policy
from policies.rules import RULE_BY_ID

#: Who stores the declarations: the public form, not a staff member.
DONATE_FORM = Actor("donate-form")

@dataclass(frozen=True)
class Declaration:
    """The form's answers, already checked for shape."""

    name: str
    email: str
    amount_minor: int
    currency: str
    frequency: str
    employer: str | None = None
    lab_id: int | None = None
    senior: bool = False
    via_daf: bool = False
    daf_sponsor: str | None = None
    daf_advisor: str | None = None
    anonymous: bool = False


@dataclass(frozen=True)
class Screening:
    outcome: str
    #: The stored pending donation; None when the policy refused the gift.
    donation: OnlineDonation | None
    #: Polite, donor-facing reasons for a refusal.
    reasons: tuple[str, ...] = ()


def covered_labs(session: Session) -> list[tuple[int, str]]:
    """Covered labs and their affiliates, by name, for the form's select."""
    covered = CoveredOrganizations(session)
    orgs = session.execute(select(Organization.id, Organization.name)
                           .order_by(Organization.name)).all()
    return [(org_id, name) for org_id, name in orgs if covered.covered(org_id)]


def lab_by_name(session: Session, employer: str | None) -> int | None:
    """A covered organisation whose name or alias is exactly the employer typed."""
    if not (employer or "").strip():
        return None
    covered = CoveredOrganizations(session)
    return next((org_id for org_id in OrganizationNames(session).named_or_aliased(employer)
                 if covered.covered(org_id)), None)


def _person(session: Session, decl: Declaration) -> Donor:
    donor = session.execute(
        select(Donor)
        .where(Donor.type == "person", func.lower(Donor.email) == decl.email.lower())
        .order_by(Donor.id).limit(1)
    ).scalar_one_or_none()
    if donor is not None:
        return donor
    return create_donor(session, DonorCreate(type="person", name=decl.name, email=decl.email,
                                             anonymous=decl.anonymous), DONATE_FORM)


def _daf_sponsor(session: Session, name: str) -> Donor:
    sponsor = session.execute(
        select(Donor)
        .where(Donor.type == "organization", Donor.category == "daf_sponsor",
               func.lower(Donor.name) == name.strip().lower())
        .order_by(Donor.id).limit(1)
    ).scalar_one_or_none()
    if sponsor is not None:
        return sponsor
    return create_donor(session, DonorCreate(type="organization", name=name.strip(),
                                             category="daf_sponsor"), DONATE_FORM)


def _declare_affiliation(session: Session, donor: Donor, lab_id: int, senior: bool,
                         policy: Policy, today: date) -> None:
    """Record a declared lab affiliation from today, unless one already on file covers it."""
    on_file = session.execute(
        select(Affiliation).where(
            Affiliation.donor_id == donor.id,
            Affiliation.organization_id == lab_id,
            Affiliation.start_date <= today,
            or_(Affiliation.end_date.is_(None), Affiliation.end_date >= today),
        )
    ).scalars().all()
    if any(a.senior_decision_maker or not senior for a in on_file):
        return
    title = ("Senior decision-maker (declared on the donation form)" if senior
             else "Declared on the donation form")
    add_affiliation(session, donor.id, AffiliationCreate(
        organization_id=lab_id, kind="employee", title=title, senior_decision_maker=senior,
        start_date=today), DONATE_FORM, policy)


def _refusals(evaluation: Evaluation, policy: Policy) -> tuple[str, ...]:
    """What the donor reads, by refusing rule: its donor text, else its public statement."""
    texts = []
    for finding in evaluation.fired:
        if finding.outcome != "reject":
            continue
        rule = RULE_BY_ID.get(finding.rule)
        template = rule.donor_text if rule else None
        texts.append(policy.words(template) if template else policy.statement(finding.rule))
    return tuple(dict.fromkeys(texts))


def screen_donation(session: Session, decl: Declaration, policy: Policy, reporting_currency: str,
                    today: date, preview_rate: str | None) -> Screening:
    """Store the declarations, preview the gift, and store the pending donation unless refused."""
    lab_id = decl.lab_id or lab_by_name(session, decl.employer)
    with ledger_batch(session):
        donor = _person(session, decl)
        payer = _daf_sponsor(session, decl.daf_sponsor or "") if decl.via_daf else donor
        if lab_id is not None:
            _declare_affiliation(session, donor, lab_id, decl.senior, policy, today)
        donor_id, payer_id = donor.id, payer.id

    foreign = decl.currency != reporting_currency
    if foreign and preview_rate is None:
        raise ValueError(f"no preview rate for {decl.currency}")
    preview = record_gift(session, GiftCreate(
        donor_id=payer_id,
        amount=format_amount(decl.amount_minor, decl.currency),
        currency=decl.currency,
        received_on=today,
        method="stripe",
        fx_rate=preview_rate if foreign else None,
        fx_source="indicative rate, preview before payment" if foreign else None,
        attributions=[{"donor_id": donor_id, "fraction": "1"}] if decl.via_daf else None,
    ), DONATE_FORM, policy, reporting_currency, dry_run=True)
    evaluation = preview.evaluation

    if evaluation.outcome == "reject":
        with ledger_write(session):
            audit.append(session, DONATE_FORM, "donation.refused_before_payment", "donor", donor_id, {
                "amount": display_amount(decl.amount_minor, decl.currency),
                "frequency": decl.frequency,
                "policy_version": evaluation.policy_version,
                "rules": [f.rule for f in evaluation.fired if f.outcome == "reject"],
            })
        return Screening("reject", None, _refusals(evaluation, policy))

    donation = OnlineDonation(
        donor_id=donor_id, payer_donor_id=payer_id, amount_minor=decl.amount_minor,
        currency=decl.currency, frequency=decl.frequency, declared_employer=decl.employer,
        declared_lab_id=lab_id, declared_senior=decl.senior, via_daf=decl.via_daf,
        daf_sponsor=decl.daf_sponsor if decl.via_daf else None,
        daf_advisor=decl.daf_advisor if decl.via_daf else None, anonymous=decl.anonymous,
        preview_outcome=evaluation.outcome, policy_version=evaluation.policy_version,
    )
    session.add(donation)
    session.commit()
    return Screening(evaluation.outcome, donation)
