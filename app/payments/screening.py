"""Screening an online donation before any payment.

What someone types on the public form about themselves (a lab employer, a senior role)
is a claim, not a fact: anyone can type anyone's e-mail address. It is stored with the
pending donation and screened as if true (conservatively), but it changes no donor
record here. The donor is found by e-mail; for an e-mail no donor has, no record is made
here (anonymous visitors must not fill the donor table): the name and e-mail typed stay on
the pending donation and the record is made when the payment arrives
(app.payments.recording), where the declaration becomes the affiliation of a record this
donation created, or holds the gift for a reviewer if it differs from an existing one.
A declaration whose gift is refused here is kept by its e-mail (refused_declaration).

The gift is previewed with record_gift(dry_run=True). A reject stops here, before Stripe
is asked for anything; otherwise the pending donation is stored and its id goes to
Checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from app.db import rows
from app.db.locking import ledger_write
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.declarations import declared_title, keep_refusal, waiting_refusals
from app.ledger.facts import CoveredOrganizations
from app.ledger.gifts import record_gift
from app.ledger.identity import covered_lab_named
from app.ledger.parties import new_donor_values, same_email_donors
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
    #: The open campaign the donate link named (checked by the page); its gifts carry it.
    campaign_id: int | None = None


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


def daf_sponsor_id(session: Session, name: str) -> int | None:
    """The donor-advised fund sponsor recorded under this name, if any."""
    return session.execute(
        select(Donor.id)
        .where(Donor.type == "organization", Donor.category == "daf_sponsor",
               func.lower(Donor.name) == name.strip().lower())
        .order_by(Donor.id).limit(1)
    ).scalar_one_or_none()


def provisional_donor(session: Session, data: DonorCreate) -> int:
    """A donor row for a preview only, inside its transaction: the dry run's rollback removes
    it (record_gift's provisional). No audit entry: nothing is recorded."""
    return rows.insert(session, rows.new(Donor, **new_donor_values(data))).id


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
    donation (with its declaration) unless refused. Nothing else is written: no donor record
    gains anything, and none is created (a new person's record is made when the payment
    arrives; the preview screens a provisional one that its rollback removes).

    Declarations refused before for the same e-mail (kept in refused_declaration): for an
    e-mail no donor has, they are screened as if true too, like this form's (the person
    who ticked "senior" and was refused cannot untick it and pass); for an existing
    donor's e-mail they never refuse (anyone can type anyone's address, and a stranger must
    not be able to stop a real donor's gifts): the gift is previewed as held, and held for
    a reviewer when the payment arrives (app.payments.recording)."""
    lab_id = decl.lab_id or lab_by_name(session, decl.employer)
    same = same_email_donors(session, decl.email)
    donor_id = same[0][0] if same else None
    sponsor_id = daf_sponsor_id(session, decl.daf_sponsor or "") if decl.via_daf else None
    refused = waiting_refusals(session, decl.email, donor_id)
    refused_roles = [(r.declared_lab_id, r.declared_senior) for r in refused]

    foreign = decl.currency != reporting_currency
    if foreign and preview_rate is None:
        raise ValueError(f"no preview rate for {decl.currency}")

    def preview_gift(session: Session) -> tuple[GiftCreate, dict | None]:
        person_id = donor_id
        if person_id is None:
            person_id = provisional_donor(session, DonorCreate(
                type="person", name=decl.name, email=decl.email, anonymous=decl.anonymous))
        payer_id = person_id
        if decl.via_daf:
            payer_id = sponsor_id or provisional_donor(session, DonorCreate(
                type="organization", name=(decl.daf_sponsor or "").strip(),
                category="daf_sponsor"))
        # A record this donation would create has nothing on file to differ from: its
        # declaration is what the record will say once paid, so it screens as on file.
        new = donor_id is None
        roles = [declared_role(session, lab_id, decl.senior, today, declared=not new)]
        if new:
            roles += [declared_role(session, lab, senior, today, declared=False)
                      for lab, senior in refused_roles]
        roles = tuple(r for r in roles if r is not None)
        return GiftCreate(
            donor_id=payer_id,
            amount=format_amount(decl.amount_minor, decl.currency),
            currency=decl.currency,
            received_on=today,
            method="stripe",
            fx_rate=preview_rate if foreign else None,
            fx_source="indicative rate, preview before payment" if foreign else None,
            attributions=[{"donor_id": person_id, "fraction": "1"}] if decl.via_daf else None,
        ), {person_id: roles} if roles else None

    preview = record_gift(session, None, DONATE_FORM, policy, reporting_currency,
                          dry_run=True, provisional=preview_gift)
    evaluation = preview.evaluation

    if evaluation.outcome == "reject":
        rules = [f.rule for f in evaluation.fired if f.outcome == "reject"]
        with ledger_write(session):
            kept, not_kept = None, None
            if lab_id is not None:
                # One row per e-mail and claim; aged out after a year; at most so many
                # (app.ledger.declarations.keep_refusal).
                kept, not_kept = keep_refusal(session, DONATE_FORM, decl.email, lab_id,
                                              decl.senior, decl.employer, rules,
                                              evaluation.policy_version)
            # The entry names no person (the chain stays free of personal data): the kept
            # declaration, else the donor the e-mail is, else nothing.
            target = (("refused_declaration", kept.id) if kept is not None
                      else ("donor", donor_id) if donor_id is not None else ("donate_form", None))
            audit.append(session, DONATE_FORM, "donation.refused_before_payment", *target, {
                "amount": display_amount(decl.amount_minor, decl.currency),
                "frequency": decl.frequency,
                "policy_version": evaluation.policy_version,
                "rules": rules,
                **({"lab_id": lab_id, "senior": decl.senior} if kept is not None else {}),
                **({"declaration_not_kept": not_kept} if not_kept else {}),
            })
        return Screening("reject", None, _refusals(evaluation, policy))

    outcome = evaluation.outcome
    if refused and donor_id is not None:
        outcome = "hold"  # held for a reviewer at the payment (recording.hold_for_refusals)
    with ledger_write(session):
        donation = OnlineDonation(
            donor_id=donor_id, payer_donor_id=sponsor_id if decl.via_daf else donor_id,
            donor_name=decl.name, donor_email=decl.email,
            amount_minor=decl.amount_minor,
            currency=decl.currency, frequency=decl.frequency, declared_employer=decl.employer,
            declared_lab_id=lab_id, declared_senior=decl.senior, donor_created=False,
            declaration_state="declared" if lab_id is not None else None, via_daf=decl.via_daf,
            daf_sponsor=decl.daf_sponsor if decl.via_daf else None,
            daf_advisor=decl.daf_advisor if decl.via_daf else None, anonymous=decl.anonymous,
            preview_outcome=outcome, policy_version=evaluation.policy_version,
            campaign_id=decl.campaign_id,
        )
        session.add(donation)
        session.flush()
        # The declaration is what the policy reads when the money arrives: the chain seals
        # it as stored (app.ledger.row_hashes). Ids and figures only, no names.
        audit.append(session, DONATE_FORM, "donation.started", "online_donation", donation.id, {
            "amount": display_amount(decl.amount_minor, decl.currency),
            "frequency": decl.frequency, "lab_id": lab_id, "senior": decl.senior,
            "preview_outcome": outcome,
            "policy_version": evaluation.policy_version,
            # Not in the donation's seal (its columns predate it): recorded here instead.
            **({"campaign_id": decl.campaign_id} if decl.campaign_id is not None else {}),
        }, sealed=[donation])
    return Screening(outcome, donation)
