"""Relationships between people (household, spouse or partner, family, colleague) and the
household they make.

A relationship is one of the policy's facts: with the policy's rule
household_of_senior_decision_maker enabled, a gift from the spouse, partner or household
of a senior decision-maker at a covered lab is held for a reviewer. So its writes follow
the ledger's rules for facts:

- recording one only stops more money: it applies at once and re-screens the accepted and
  held gifts it now concerns (both people's, dated while it holds), holding those the rule
  fires on, as an affiliation recorded late does;
- ending or deleting one could let money through: app.ledger.changes keeps it waiting for
  a second person (weakens() says when), and applies it here once approved; each gift it
  held in the days it no longer covers gets a re-screen decision and stays held for a
  reviewer (_screen_released);
- a senior role recorded for someone (app.ledger.parties) re-screens their household's
  gifts too (rescreen_relatives).

Every write is audited under the ledger lock, sealed (row_hashes), with no free text: the
door's facts read before the lock (gifts.prepare_gift) are used only if nothing but a gift
was audited since, so a relationship recorded meanwhile is seen.

A household is the people linked, directly or through others, by a household or spouse or
partner relationship holding on a date; it is named by its smallest donor id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, or_, select
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotFound, ValidationFailed
from app.ledger import audit, row_hashes
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations
from app.ledger.gifts import facts_of_gift, stored_shares
from app.ledger.parties import _gifts_to_rescreen, _today_by, merged_into
from app.ledger.profile import GivingSummary, giving_summary
from app.ledger.reviews import hold_for_rescreen
from models import Affiliation, Attribution, Decision, Donor, Gift, Refund, Relationship
from models.relationships import HOUSEHOLD_KINDS, RELATIONSHIP_WORDS
from models.schemas import RelationshipCreate
from policies import FundingFacts, Policy
from policies.rules import household_of_senior_decision_maker

RULE = "household_of_senior_decision_maker"
FIELDS = ("donor_id", "related_donor_id", "kind", "start_date", "end_date")


def values_of(rel: Relationship) -> dict:
    return {k: getattr(rel, k) for k in FIELDS}


def get_relationship(session: Session, relationship_id: int) -> Relationship:
    rel = session.get(Relationship, relationship_id)
    if rel is None:
        raise NotFound("relationship", relationship_id)
    return rel


def rule_kinds(policy: Policy) -> tuple[str, ...]:
    """The relationship kinds the policy in force screens (none when the rule is off)."""
    settings = policy.settings.get(RULE) or {}
    return settings.get("kinds", ()) if settings.get("enabled") else ()


def _person(session: Session, donor_id: int, field: str) -> Donor:
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise ValidationFailed({field: ["no such donor"]})
    if donor.type != "person":
        raise ValidationFailed({field: ["relationships link people; this donor is an "
                                        "organisation"]})
    survivor = merged_into(session, donor_id)
    if survivor is not None:
        raise ValidationFailed({field: [f"donor {donor_id} was merged into donor {survivor}; "
                                        "use that record"]})
    return donor


def _entry(rel: Relationship) -> dict:
    """An audit entry's data: ids, kind and dates only (no free text)."""
    return {"relationship_id": rel.id, **values_of(rel)}


def _range(rel: Relationship) -> tuple[date, date | None]:
    return rel.start_date, rel.end_date


def _rescreen(session: Session, donor_id: int, ranges: list[tuple[date, date | None]],
              policy: Policy, actor: Actor, why: str, seen: set[int]) -> list[Decision]:
    """Hold the donor's accepted or held gifts in the ranges on which the household rule now
    fires (the others are not this change's business: nothing else about them moved)."""
    found = []
    for gift in _gifts_to_rescreen(session, donor_id, ranges):
        if gift.id in seen:
            continue
        facts = facts_of_gift(session, gift, session.get(Donor, gift.donor_id),
                              stored_shares(session, gift.id))
        if household_of_senior_decision_maker(policy, facts, FundingFacts(())).fired:
            seen.add(gift.id)
            found.append(hold_for_rescreen(session, gift, policy, actor, why))
    return found


def _held_by_the_rule(session: Session, rel: Relationship,
                      ranges: list[tuple[date, date | None]], policy: Policy) -> list[Gift]:
    """Held gifts of either person, dated in the ranges, on which the household rule fires
    with the relationship as recorded (read before it is shortened or deleted)."""
    if rel.kind not in rule_kinds(policy):
        return []
    found: dict[int, Gift] = {}
    for person in (rel.donor_id, rel.related_donor_id):
        for gift in _gifts_to_rescreen(session, person, ranges):
            if gift.status != "held" or gift.id in found:
                continue
            facts = facts_of_gift(session, gift, session.get(Donor, gift.donor_id),
                                  stored_shares(session, gift.id))
            if household_of_senior_decision_maker(policy, facts, FundingFacts(())).fired:
                found[gift.id] = gift
    return list(found.values())


