"""Who a donor probably is: the records that may be the same person, for the policy's facts.

A gift is screened against every record that is probably its donor (issue 11 A): another
donor record or a roster entry with an affiliation to a covered lab. Only such records can
change a decision, so only they are candidates, and only those sharing a blocking key with
the donor (policies.identity.block_keys, the normalised e-mail or phone) are read:

- MatchFinder, for one screening (the door, a review, a re-screen): one indexed query for
  donors and roster entries per person screened, whatever the ledger's size;
- MatchIndex, for a batch (GiftIntake, the CSV import's check, the what-if replay): every
  candidate record read once, then matched in memory.

Both return the same MatchFacts in the same order (tests/ledger/test_identity.py), which
the rule possible_match (policies.rules) turns into a decision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import bindparam, exists, literal_column, null, or_, select, union_all, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from app.db.lookups import one_of
from models import Affiliation, Donor, IdentityVerdict, Organization, RosterEntry
from policies import AffiliationFact, MatchFact
from policies.identity import (
    Identity,
    Signals,
    SignalsAgainst,
    block_keys,
    email_key,
    initial_keys,
    initial_prefixes,
    organization_key,
    phone_key,
    signals,
)


def donor_keys(name: str | None, email: str | None, phone: str | None) -> dict:
    """The blocking-key columns of a donor with these facts (stored with every write)."""
    a, b = block_keys(name)
    return {"email_key": email_key(email), "name_key_a": a, "name_key_b": b,
            "phone_key": phone_key(phone)}


def roster_keys(name: str) -> dict:
    a, b = block_keys(name)
    return {"name_key_a": a, "name_key_b": b}


def key_range(name: str | None) -> tuple[str | None, str | None]:
    """The blocking keys a name written with an initial finds as prefixes ("M. Chen":
    "chen|m" up to "chen|mzz", every key of a Chen whose given name starts with M: keys
    hold at most two letters after the bar, digits and a to z); (None, None) for others.
    The first such key only: a name of two initials ("M C") has two, and is no name."""
    prefixes = initial_prefixes(name)
    return (prefixes[0], prefixes[0] + "zz") if prefixes else (None, None)


def _initial_forms(key: str | None) -> set[str]:
    """What MatchIndex files a candidate's key under, besides the key itself: its one-letter
    form, which key_range's prefix equals."""
    return {f"i:{key[:key.index('|') + 2]}"} if key and not key.endswith("|") else set()


def pair_key(donor_id: int, record: str, record_id: int) -> str:
    """The one way a pair of records is written (IdentityVerdict.pair)."""
    if record == "donor":
        low, high = sorted((donor_id, record_id))
        return f"donor:{low}|donor:{high}"
    return f"donor:{donor_id}|roster:{record_id}"


def possibly_covered_tie(donor_id):
    """SQL: the donor whose id is `donor_id` (a column or value) has an affiliation to a
    covered lab or to an organisation with a parent. Every covered organisation is one or
    the other (an affiliate is covered through its parent), so this holds for every donor
    with a covered affiliation, and the lookup keeps the exact test (CoveredOrganizations).
    It depends on no date and on no other row than the affiliation and its organisation,
    so only those writes change it (refresh_possibly_covered)."""
    return (select(Affiliation.id)
            .join(Organization, Organization.id == Affiliation.organization_id)
            .where(Affiliation.donor_id == donor_id,
                   or_(Organization.covered_lab.is_(True), Organization.parent_id.is_not(None)))
            .exists())


def refresh_possibly_covered(session: Session, *, donor_ids: Iterable[int] = (),
                             organization_id: int | None = None, every: bool = False) -> None:
    """Set donor.possibly_covered from the affiliations, for the donors given, the donors
    affiliated to `organization_id`, or every donor. Every write of an affiliation (added,
    changed, removed, moved by a merge) and of an organisation's covered_lab or parent
    calls it in its own transaction, after the write is flushed."""
    ids = sorted(set(donor_ids))
    if every:
        where = []
    elif organization_id is not None:
        where = [Donor.id.in_(select(Affiliation.donor_id)
                              .where(Affiliation.organization_id == organization_id))]
    elif ids:
        where = [one_of(session, Donor.id, ids)]
    else:
        return
    # Core UPDATE (no ORM synchronisation): nothing reads the flag from a loaded Donor.
    session.connection().execute(
        update(Donor.__table__).where(*where)
        .values(possibly_covered=possibly_covered_tie(Donor.__table__.c.id)))


