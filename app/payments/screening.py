"""Screening an online donation before any payment.

What someone types on the public form about themselves (a lab employer, a senior role)
is a claim, not a fact: anyone can type anyone's e-mail address. It is stored with the
pending donation and screened as if true (conservatively), but it changes no donor
record here. The donor is found by e-mail, or created with only what Stripe's receipt
needs (name, e-mail, anonymity), never an affiliation; a donation that is never paid
leaves at most that bare record, marked as created by the "donate-form" in the audit
trail and by its OnlineDonation (donor_created). When the payment arrives
(app.payments.recording) the declaration becomes the affiliation of a record this
donation created, or holds the gift for a reviewer if it differs from an existing one.

The gift is previewed with record_gift(dry_run=True). A reject stops here, before Stripe
is asked for anything; otherwise the pending donation is stored and its id goes to
Checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db.locking import ledger_batch, ledger_write
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.declarations import declared_title
from app.ledger.facts import CoveredOrganizations
from app.ledger.gifts import record_gift
from app.ledger.identity import covered_lab_named
from app.ledger.parties import create_donor, same_email_donors
from app.ledger.search import OrganizationNames
from models import Donor, OnlineDonation, Organization
from models.money import display_amount, format_amount
from models.schemas import DonorCreate, GiftCreate
from policies import AffiliationFact, Evaluation, Policy
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
    """A covered organisation whose name or alias is the employer typed: exactly (case and
    surrounding blanks aside), else once legal forms, accents and punctuation are set aside
    ("Halcyon Labs, Inc." is Halcyon Labs): a declared lab employer screens as that lab."""
    if not (employer or "").strip():
        return None
    covered = CoveredOrganizations(session)
    return next((org_id for org_id in OrganizationNames(session).named_or_aliased(employer)
                 if covered.covered(org_id)), None) or covered_lab_named(session, employer)


def _person(session: Session, decl: Declaration) -> tuple[Donor, bool]:
    """The donor with the e-mail typed, or a new bare record; and whether it is new."""
    # The same lookup that refuses a second record for a recorded address (stripped and
    # case-folded, indexed; a merged record stands for its survivor).
    same = same_email_donors(session, decl.email)
    if same:
        return session.get(Donor, same[0][0]), False
    return create_donor(session, DonorCreate(type="person", name=decl.name, email=decl.email,
                                             anonymous=decl.anonymous), DONATE_FORM), True


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


def declared_role(session: Session, lab_id: int | None, senior: bool, on: date, *,
                  declared: bool = True) -> AffiliationFact | None:
    """A declared lab role as the policy reads it: from the given day, screened as if true.
    declared=False: about to become the record of a donor this donation creates."""
    covered = CoveredOrganizations(session)
    if lab_id is None or not covered.covered(lab_id):
        return None
    return AffiliationFact(
        organization=covered.name(lab_id) or f"organisation {lab_id}", covered=True,
        kind="employee", title=declared_title(senior), senior_decision_maker=senior,
        start_date=on, declared=declared)


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
    """Preview the gift with the declaration screened as if true, and store the pending
    donation (with its declaration) unless refused. No donor record gains anything here."""
    lab_id = decl.lab_id or lab_by_name(session, decl.employer)
    with ledger_batch(session):
        donor, created = _person(session, decl)
        payer = _daf_sponsor(session, decl.daf_sponsor or "") if decl.via_daf else donor
        donor_id, payer_id = donor.id, payer.id
    # A record this form just created has nothing on file to differ from: its declaration
    # is what the record will say once paid, so it is screened as on file, not as a claim.
    role = declared_role(session, lab_id, decl.senior, today, declared=not created)

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
    ), DONATE_FORM, policy, reporting_currency, dry_run=True,
        declared={donor_id: role} if role else None)
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

    with ledger_write(session):
        donation = OnlineDonation(
            donor_id=donor_id, payer_donor_id=payer_id, amount_minor=decl.amount_minor,
            currency=decl.currency, frequency=decl.frequency, declared_employer=decl.employer,
            declared_lab_id=lab_id, declared_senior=decl.senior, donor_created=created,
            declaration_state="declared" if lab_id is not None else None, via_daf=decl.via_daf,
            daf_sponsor=decl.daf_sponsor if decl.via_daf else None,
            daf_advisor=decl.daf_advisor if decl.via_daf else None, anonymous=decl.anonymous,
            preview_outcome=evaluation.outcome, policy_version=evaluation.policy_version,
        )
        session.add(donation)
        session.flush()
        # The declaration is what the policy reads when the money arrives: the chain seals
        # it as stored (app.ledger.row_hashes). Ids and figures only, no names.
        audit.append(session, DONATE_FORM, "donation.started", "online_donation", donation.id, {
            "amount": display_amount(decl.amount_minor, decl.currency),
            "frequency": decl.frequency, "lab_id": lab_id, "senior": decl.senior,
            "preview_outcome": evaluation.outcome,
            "policy_version": evaluation.policy_version,
        }, sealed=[donation])
    return Screening(evaluation.outcome, donation)
