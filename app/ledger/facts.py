"""Gather the plain facts the policy needs from the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from sqlalchemy import bindparam, select
from sqlmodel import Session

from app.ledger.identity import MatchFinder
from models import Affiliation, Donor, Organization
from policies import AffiliationFact, GiftFacts, MatchFact, Party

#: Who else a donor may be: MatchFinder (queries) or MatchIndex (a batch's, in memory).
Matcher = Callable[[Donor], tuple[MatchFact, ...]]

PPM = 1_000_000


class CoveredOrganizations:
    """Answers "is this organisation a covered lab or an affiliate of one?" with memo.

    It keeps the organisations it has seen: the session's identity map holds objects only
    weakly, so an organisation nobody references is dropped at once and the next
    session.get would read it again (it did: twice per affiliation, for name and covered).
    One instance lives for one screening, inside its transaction.
    """

    def __init__(self, session: Session):
        self.session = session
        self._memo: dict[int, bool] = {}
        self._orgs: dict[int, Organization | None] = {}

    def remember(self, org: Organization) -> None:
        """An organisation loaded by the caller's own query (with the affiliations): an
        Organization, or anything with its id, name, covered_lab and parent_id."""
        self._orgs[org.id] = org

    def knows(self, organization_id: int) -> bool:
        return organization_id in self._orgs

    def _get(self, organization_id: int) -> Organization | None:
        if organization_id not in self._orgs:
            self._orgs[organization_id] = self.session.get(Organization, organization_id)
        return self._orgs[organization_id]

    def covered(self, organization_id: int | None) -> bool:
        if organization_id is None:
            return False
        if organization_id not in self._memo:
            seen: set[int] = set()
            current = self._get(organization_id)
            result = False
            while current is not None and current.id not in seen:
                if current.covered_lab:
                    result = True
                    break
                seen.add(current.id)
                current = self._get(current.parent_id) if current.parent_id else None
            self._memo[organization_id] = result
        return self._memo[organization_id]

    def name(self, organization_id: int | None) -> str | None:
        org = self._get(organization_id) if organization_id else None
        return org.name if org else None


@dataclass(frozen=True)
class Share:
    """An attribution before it is stored: donor and fraction in millionths."""

    donor_id: int
    fraction_ppm: int
    basis: str = "explicit"


_AFFILIATIONS = (
    select(Affiliation, Organization)
    .join(Organization, Organization.id == Affiliation.organization_id)
    .where(Affiliation.donor_id == bindparam("donor_id"))
    .order_by(Affiliation.id)
)


#: A donor's affiliations, each with its organisation, in affiliation id order.
Affiliations = list[tuple[Affiliation, Organization]]

DONOR_WITH_AFFILIATIONS = (
    select(Donor, Affiliation, Organization)
    .outerjoin(Affiliation, Affiliation.donor_id == Donor.id)
    .outerjoin(Organization, Organization.id == Affiliation.organization_id)
    .where(Donor.id == bindparam("donor_id"))
    .order_by(Affiliation.id)
)


#: The same for many donors (add the WHERE on Donor.id), ordered by donor, then affiliation.
DONORS_WITH_AFFILIATIONS = (
    select(Donor, Affiliation, Organization)
    .outerjoin(Affiliation, Affiliation.donor_id == Donor.id)
    .outerjoin(Organization, Organization.id == Affiliation.organization_id)
    .order_by(Donor.id, Affiliation.id)
)


def donor_with_affiliations(rows) -> tuple[Donor | None, Affiliations]:
    """The donor and its affiliations from the rows of DONOR_WITH_AFFILIATIONS (donor,
    affiliation or None, organisation or None, then any columns a caller added): one read
    where party() alone makes two, the donor and then _AFFILIATIONS."""
    if not rows:
        return None, []
    return rows[0][0], [(row[1], row[2]) for row in rows if row[1] is not None]


def party(session: Session, covered: CoveredOrganizations, donor: Donor,
          fraction: Fraction = Fraction(1), affiliations: Affiliations | None = None,
          matcher: Matcher | None = None) -> Party:
    """The policy's facts about one donor. `affiliations`, if given, are the donor's as
    donor_with_affiliations() read them in the same transaction; else they are read here.
    matcher: finds the other records that may be this person (a MatchFinder if none)."""
    facts: tuple[AffiliationFact, ...] = ()
    if donor.type == "person":
        # Each affiliation with its organisation, in one read, so the covered-lab lookups
        # below find the organisations loaded (only an affiliate's parent is read apart).
        if affiliations is None:
            affiliations = list(session.execute(_AFFILIATIONS, {"donor_id": donor.id}))
        rows = []
        for aff, org in affiliations:
            covered.remember(org)
            rows.append(aff)
        facts = tuple(
            AffiliationFact(
                organization=covered.name(a.organization_id) or f"organisation {a.organization_id}",
                covered=covered.covered(a.organization_id),
                kind=a.kind,
                title=a.title,
                senior_decision_maker=a.senior_decision_maker,
                start_date=a.start_date,
                end_date=a.end_date,
                title_cleared=a.title_cleared,
            )
            for a in rows
        )
    return Party(
        donor_id=donor.id,
        name=donor.name,
        type=donor.type,
        fraction=fraction,
        organization=covered.name(donor.organization_id),
        organization_covered=covered.covered(donor.organization_id),
        affiliations=facts,
        possible_matches=(matcher or MatchFinder(session, covered))(donor),
    )


def gift_facts(
    session: Session,
    *,
    donor: Donor,
    shares: Iterable[Share],
    received_on: date,
    reporting_amount_minor: int,
    reporting_currency: str,
    kind: str,
    purpose: str,
    is_matching_gift: bool,
    payer_affiliations: Affiliations | None = None,
    covered: CoveredOrganizations | None = None,
    matcher: Matcher | None = None,
) -> GiftFacts:
    """covered: organisations already looked up, kept by a caller screening many gifts in
    one transaction under the ledger lock (where they cannot change). matcher: the same
    for possible matches (a batch's MatchIndex); a MatchFinder if none."""
    covered = covered or CoveredOrganizations(session)
    matcher = matcher or MatchFinder(session, covered)
    payer = party(session, covered, donor, affiliations=payer_affiliations, matcher=matcher)
    attributed = tuple(
        # Most gifts are the payer's own money: reuse the payer's facts (one read, not two).
        dataclasses.replace(payer, fraction=Fraction(s.fraction_ppm, PPM))
        if s.donor_id == donor.id
        else party(session, covered, session.get(Donor, s.donor_id), Fraction(s.fraction_ppm, PPM),
                   matcher=matcher)
        for s in shares
    )
    return GiftFacts(
        received_on=received_on,
        amount_minor=reporting_amount_minor,
        currency=reporting_currency,
        kind=kind,
        purpose=purpose,
        payer=payer,
        attributions=attributed,
        is_matching_gift=is_matching_gift,
    )


def with_declared(facts: GiftFacts,
                  declared: dict[int, AffiliationFact | tuple[AffiliationFact, ...]] | None
                  ) -> GiftFacts:
    """The facts with roles declared on the donate form added to those donors' affiliations:
    screened as if true, and (AffiliationFact.declared) seen by rule declaration_differs.
    A donor may have several (this form's and ones refused before, app.payments.screening)."""
    if not declared:
        return facts

    def add(p: Party) -> Party:
        role = declared.get(p.donor_id)
        roles = role if isinstance(role, tuple) else (role,) if role else ()
        return dataclasses.replace(p, affiliations=(*p.affiliations, *roles)) if roles else p

    return dataclasses.replace(facts, payer=add(facts.payer) if facts.payer else None,
                               attributions=tuple(add(p) for p in facts.attributions))