def _screen_released(session: Session, gifts: list[Gift], policy: Policy, actor: Actor,
                     why: str) -> list[Decision]:
    """After a relationship was shortened or deleted: each gift it held gets a re-screen
    decision against the facts as they now stand, and stays held. Releasing money is a
    reviewer's decision, never a side effect; the new decision shows the reviewer what the
    policy says without the relationship."""
    return [hold_for_rescreen(session, gift, policy, actor, why) for gift in gifts]


def _released(rel: Relationship, end_date: date | None) -> list[tuple[date, date | None]]:
    """The gift dates a relationship stops covering when it ends on end_date (None: deleted)."""
    if end_date is None:
        return [_range(rel)]
    if rel.end_date is not None and end_date >= rel.end_date:
        return []
    return [(end_date + timedelta(days=1), rel.end_date)]


def add_relationship(session: Session, donor_id: int, data: RelationshipCreate, actor: Actor,
                     policy: Policy) -> tuple[Relationship, list[Decision]]:
    """Record a relationship. It only stops more money: it applies at once, and the gifts it
    now concerns are re-screened (held when the household rule fires on them)."""
    if data.related_donor_id == donor_id:
        raise ValidationFailed({"related_donor_id": ["a person is not related to themself"]})
    with ledger_write(session):
        me = _person(session, donor_id, "donor_id")
        other = _person(session, data.related_donor_id, "related_donor_id")
        low, high = sorted((donor_id, data.related_donor_id))
        clash = session.execute(
            select(Relationship.id).where(
                Relationship.donor_id == low, Relationship.related_donor_id == high,
                Relationship.kind == data.kind,
                or_(Relationship.end_date.is_(None), Relationship.end_date >= data.start_date),
                *([Relationship.start_date <= data.end_date] if data.end_date else []))
        ).scalar()
        if clash is not None:
            raise ValidationFailed({"kind": [
                f"relationship {clash} already links these two people as "
                f"{data.kind.replace('_', ' or ')} over these dates"]})
        rel = Relationship(donor_id=low, related_donor_id=high, kind=data.kind,
                           start_date=data.start_date, end_date=data.end_date,
                           created_by_id=actor.user_id)
        session.add(rel)
        session.flush()
        audit.append(session, actor, "relationship.added", "relationship", rel.id, _entry(rel),
                     sealed=[rel])
        rescreened: list[Decision] = []
        if rel.kind in rule_kinds(policy):
            why = (f"Relationship recorded: {me.name} and {other.name}, "
                   f"{RELATIONSHIP_WORDS[rel.kind]} from {rel.start_date.isoformat()}; "
                   f"recorded {_today_by(actor)}.")
            seen: set[int] = set()
            for person in (me, other):
                rescreened += _rescreen(session, person.id, [_range(rel)], policy, actor, why,
                                        seen)
    return rel, rescreened


def weakens(session: Session, rel: Relationship, policy: Policy) -> list[str]:
    """Why ending or deleting this relationship needs a second person, or [] when it stops no
    money: the policy in force screens its kind and one of the two people has (or had) an
    affiliation with a covered organisation."""
    if rel.kind not in rule_kinds(policy):
        return []
    covered = CoveredOrganizations(session)
    org_ids = session.execute(
        select(Affiliation.organization_id).where(
            Affiliation.donor_id.in_((rel.donor_id, rel.related_donor_id)))).scalars()
    if not any(covered.covered(org_id) for org_id in org_ids):
        return []
    return [f"{rel.kind.replace('_', ' or ')} relationship with someone affiliated with a "
            "covered organisation"]


