"""A reviewer's answers about possible matches (rule possible_match).

- different(): the two records are different people. Recorded once per pair
  (IdentityVerdict), audited; the pair is never flagged again (MatchFact.different).
- same(): the same person. Two donor records are merged (app.ledger.merge.merge_donors,
  the survivor being the older record); a roster entry's role is recorded on the donor as
  an affiliation (which re-screens the donor's gifts it covers).

The held gift itself is then decided on the review page as any held gift.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlmodel import Session

from app.db import rows
from app.db.locking import ledger_batch, ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.identity import MatchFinder, pair_key
from app.ledger.merge import merge_donors
from app.ledger.parties import add_affiliation
from models import Decision, Donor, IdentityVerdict, RosterEntry
from models.schemas import AffiliationCreate
from policies import MatchFact, Policy
from policies.identity import Signals, match_score, score_text

RECORDS = ("donor", "roster")


@dataclass(frozen=True)
class PossibleMatch:
    fact: MatchFact
    score: str
    #: At or above the policy's threshold.
    probable: bool
    #: Covered-lab organisations of the other record, whatever the date.
    labs: list[str]


def possible_matches(session: Session, donor_id: int, policy: Policy) -> list[PossibleMatch]:
    """The lab-affiliated records that may be this donor, best first, with their scores
    under the policy (those resolved as different people included, marked)."""
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise NotFound("donor", donor_id)
    settings = policy.settings["possible_match"]
    found = []
    for fact in MatchFinder(session)(donor):
        score = match_score(Signals(fact.name_similarity, fact.same_email, fact.same_phone,
                                    fact.same_address, fact.same_initial),
                            phone_bonus=settings["phone_bonus"],
                            address_bonus=settings["address_bonus"],
                            initial_score=settings.get("initial_score"))
        found.append(PossibleMatch(fact, score_text(score), score >= settings["threshold"],
                                   sorted({a.organization for a in fact.affiliations
                                           if a.covered})))
    return sorted(found, key=lambda m: (-Decimal(m.score), m.fact.record, m.fact.record_id))


def _other(session: Session, donor_id: int, record: str, record_id: int):
    if record not in RECORDS:
        raise ValidationFailed({"record": [f"must be one of {', '.join(RECORDS)}"]})
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise NotFound("donor", donor_id)
    other = session.get(Donor if record == "donor" else RosterEntry, record_id)
    if other is None:
        raise NotFound("donor" if record == "donor" else "roster entry", record_id)
    if record == "donor" and record_id == donor_id:
        raise ValidationFailed({"record_id": ["a donor record is always the same person as "
                                              "itself"]})
    return donor, other


def _verdict(session: Session, donor_id: int, record: str, record_id: int, verdict: str,
             reason: str, actor: Actor) -> IdentityVerdict:
    pair = pair_key(donor_id, record, record_id)
    existing = session.execute(select(IdentityVerdict).where(IdentityVerdict.pair == pair)
                               ).scalar_one_or_none()
    if existing is not None:
        raise NotAllowed(f"this pair was already answered: {existing.verdict} "
                         f"(verdict {existing.id})")
    row = rows.insert(session, rows.new(
        IdentityVerdict, pair=pair, donor_id=donor_id,
        other_donor_id=record_id if record == "donor" else None,
        roster_entry_id=record_id if record == "roster" else None,
        verdict=verdict, reason=reason, decided_by_id=actor.user_id))
    audit.append(session, actor, f"identity.{verdict}", "donor", donor_id, {
        "verdict_id": row.id, "pair": pair, "reason": reason}, sealed=[row])
    return row


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not 3 <= len(text) <= 2000:
        raise ValidationFailed({"reason": ["say why, in 3 to 2000 characters"]})
    return text


def different(session: Session, donor_id: int, record: str, record_id: int, reason: str | None,
              actor: Actor) -> IdentityVerdict:
    """Record that the donor and the other record are different people."""
    text = _reason(reason)
    with ledger_write(session):
        _other(session, donor_id, record, record_id)
        return _verdict(session, donor_id, record, record_id, "different", text, actor)



def same(session: Session, donor_id: int, record: str, record_id: int, reason: str | None,
         actor: Actor, policy: Policy) -> tuple[IdentityVerdict | None, list[Decision]]:
    """The same person. A roster entry: its role becomes an affiliation of the donor (the
    donor's gifts it covers are re-screened) and the pair is recorded as "same". Another
    donor: the two records are merged, the older surviving."""
    text = _reason(reason)
    if record == "donor":
        with ledger_write(session):
            _other(session, donor_id, record, record_id)
        # The merge is its own transaction (moving gifts, affiliations, pledges and
        # declarations, re-screening, auditing); the older record survives.
        survivor, duplicate = sorted((donor_id, record_id))
        merge_donors(session, survivor, duplicate, actor, policy)
        return None, []
    # One transaction for the verdict and the role it puts on the donor (whose own ledger
    # write, with its re-screens, joins it).
    with ledger_batch(session):
        _donor, entry = _other(session, donor_id, record, record_id)
        verdict = _verdict(session, donor_id, record, record_id, "same", text, actor)
        _aff, rescreened = add_affiliation(session, donor_id, AffiliationCreate(
            organization_id=entry.organization_id, kind="employee", title=entry.title,
            senior_decision_maker=entry.senior_decision_maker, start_date=entry.start_date,
            end_date=entry.end_date), actor, policy)
    return verdict, rescreened
