"""Gather the plain facts the policy needs from the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from sqlalchemy import and_, bindparam, exists, or_, select, union_all
from sqlmodel import Session

from app.db.rows import column_index, from_columns, width
from app.ledger.identity import MatchFinder, _Organization
from models import Affiliation, Donor, Organization, Relationship
from policies import AffiliationFact, GiftFacts, MatchFact, Party, RelativeFact

#: Who else a donor may be: MatchFinder (queries) or MatchIndex (a batch's, in memory).
Matcher = Callable[[Donor], tuple[MatchFact, ...]]
#: Whom a donor is related to: RelativeFinder (a query) or RelativeIndex (a batch's).
Relatives = Callable[[Donor], tuple[RelativeFact, ...]]

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


#: Whether the donor has any relationship (a column added to the door's first read, so a
#: donor with none costs no statement of its own: tests/api/test_gift_statements.py).
HAS_RELATIONSHIPS = exists().where(or_(
    Relationship.donor_id == bindparam("donor_id"),
    Relationship.related_donor_id == bindparam("donor_id"))).label("has_relationships")


def _relatives_statement(donor_ids: list[int] | None):
    """Each relationship of the donors (all donors: None) seen from each end, with the other
    person's name and affiliations that may be to a covered organisation (a lab, or an
    organisation with a parent: CoveredOrganizations follows the parents)."""
    columns = (Relationship.id, Relationship.kind, Relationship.start_date,
               Relationship.end_date)
    near = select(Relationship.donor_id.label("me"),
                  Relationship.related_donor_id.label("other"), *columns)
    far = select(Relationship.related_donor_id.label("me"),
                 Relationship.donor_id.label("other"), *columns)
    if donor_ids is not None:
        near = near.where(Relationship.donor_id.in_(donor_ids))
        far = far.where(Relationship.related_donor_id.in_(donor_ids))
    ends = union_all(near, far).subquery()
    return (
        select(ends.c.me, ends.c.other, ends.c.id, ends.c.kind, ends.c.start_date,
               ends.c.end_date, Donor.name, Donor.type, Affiliation.organization_id,
               Affiliation.kind.label("affiliation_kind"), Affiliation.title,
               Affiliation.senior_decision_maker, Affiliation.start_date.label("aff_start"),
               Affiliation.end_date.label("aff_end"),
               Organization.name.label("organization_name"), Organization.covered_lab,
               Organization.parent_id)
        .join(Donor, Donor.id == ends.c.other)
        .outerjoin(Affiliation, Affiliation.donor_id == ends.c.other)
        # An organisation neither a lab nor with a parent is never covered: left unread.
        .outerjoin(Organization, and_(Organization.id == Affiliation.organization_id,
                                      or_(Organization.covered_lab.is_(True),
                                          Organization.parent_id.is_not(None))))
        .order_by(ends.c.me, ends.c.id, Affiliation.id)
    )


def relatives_of(session: Session, covered: CoveredOrganizations,
                 donor_ids: list[int] | None) -> dict[int, tuple[RelativeFact, ...]]:
    """The relatives of each donor (every donor's: None), in relationship id order, each with
    its affiliations to covered organisations. One statement."""
    found: dict[int, dict[int, tuple[dict, list[AffiliationFact]]]] = {}
    for row in session.execute(_relatives_statement(donor_ids)).all():
        mine = found.setdefault(row.me, {})
        if row.id not in mine:
            mine[row.id] = ({"donor_id": row.other, "name": row.name, "kind": row.kind,
                             "start_date": row.start_date, "end_date": row.end_date,
                             "person": row.type == "person"}, [])
        if row.organization_name is None:  # no affiliation, or one never covered
            continue
        if not covered.knows(row.organization_id):
            covered.remember(_Organization(row.organization_id, row.organization_name,
                                           row.covered_lab, row.parent_id))
        if covered.covered(row.organization_id):
            mine[row.id][1].append(AffiliationFact(
                organization=row.organization_name, covered=True, kind=row.affiliation_kind,
                title=row.title, senior_decision_maker=row.senior_decision_maker,
                start_date=row.aff_start, end_date=row.aff_end))
    return {
        me: tuple(RelativeFact(
            donor_id=values["donor_id"], name=values["name"], kind=values["kind"],
            start_date=values["start_date"], end_date=values["end_date"],
            affiliations=tuple(affs) if values["person"] else ())
            for values, affs in by_id.values())
        for me, by_id in found.items()
    }


class RelativeFinder:
    """The relatives of one donor at a time, one query each (a screening's)."""

    def __init__(self, session: Session, covered: CoveredOrganizations):
        self.session = session
        self.covered = covered

    def __call__(self, donor: Donor) -> tuple[RelativeFact, ...]:
        if donor.type != "person" or donor.id is None:
            return ()
        return relatives_of(self.session, self.covered, [donor.id]).get(donor.id, ())


class RelativeIndex:
    """Every relationship read once, for a batch screened under the ledger lock (where none
    can change). Relationships are few beside gifts."""

    def __init__(self, session: Session, covered: CoveredOrganizations):
        self._by_donor = relatives_of(session, covered, None)

    def __call__(self, donor: Donor) -> tuple[RelativeFact, ...]:
        if donor.type != "person" or donor.id is None:
            return ()
        return self._by_donor.get(donor.id, ())


def donor_with_affiliations(rows) -> tuple[Donor | None, Affiliations]:
    """The donor and its affiliations from the rows of DONOR_WITH_AFFILIATIONS (donor,
    affiliation or None, organisation or None, then any columns a caller added): one read
    where party() alone makes two, the donor and then _AFFILIATIONS."""
    if not rows:
        return None, []
    return rows[0][0], [(row[1], row[2]) for row in rows if row[1] is not None]


def donor_with_affiliations_from_columns(rows) -> tuple[Donor | None, Affiliations]:
    """The same as donor_with_affiliations(), from DONOR_WITH_AFFILIATIONS run on the
    session's connection (plain columns: the donor's, the affiliation's, the organisation's,
    then any a caller added). The objects are attached to no session: facts to read, not to
    change."""
    if not rows:
        return None, []
    donor_end = width(Donor)
    affiliation_end = donor_end + width(Affiliation)
    organization_end = affiliation_end + width(Organization)
    donor = from_columns(Donor, rows[0][:donor_end])
    affiliation_id = donor_end + column_index(Affiliation, "id")
    return donor, [
        (from_columns(Affiliation, row[donor_end:affiliation_end]),
         from_columns(Organization, row[affiliation_end:organization_end]))
        for row in rows if row[affiliation_id] is not None]  # outer join: no affiliation


def party(session: Session, covered: CoveredOrganizations, donor: Donor,
          fraction: Fraction = Fraction(1), affiliations: Affiliations | None = None,
          matcher: Matcher | None = None,
          relatives: tuple[RelativeFact, ...] | Relatives | None = None) -> Party:
    """The policy's facts about one donor. `affiliations`, if given, are the donor's as
    donor_with_affiliations() read them in the same transaction; else they are read here.
    matcher: finds the other records that may be this person (a MatchFinder if none).
    relatives: the donor's relatives, already known (a tuple: the door knows a donor has
    none from its first read), or what finds them (a RelativeFinder if None)."""
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
        relatives=relatives if isinstance(relatives, tuple)
        else (relatives or RelativeFinder(session, covered))(donor),
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
    payer_relatives: tuple[RelativeFact, ...] | None = None,
    relatives: Relatives | None = None,
) -> GiftFacts:
    """covered: organisations already looked up, kept by a caller screening many gifts in
    one transaction under the ledger lock (where they cannot change). matcher: the same
    for possible matches (a batch's MatchIndex); a MatchFinder if none. payer_relatives:
    the payer's relatives if the caller knows them (() when its first read found none);
    relatives: what finds the others' (a batch's RelativeIndex; a RelativeFinder if none)."""
    covered = covered or CoveredOrganizations(session)
    matcher = matcher or MatchFinder(session, covered)
    relatives = relatives or RelativeFinder(session, covered)
    payer = party(session, covered, donor, affiliations=payer_affiliations, matcher=matcher,
                  relatives=payer_relatives if payer_relatives is not None else relatives)
    attributed = tuple(
        # Most gifts are the payer's own money: reuse the payer's facts (one read, not two).
        dataclasses.replace(payer, fraction=Fraction(s.fraction_ppm, PPM))
        if s.donor_id == donor.id
        else party(session, covered, session.get(Donor, s.donor_id), Fraction(s.fraction_ppm, PPM),
                   matcher=matcher, relatives=relatives)
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