def end_relationship(session: Session, relationship_id: int, end_date: date,
                     actor: Actor, policy: Policy | None = None
                     ) -> tuple[Relationship, list[Decision]]:
    """Set the relationship's last day (through app.ledger.changes, which decides whether a
    second person must approve it first). A later end than the one recorded lengthens it:
    the gifts of the days it now adds are re-screened, as for a new relationship."""
    with ledger_write(session):
        rel = get_relationship(session, relationship_id)
        if end_date < rel.start_date:
            raise ValidationFailed({"end_date": ["must not be before start_date"]})
        before = values_of(rel)
        held = (_held_by_the_rule(session, rel, _released(rel, end_date), policy)
                if policy is not None else [])
        rel.end_date = end_date
        session.flush()
        audit.append(session, actor, "relationship.ended", "relationship", rel.id,
                     {**_entry(rel), "before_end_date": before["end_date"]}, sealed=[rel])
        rescreened: list[Decision] = []
        if held:
            rescreened += _screen_released(
                session, held, policy, actor,
                f"Relationship ended on {end_date.isoformat()} ({RELATIONSHIP_WORDS[rel.kind]}); "
                f"changed {_today_by(actor)}. Still held: a reviewer decides.")
        old_end = before["end_date"]
        if policy is not None and old_end is not None and end_date > old_end \
                and rel.kind in rule_kinds(policy):
            names = [session.get(Donor, i).name for i in (rel.donor_id, rel.related_donor_id)]
            why = (f"Relationship lengthened: {names[0]} and {names[1]}, "
                   f"{RELATIONSHIP_WORDS[rel.kind]} until {end_date.isoformat()}; "
                   f"changed {_today_by(actor)}.")
            seen: set[int] = set()
            added = [(old_end + timedelta(days=1), end_date)]
            for person in (rel.donor_id, rel.related_donor_id):
                rescreened += _rescreen(session, person, added, policy, actor, why, seen)
    return rel, rescreened


def remove_relationship(session: Session, relationship_id: int, actor: Actor,
                        policy: Policy | None = None) -> list[Decision]:
    """Delete a relationship recorded in error (through app.ledger.changes). The gifts it
    held get a re-screen decision and stay held (_screen_released)."""
    with ledger_write(session):
        rel = get_relationship(session, relationship_id)
        entry = _entry(rel)
        words = RELATIONSHIP_WORDS[rel.kind]
        held = (_held_by_the_rule(session, rel, _released(rel, None), policy)
                if policy is not None else [])
        session.delete(rel)
        session.flush()
        audit.append(session, actor, "relationship.removed", "relationship", relationship_id,
                     entry, sealed=[row_hashes.removed(Relationship, relationship_id)])
        if not held:
            return []
        return _screen_released(session, held, policy, actor,
                                f"Relationship deleted ({words}); deleted {_today_by(actor)}. "
                                "Still held: a reviewer decides.")


def rescreen_household_gifts(session: Session, donor_id: int,
                             ranges: list[tuple[date, date | None]], policy: Policy,
                             actor: Actor, why: str, seen: set[int]) -> list[Decision]:
    """The donor's own gifts in the ranges on which the household rule now fires (a merge
    gave the donor relationships; caller holds the lock)."""
    if not rule_kinds(policy) or not ranges:
        return []
    return _rescreen(session, donor_id, ranges, policy, actor, why, seen)


def rescreen_relatives(session: Session, donor_id: int,
                       ranges: list[tuple[date, date | None]], policy: Policy, actor: Actor,
                       why: str, seen: set[int] | None = None) -> list[Decision]:
    """After a senior role was recorded for the donor (caller holds the lock): the gifts of
    their relatives the household rule now fires on, in the ranges the role counts."""
    kinds = rule_kinds(policy)
    if not kinds or not ranges:
        return []
    seen = set() if seen is None else seen
    found: list[Decision] = []
    for rel in session.execute(
        select(Relationship).where(
            or_(Relationship.donor_id == donor_id, Relationship.related_donor_id == donor_id),
            Relationship.kind.in_(kinds)).order_by(Relationship.id)
    ).scalars().all():
        found += _rescreen(session, rel.other(donor_id), ranges, policy, actor, why, seen)
    return found


# --- reading --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Related:
    relationship: Relationship
    other: Donor

    @property
    def kind_words(self) -> str:
        return RELATIONSHIP_WORDS[self.relationship.kind]


def relationships_of(session: Session, donor_id: int) -> list[Related]:
    """The donor's relationships, both ways, current ones first, then by start date."""
    rows = session.execute(
        select(Relationship).where(or_(Relationship.donor_id == donor_id,
                                       Relationship.related_donor_id == donor_id))
        .order_by(Relationship.start_date, Relationship.id)
    ).scalars().all()
    others = {d.id: d for d in session.execute(
        select(Donor).where(Donor.id.in_([r.other(donor_id) for r in rows]))).scalars()} \
        if rows else {}
    found = [Related(r, others[r.other(donor_id)]) for r in rows]
    return sorted(found, key=lambda r: r.relationship.end_date is not None)