def covered_organization_ids(session: Session) -> set[int]:
    """Covered labs and their affiliates (down the parent links). Organisations are few."""
    rows = session.execute(select(Organization.id, Organization.covered_lab,
                                  Organization.parent_id)).all()
    children: dict[int, list[int]] = defaultdict(list)
    for org_id, _covered, parent_id in rows:
        if parent_id is not None:
            children[parent_id].append(org_id)
    found: set[int] = set()
    frontier = [org_id for org_id, covered, _parent in rows if covered]
    while frontier:
        org_id = frontier.pop()
        if org_id not in found:
            found.add(org_id)
            frontier.extend(children[org_id])
    return found


def covered_lab_named(session: Session, text: str | None) -> int | None:
    """A covered organisation whose name or an alias is `text` once legal forms, case,
    accents and punctuation are set aside ("Halcyon Labs, Inc." names "Halcyon Labs"); the
    smallest id if several do."""
    key = organization_key(text)
    if not key:
        return None
    covered = covered_organization_ids(session)
    if not covered:
        return None
    for org_id, name, aliases in session.execute(
        select(Organization.id, Organization.name, Organization.aliases)
        .where(one_of(session, Organization.id, sorted(covered))).order_by(Organization.id)
    ):
        if key in {organization_key(n) for n in [name, *(aliases or [])]}:
            return org_id
    return None


class _Organization(NamedTuple):
    """What CoveredOrganizations needs of an organisation, read beside an affiliation."""

    id: int
    name: str
    covered_lab: bool
    parent_id: int | None


@dataclass(frozen=True)
class _Candidate:
    record: str
    record_id: int
    identity: Identity
    #: Its affiliations to covered organisations: the only ones a rule looks at.
    affiliations: tuple[AffiliationFact, ...]
    keys: tuple[str | None, ...]


def _identity_of(donor: Donor) -> Identity:
    return Identity(donor.name, donor.email, donor.phone, donor.postal_address)


def _fact(candidate: _Candidate, donor: Donor, verdicts: dict[str, str]) -> MatchFact | None:
    # A donor not stored yet (a CSV import's row, checked) has no verdicts.
    verdict = (verdicts.get(pair_key(donor.id, candidate.record, candidate.record_id))
               if donor.id is not None else None)
    if verdict == "same":  # the entry's role is on the donor's own record now
        return None
    sig = signals(_identity_of(donor), candidate.identity)
    if not sig.worth_passing:
        return None
    return MatchFact(
        record=candidate.record, record_id=candidate.record_id, name=candidate.identity.name,
        name_similarity=sig.name_similarity, same_email=sig.same_email,
        same_phone=sig.same_phone, same_address=sig.same_address,
        same_initial=sig.same_initial, affiliations=candidate.affiliations,
        different=verdict == "different",
    )


def _order(facts: Iterable[MatchFact | None]) -> tuple[MatchFact, ...]:
    return tuple(sorted((f for f in facts if f is not None),
                        key=lambda f: (f.record, f.record_id)))


class _Organizations:
    """Names and coverage of organisations, read once (organisations are few)."""

    def __init__(self, session: Session):
        self.covered = covered_organization_ids(session)
        self.names = dict(session.execute(select(Organization.id, Organization.name)).all())

    def affiliation(self, org_id: int, kind: str, title: str | None, senior: bool,
                    start, end) -> AffiliationFact:
        return AffiliationFact(
            organization=self.names.get(org_id) or f"organisation {org_id}",
            covered=org_id in self.covered, kind=kind, title=title,
            senior_decision_maker=senior, start_date=start, end_date=end)


def _donor_candidates(session: Session, orgs: _Organizations, where) -> list[_Candidate]:
    """Person donors matching `where` with an affiliation to a covered organisation, each
    with all its affiliations."""
    if not orgs.covered:
        return []
    lab_affiliated = exists().where(
        Affiliation.donor_id == Donor.id,
        one_of(session, Affiliation.organization_id, sorted(orgs.covered)))
    donors = session.execute(
        select(Donor).where(Donor.type == "person", lab_affiliated, *where)
        .order_by(Donor.id)).scalars().all()
    if not donors:
        return []
    affiliations: dict[int, list[AffiliationFact]] = defaultdict(list)
    for aff in session.execute(
        select(Affiliation).where(one_of(session, Affiliation.donor_id, [d.id for d in donors]))
        .order_by(Affiliation.id)
    ).scalars():
        affiliations[aff.donor_id].append(orgs.affiliation(
            aff.organization_id, aff.kind, aff.title, aff.senior_decision_maker,
            aff.start_date, aff.end_date))
    return [_Candidate("donor", d.id, _identity_of(d),
                       tuple(f for f in affiliations[d.id] if f.covered),
                       (d.email_key, d.phone_key, d.name_key_a, d.name_key_b))
            for d in donors]


