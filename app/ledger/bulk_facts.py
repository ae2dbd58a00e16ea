"""The policy's facts for many donors at once, from a handful of queries.

Builds the same Party and GiftFacts values as app.ledger.facts, for callers that need
them for hundreds or thousands of gifts (the what-if replay, the forecast): one query for
the donors, one for their affiliations and one for the organisations, instead of a few
per gift, and the possible matches from one MatchIndex. Reads only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from fractions import Fraction

from sqlalchemy import Row, select
from sqlmodel import Session

from app.ledger.facts import CoveredOrganizations, RelativeIndex
from app.ledger.identity import MatchIndex
from models import Affiliation, Donor, Organization
from policies import AffiliationFact, GiftFacts, Party

PPM = 1_000_000
#: Ids per IN (...) list: far below SQLite's and PostgreSQL's parameter limits.
CHUNK = 5000


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


class BulkFacts:
    def __init__(self, session: Session, donor_ids: Iterable[int]):
        ids = sorted(set(donor_ids))
        self.donors: dict[int, Donor] = {}
        self._affiliations: dict[int, list[Affiliation]] = {i: [] for i in ids}
        for chunk in _chunks(ids):
            for donor in session.execute(select(Donor).where(Donor.id.in_(chunk))).scalars():
                self.donors[donor.id] = donor
            for aff in session.execute(
                select(Affiliation).where(Affiliation.donor_id.in_(chunk))
                .order_by(Affiliation.id)
            ).scalars():
                self._affiliations[aff.donor_id].append(aff)
        # The organisations these donors are or are affiliated with, and their parents up the
        # chain, by primary key (rows with id, name, covered_lab, parent_id), rather than
        # every organisation of the ledger.
        self._orgs: dict[int, Row] = {}
        wanted = {d.organization_id for d in self.donors.values()}
        wanted |= {a.organization_id for affs in self._affiliations.values() for a in affs}
        tried: set[int] = set()
        while wanted := {i for i in wanted if i is not None and i not in tried}:
            tried |= wanted
            for chunk in _chunks(sorted(wanted)):
                for org in session.execute(
                    select(Organization.id, Organization.name, Organization.covered_lab,
                           Organization.parent_id).where(Organization.id.in_(chunk))
                ):
                    self._orgs[org.id] = org
            wanted = {self._orgs[i].parent_id for i in wanted if i in self._orgs}
        self._covered: dict[int, bool] = {}
        self._parties: dict[tuple[int, Fraction], Party] = {}
        #: Who else each donor may be: every lab-affiliated record, read once.
        self._matches = MatchIndex(session)
        #: Whom each donor is related to: every relationship, read once (few).
        self._relatives = RelativeIndex(session, CoveredOrganizations(session))

    def covered(self, organization_id: int | None) -> bool:
        """A covered lab, or an affiliate of one (the parent chain reaches a lab)."""
        if organization_id is None:
            return False
        if organization_id not in self._covered:
            seen: set[int] = set()
            current = self._orgs.get(organization_id)
            result = False
            while current is not None and current.id not in seen:
                if current.covered_lab:
                    result = True
                    break
                seen.add(current.id)
                current = self._orgs.get(current.parent_id) if current.parent_id else None
            self._covered[organization_id] = result
        return self._covered[organization_id]

    def _org_name(self, organization_id: int | None) -> str | None:
        org = self._orgs.get(organization_id) if organization_id else None
        return org.name if org else None

    def party(self, donor_id: int, fraction: Fraction = Fraction(1)) -> Party:
        key = (donor_id, fraction)
        if key not in self._parties:
            donor = self.donors[donor_id]
            affiliations: tuple[AffiliationFact, ...] = ()
            if donor.type == "person":
                affiliations = tuple(
                    AffiliationFact(
                        organization=self._org_name(a.organization_id)
                        or f"organisation {a.organization_id}",
                        covered=self.covered(a.organization_id),
                        kind=a.kind,
                        title=a.title,
                        senior_decision_maker=a.senior_decision_maker,
                        start_date=a.start_date,
                        end_date=a.end_date,
                        title_cleared=a.title_cleared,
                    )
                    for a in self._affiliations.get(donor_id, ())
                )
            self._parties[key] = Party(
                donor_id=donor.id,
                name=donor.name,
                type=donor.type,
                fraction=fraction,
                organization=self._org_name(donor.organization_id),
                organization_covered=self.covered(donor.organization_id),
                affiliations=affiliations,
                possible_matches=self._matches(donor),
                relatives=self._relatives(donor),
            )
        return self._parties[key]

    def gift_facts(
        self,
        *,
        donor_id: int,
        shares: Iterable[tuple[int, int]],
        received_on: date,
        reporting_amount_minor: int,
        reporting_currency: str,
        kind: str = "cash",
        purpose: str = "general",
        is_matching_gift: bool = False,
    ) -> GiftFacts:
        """shares: (donor_id, fraction in millionths) for each attribution."""
        return GiftFacts(
            received_on=received_on,
            amount_minor=reporting_amount_minor,
            currency=reporting_currency,
            kind=kind,
            purpose=purpose,
            payer=self.party(donor_id),
            attributions=tuple(self.party(d, Fraction(ppm, PPM)) for d, ppm in shares),
            is_matching_gift=is_matching_gift,
        )