def household_members(session: Session, donor_id: int, on: date) -> list[int]:
    """The people linked to the donor, directly or through others, by household or spouse or
    partner relationships holding on the date: the donor included, smallest id first."""
    members, frontier = {donor_id}, [donor_id]
    while frontier:
        rows = session.execute(
            select(Relationship.donor_id, Relationship.related_donor_id).where(
                or_(Relationship.donor_id.in_(frontier),
                    Relationship.related_donor_id.in_(frontier)),
                Relationship.kind.in_(HOUSEHOLD_KINDS), Relationship.start_date <= on,
                or_(Relationship.end_date.is_(None), Relationship.end_date >= on))
        ).all()
        found = {d for row in rows for d in row} - members
        members |= found
        frontier = list(found)
    return sorted(members)


@dataclass(frozen=True)
class Member:
    donor: Donor
    #: The member's own giving (hard credit): gifts they paid.
    giving: GivingSummary
    #: Credit for gifts they did not pay: other members' gifts, and their share of gifts
    #: others paid that are attributed to them (a DAF grant they advised).
    soft_credit_minor: int


@dataclass(frozen=True)
class Household:
    id: int
    members: list[Member]
    #: Accepted cash gifts paid by members, net of refunds (each gift once).
    combined_minor: int
    #: The members' shares of gifts paid by others outside the household.
    attributed_minor: int
    gift_count: int
    currency: str
    relationships: list[Relationship] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return self.combined_minor + self.attributed_minor


def _net_by_payer(session: Session, ids: list[int], currency: str) -> dict[int, tuple[int, int]]:
    """{payer: (net amount, count)} of accepted cash gifts paid by these donors."""
    refunded = (select(Refund.gift_id, func.sum(Refund.reporting_amount_minor).label("minor"))
                .join(Gift, Gift.id == Refund.gift_id).where(Gift.donor_id.in_(ids))
                .group_by(Refund.gift_id).subquery())
    net = Gift.reporting_amount_minor - func.coalesce(refunded.c.minor, 0)
    return {donor: (int(total), int(count)) for donor, total, count in session.execute(
        select(Gift.donor_id, func.coalesce(func.sum(net), 0), func.count())
        .outerjoin(refunded, refunded.c.gift_id == Gift.id)
        .where(Gift.donor_id.in_(ids), Gift.status == "accepted", Gift.kind == "cash",
               Gift.reporting_currency == currency)
        .group_by(Gift.donor_id))}


def _attributed_from_outside(session: Session, ids: list[int],
                             currency: str) -> dict[int, int]:
    """{member: their share (rounded down) of accepted cash gifts paid by non-members}."""
    refunded = (select(Refund.gift_id, func.sum(Refund.reporting_amount_minor).label("minor"))
                .group_by(Refund.gift_id).subquery())
    net = Gift.reporting_amount_minor - func.coalesce(refunded.c.minor, 0)
    found: dict[int, int] = {}
    for member, amount, ppm in session.execute(
        select(Attribution.donor_id, net, Attribution.fraction_ppm)
        .join(Gift, Gift.id == Attribution.gift_id)
        .outerjoin(refunded, refunded.c.gift_id == Gift.id)
        .where(Attribution.donor_id.in_(ids), Gift.donor_id.not_in(ids),
               Gift.status == "accepted", Gift.kind == "cash",
               Gift.reporting_currency == currency)
    ):
        found[member] = found.get(member, 0) + int(amount) * int(ppm) // 1_000_000
    return found


def household(session: Session, donor_id: int, currency: str, today: date) -> Household:
    """The donor's household as it stands today, with combined giving and soft credits."""
    if session.get(Donor, donor_id) is None:
        raise NotFound("donor", donor_id)
    ids = household_members(session, donor_id, today)
    donors = {d.id: d for d in session.execute(
        select(Donor).where(Donor.id.in_(ids))).scalars()}
    paid = _net_by_payer(session, ids, currency)
    outside = _attributed_from_outside(session, ids, currency)
    combined = sum(total for total, _count in paid.values())
    members = [
        Member(donors[i], giving_summary(session, i, currency, today),
               combined - paid.get(i, (0, 0))[0] + outside.get(i, 0))
        for i in ids]
    rels = session.execute(
        select(Relationship).where(Relationship.donor_id.in_(ids),
                                   Relationship.related_donor_id.in_(ids))
        .order_by(Relationship.id)).scalars().all()
    return Household(ids[0], members, combined, sum(outside.values()),
                     sum(count for _total, count in paid.values()), currency, list(rels))