def _roster_candidates(session: Session, orgs: _Organizations, where) -> list[_Candidate]:
    if not orgs.covered:
        return []
    entries = session.execute(
        select(RosterEntry).where(
            one_of(session, RosterEntry.organization_id, sorted(orgs.covered)), *where)
        .order_by(RosterEntry.id)).scalars().all()
    return [_Candidate(
        "roster", e.id, Identity(e.name),
        (orgs.affiliation(e.organization_id, "employee", e.title, e.senior_decision_maker,
                          e.start_date, e.end_date),),
        (None, None, e.name_key_a, e.name_key_b)) for e in entries]


def _verdicts(session: Session, where) -> dict[str, str]:
    return dict(session.execute(
        select(IdentityVerdict.pair, IdentityVerdict.verdict).where(where)).all())


#: The name keys a finder searches: a name's two blocking keys and their one-letter forms
#: (policies.identity.block_keys, initial_keys), at most four. Bound as four fixed
#: parameters (unused ones NULL, which an IN never matches) rather than an expanding list:
#: an expanding list is re-rendered into the statement on every execution, which cost more
#: CPU than running the statement, and the fixed text lets the driver prepare it.
MAX_NAME_KEYS = 4
_NAMES = [bindparam(f"name{i}") for i in range(MAX_NAME_KEYS)]


def name_key_params(names: list[str]) -> dict[str, str | None]:
    """The statement's name parameters for these keys (at most MAX_NAME_KEYS)."""
    if len(names) > MAX_NAME_KEYS:
        raise ValueError(f"{len(names)} name keys; a name has at most {MAX_NAME_KEYS}")
    return {f"name{i}": names[i] if i < len(names) else None for i in range(MAX_NAME_KEYS)}


#: Person donors sharing a blocking key with the donor screened. Each key is its own arm of
#: a UNION ALL, answered from its own index: as one OR, SQLite's planner read every donor
#: once the statistics said a key column is mostly NULL (phone). ALL: the IN below drops
#: repeats anyway, and SQLite then builds one temporary b-tree of ids, not one per arm.
#: The name parameters hold the donor's keys and their one-letter forms (policies.identity.
#: initial_keys: "Morgan Chen" finds "M. Chen"); lo..hi a range of keys beginning with a key
#: of a name written with an initial ("M. Chen" finds "Morgan Chen", initial_prefixes), both
#: None (no row) for other names.
#: Only lab-side records (donor.possibly_covered): each arm is answered from a partial index
#: holding only theirs, so a common name's namesakes with no tie to a lab cost nothing (670
#: for the 1M-gift bench ledger's James Smith, 50 of them lab-side). The bare column, as
#: the partial indexes' condition is spelled ("possibly_covered = 1" on SQLite).
_SHARING_A_KEY = union_all(*(
    select(Donor.id).where(Donor.possibly_covered, key) for key in (
        Donor.name_key_a.in_(_NAMES),
        Donor.name_key_b.in_(_NAMES),
        Donor.name_key_a.between(bindparam("lo"), bindparam("hi")),
        Donor.name_key_b.between(bindparam("lo"), bindparam("hi")),
        Donor.email_key == bindparam("email"),
        Donor.phone_key == bindparam("phone"),
    ))
).subquery()
_Parent = aliased(Organization)
#: An organisation that may be covered: a covered lab, or one with a parent (which may be,
#: followed in memory by CoveredOrganizations). An affiliation to any other (an ordinary
#: employer) can never count, so it stays in the database: a common name has hundreds of
#: namesakes, most of whose affiliations are such.
_MAY_BE_COVERED = or_(Organization.covered_lab.is_(True), Organization.parent_id.is_not(None))
#: The organisation's name and coverage, and its parent's (an affiliate's lab): else
#: CoveredOrganizations reads it with a statement of its own, once per parent per decision
#: (two per decision for the most common name of the 1M-gift bench ledger, a quarter of the
#: finder's time).
_ORGANIZATION_COLUMNS = (
    Organization.name.label("organization_name"), Organization.covered_lab,
    Organization.parent_id, _Parent.name.label("parent_name"),
    _Parent.covered_lab.label("parent_covered"), _Parent.parent_id.label("grandparent_id"))
#: Every record that may be the donor screened, in one statement of two arms (the column
#: record says which: "donor" or "roster"), one row per affiliation that may be to a
#: covered organisation:
#:
#: - person donors sharing a blocking key, with such affiliations. Only the donor rows of
#:   namesakes with a possibly covered affiliation are read. Ordered by the affiliation's
#:   donor_id, not donor.id (the same value): so SQLite starts from the affiliation index
#:   and reads no donor row of a namesake without an affiliation (ordered by donor.id it
#:   read every namesake's row first: 15 ms for "James Smith"). SQLite merges the arms of
#:   the UNION ALL each ordered by the compound's ORDER BY, so the arm keeps that plan
#:   (EXPLAIN QUERY PLAN); with the record column first in the ORDER BY it did not, and
#:   read the donor rows first. So the two kinds of rows interleave by id: the finder
#:   keys what it gathers by (record, id), and orders its facts at the end.
#: - roster entries sharing a name key, at organisations that may be covered.
#:
#: One prebuilt statement (the roster was a second one, a round trip and its per-statement
#: work on every gift), answered from the key indexes.
_RECORDS_SHARING_A_KEY = union_all(
    select(literal_column("'donor'").label("record"),
           Affiliation.donor_id.label("record_id"), Donor.name, Donor.email, Donor.phone,
           Donor.postal_address, Affiliation.organization_id, Affiliation.kind,
           Affiliation.title, Affiliation.senior_decision_maker, Affiliation.start_date,
           Affiliation.end_date, *_ORGANIZATION_COLUMNS, Affiliation.id.label("row_id"))
    .select_from(Affiliation)
    .join(Organization, Organization.id == Affiliation.organization_id)
    .outerjoin(_Parent, _Parent.id == Organization.parent_id)
    .join(Donor, Donor.id == Affiliation.donor_id)
    .where(
        Affiliation.donor_id.in_(select(_SHARING_A_KEY.c.id)),
        _MAY_BE_COVERED,
        Donor.type == "person",
        Donor.id != bindparam("me"),
    ),
    select(literal_column("'roster'"), RosterEntry.id, RosterEntry.name, null(), null(),
           null(), RosterEntry.organization_id, literal_column("'employee'"),
           RosterEntry.title, RosterEntry.senior_decision_maker, RosterEntry.start_date,
           RosterEntry.end_date, *_ORGANIZATION_COLUMNS, RosterEntry.id)
    .select_from(RosterEntry)
    .join(Organization, Organization.id == RosterEntry.organization_id)
    .outerjoin(_Parent, _Parent.id == Organization.parent_id)
    .where(or_(RosterEntry.name_key_a.in_(_NAMES), RosterEntry.name_key_b.in_(_NAMES),
               RosterEntry.name_key_a.between(bindparam("lo"), bindparam("hi")),
               RosterEntry.name_key_b.between(bindparam("lo"), bindparam("hi"))),
           _MAY_BE_COVERED),
).order_by(literal_column("record_id"), literal_column("row_id"))
_VERDICTS_OF = (
    select(IdentityVerdict.pair, IdentityVerdict.verdict)
    .where(or_(IdentityVerdict.donor_id == bindparam("me"),
               IdentityVerdict.other_donor_id == bindparam("me")))
)


class MatchFinder:
    """Possible matches of one donor at a time, by indexed queries: the records sharing a
    blocking key, narrowed in memory to those whose names are alike enough before anything
    more is read about them. One instance serves one screening (its transaction).

    covered: the screening's CoveredOrganizations (facts.CoveredOrganizations), which knows
    names and coverage of organisations and memoises them."""

    def __init__(self, session: Session, covered=None):
        self.session = session
        self.covered = covered

    def _covered(self):
        if self.covered is None:
            from app.ledger.facts import CoveredOrganizations  # facts imports this module
            self.covered = CoveredOrganizations(self.session)
        return self.covered

    def __call__(self, donor: Donor) -> tuple[MatchFact, ...]:
        if donor.type != "person":
            return ()
        names = [k for k in (donor.name_key_a, donor.name_key_b) if k]
        if not names and not donor.email_key and not donor.phone_key:
            return ()
        me = SignalsAgainst(_identity_of(donor))
        lo, hi = key_range(donor.name)
        names = list(dict.fromkeys([*names, *initial_keys(donor.name)]))
        params = {"me": donor.id, **name_key_params(names), "lo": lo, "hi": hi,
                  "email": donor.email_key, "phone": donor.phone_key}
        covered = self._covered()
        # Plain rows through the connection: no ORM objects, and the least per-row work,
        # as a common name brings dozens of rows (bench.identity).
        conn = self.session.connection()
        # Rows come by record: its identity is compared once; a record not alike enough is
        # skipped without looking at its affiliations.
        alike: dict[tuple[str, int], tuple[str, Signals, list[AffiliationFact]]] = {}
        unlike: set[tuple[str, int]] = set()
        counts: dict[int, bool] = {}
        for (record, record_id, name, email, phone, address, org_id, kind, title, senior,
             start, end, org_name, covered_lab, parent_id, parent_name, parent_covered,
             grandparent_id, _row_id) in conn.execute(_RECORDS_SHARING_A_KEY, params).all():
            key = (record, record_id)
            if key in unlike:
                continue
            if key not in alike:
                # A roster entry holds a name only.
                sig = me(name, email, phone, address) if record == "donor" else me(name)
                if not sig.worth_passing:
                    unlike.add(key)
                    continue
                alike[key] = (name, sig, [])
            if org_id not in counts:  # once per organisation, not per row
                if not covered.knows(org_id):
                    covered.remember(_Organization(org_id, org_name, covered_lab, parent_id))
                if parent_id is not None and not covered.knows(parent_id):
                    covered.remember(_Organization(parent_id, parent_name, parent_covered,
                                                   grandparent_id))
                counts[org_id] = covered.covered(org_id)
            if counts[org_id]:
                alike[key][2].append(AffiliationFact(
                    organization=org_name, covered=True, kind=kind, title=title, senior_decision_maker=senior,
                    start_date=start, end_date=end))
        found = [(record, record_id, name, sig, tuple(labs))
                 for (record, record_id), (name, sig, labs) in alike.items() if labs]
        if not found:
            return ()
        # A donor not stored yet has no verdicts (and no pair key).
        verdicts = (dict(conn.execute(_VERDICTS_OF, {"me": donor.id}).all())
                    if donor.id is not None else {})
        facts = []
        for record, record_id, name, sig, labs in found:  # as _fact, signals already known
            verdict = verdicts.get(pair_key(donor.id, record, record_id)) if verdicts else None
            if verdict != "same":  # the entry's role is on the donor's own record now
                facts.append(MatchFact(
                    record=record, record_id=record_id, name=name,
                    name_similarity=sig.name_similarity, same_email=sig.same_email,
                    same_phone=sig.same_phone, same_address=sig.same_address,
                    same_initial=sig.same_initial, affiliations=labs,
                    different=verdict == "different"))
        return _order(facts)


class MatchIndex:
    """Every candidate record (lab-affiliated donors, roster entries at covered labs) and
    every verdict, read once, then matched in memory: for a batch screened under the ledger
    lock, where none of them can change. Holds only lab-affiliated records, a small part of
    the donors."""

    def __init__(self, session: Session):
        orgs = _Organizations(session)
        self._by_key: dict[str, list[_Candidate]] = defaultdict(list)
        for candidate in (_donor_candidates(session, orgs, [])
                          + _roster_candidates(session, orgs, [])):
            email, phone, a, b = candidate.keys
            for key in ({f"e:{email}" if email else None, f"p:{phone}" if phone else None,
                         f"n:{a}" if a else None, f"n:{b}" if b else None} - {None}
                        | _initial_forms(a) | _initial_forms(b)):
                self._by_key[key].append(candidate)
        self._verdicts = _verdicts(session, IdentityVerdict.id.is_not(None)) if self._by_key \
            else {}

    def __call__(self, donor: Donor) -> tuple[MatchFact, ...]:
        if donor.type != "person" or not self._by_key:
            return ()
        keys = {f"n:{k}" for k in (donor.name_key_a, donor.name_key_b) if k}
        keys |= {f"n:{k}" for k in initial_keys(donor.name)}  # as MatchFinder's "names"
        lo, _hi = key_range(donor.name)
        if lo:
            keys.add(f"i:{lo}")
        if donor.email_key:
            keys.add(f"e:{donor.email_key}")
        if donor.phone_key:
            keys.add(f"p:{donor.phone_key}")
        seen: dict[tuple[str, int], _Candidate] = {}
        for key in keys:
            for candidate in self._by_key.get(key, ()):
                if not (candidate.record == "donor" and candidate.record_id == donor.id):
                    seen[(candidate.record, candidate.record_id)] = candidate
        return _order(_fact(c, donor, self._verdicts) for c in seen.values())
