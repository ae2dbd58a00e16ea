"""Donor segments: saved searches over donors, evaluated afresh each time they are used.

A segment stores its criteria (models.schemas.SegmentCriteria), never a list of donors.
`donor_conditions` turns criteria into WHERE clauses on Donor, so the donors list, the CSV
export, the acknowledgements page and the reports all select the same people by one
definition. Merged records (a duplicate folded into another donor) are never members: the
survivor carries their gifts.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.db.locking import ledger_write
from app.errors import NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.contacts import _live_donor
from app.ledger.giving import NetCash
from app.ledger.search import OrganizationNames, donors_matching
from models import (
    Affiliation,
    Campaign,
    Donor,
    DonorMerge,
    DonorTag,
    Fund,
    Gift,
    GiftDesignation,
    Organization,
    Relationship,
    Segment,
)
from models.money import MoneyError, parse_typed_amount
from models.relationships import HOUSEHOLD_KINDS
from models.schemas import SegmentCreate, SegmentCriteria


def giving_bounds(criteria: SegmentCriteria, currency: str) -> tuple[int | None, int | None]:
    """The giving range in minor units of `currency`; ValidationFailed names a bound that
    does not read as an amount there (too many decimal places, zero)."""
    bounds, errors = [], {}
    for name in ("giving_min", "giving_max"):
        typed = getattr(criteria, name)
        try:
            bounds.append(parse_typed_amount(typed, currency) if typed else None)
        except MoneyError as error:
            errors[f"criteria.{name}"] = [str(error)]
            bounds.append(None)
    if errors:
        raise ValidationFailed(errors)
    low, high = bounds
    if low is not None and high is not None and high < low:
        raise ValidationFailed({"criteria.giving_max": ["must not be less than giving_min"]})
    return low, high


def donor_conditions(session: Session, criteria: SegmentCriteria, currency: str, *,
                     live_only: bool = True) -> list[ColumnElement[bool]]:
    """WHERE clauses on Donor selecting the segment's members (all must hold). live_only
    False keeps merged records in (the donors list shows them, marked, to find them)."""
    conditions: list[ColumnElement[bool]] = []
    if live_only:
        conditions.append(Donor.id.not_in(select(DonorMerge.duplicate_id)))
    if criteria.q:
        conditions.append(donors_matching(
            criteria.q, by_id=True,
            organization_ids=OrganizationNames(session).containing(criteria.q)))
    if criteria.type:
        conditions.append(Donor.type == criteria.type)
    low, high = giving_bounds(criteria, currency)
    if low is not None or high is not None:
        cash = NetCash(currency)
        total = func.sum(cash.net)
        givers = cash.select(Gift.donor_id).group_by(Gift.donor_id)
        in_range = givers.having(and_(*([total >= low] if low is not None else []),
                                      *([total <= high] if high is not None else [])))
        if low is None:  # a donor who gave nothing has given 0, which is within "up to"
            conditions.append(or_(Donor.id.in_(in_range), Donor.id.not_in(givers)))
        else:
            conditions.append(Donor.id.in_(in_range))
    dated = [(func.min(Gift.received_on), criteria.first_gift_from, criteria.first_gift_to),
             (func.max(Gift.received_on), criteria.last_gift_from, criteria.last_gift_to)]
    having = [c for column, start, end in dated for c in (
        *([column >= start] if start else []), *([column <= end] if end else []))]
    if having:
        conditions.append(Donor.id.in_(
            select(Gift.donor_id).where(Gift.status == "accepted")
            .group_by(Gift.donor_id).having(and_(*having))))
    designated = [getattr(GiftDesignation, f"{name}_id") == value for name, value in
                  (("campaign", criteria.campaign_id), ("fund", criteria.fund_id)) if value]
    if designated:
        conditions.append(Donor.id.in_(
            select(Gift.donor_id).join(GiftDesignation, GiftDesignation.gift_id == Gift.id)
            .where(Gift.status == "accepted", *designated)))
    if criteria.organization_id:
        conditions.append(or_(
            Donor.organization_id == criteria.organization_id,
            Donor.id.in_(select(Affiliation.donor_id)
                         .where(Affiliation.organization_id == criteria.organization_id))))
    if criteria.household:
        in_household = or_(*(Donor.id.in_(
            select(side).where(Relationship.kind.in_(HOUSEHOLD_KINDS),
                               Relationship.end_date.is_(None)))
            for side in (Relationship.donor_id, Relationship.related_donor_id)))
        conditions.append(in_household if criteria.household == "yes" else ~in_household)
    if criteria.tag:
        conditions.append(Donor.id.in_(select(DonorTag.donor_id)
                                       .where(DonorTag.tag == criteria.tag)))
    return conditions


def members(session: Session, criteria: SegmentCriteria, currency: str):
    """SELECT Donor for the segment's members (the caller orders and pages it)."""
    return select(Donor).where(*donor_conditions(session, criteria, currency))


def member_ids(session: Session, criteria: SegmentCriteria, currency: str):
    """SELECT donor.id of the members: for `Gift.donor_id.in_(...)` in a letter list or report."""
    return select(Donor.id).where(*donor_conditions(session, criteria, currency))


def criteria_of(segment: Segment) -> SegmentCriteria:
    return SegmentCriteria.model_validate(segment.criteria)


def _check_references(session: Session, criteria: SegmentCriteria) -> None:
    errors = {}
    for name, model in (("campaign_id", Campaign), ("fund_id", Fund),
                        ("organization_id", Organization)):
        value = getattr(criteria, name)
        if value is not None and session.get(model, value) is None:
            errors[f"criteria.{name}"] = [f"no such {name.removesuffix('_id')}"]
    if errors:
        raise ValidationFailed(errors)


def create_segment(session: Session, data: SegmentCreate, currency: str,
                   actor: Actor) -> Segment:
    """Save a named segment (its criteria, checked as they will be used)."""
    giving_bounds(data.criteria, currency)
    with ledger_write(session):
        _check_references(session, data.criteria)
        if session.execute(select(Segment.id).where(Segment.name == data.name)).first():
            raise ValidationFailed({"name": ["a segment with this name exists already"]})
        segment = Segment(name=data.name, description=data.description or None,
                          criteria=data.criteria.given(), created_by_id=actor.user_id)
        session.add(segment)
        try:
            session.flush()
        except IntegrityError:  # the same name saved at the same moment by someone else
            raise ValidationFailed({"name": ["a segment with this name exists already"]}) from None
        audit.append(session, actor, "segment.created", "segment", segment.id,
                     {"name": segment.name, "criteria": segment.criteria})
    return segment


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound("segment", segment_id)
    return segment


def all_segments(session: Session) -> list[Segment]:
    return list(session.execute(select(Segment).order_by(func.lower(Segment.name), Segment.id))
                .scalars())


# --- tags --------------------------------------------------------------------------------


def tags_of(session: Session, donor_ids: list[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {}
    if not donor_ids:
        return result
    for donor_id, tag in session.execute(
            select(DonorTag.donor_id, DonorTag.tag).where(DonorTag.donor_id.in_(donor_ids))
            .order_by(DonorTag.tag)):
        result.setdefault(donor_id, []).append(tag)
    return result


def all_tags(session: Session) -> list[str]:
    return list(session.execute(select(DonorTag.tag).distinct().order_by(DonorTag.tag)).scalars())


def set_tags(session: Session, donor_id: int, tags: list[str], actor: Actor) -> list[str]:
    """Make the donor's tags exactly `tags` (added and removed ones audited)."""
    wanted = sorted(set(tags))
    with ledger_write(session):
        _live_donor(session, donor_id, "donor")
        current = {t.tag: t for t in session.execute(
            select(DonorTag).where(DonorTag.donor_id == donor_id)).scalars()}
        added = [t for t in wanted if t not in current]
        removed = sorted(set(current) - set(wanted))
        for tag in removed:
            session.delete(current[tag])
        for tag in added:
            session.add(DonorTag(donor_id=donor_id, tag=tag, created_by_id=actor.user_id))
        session.flush()
        if added or removed:
            audit.append(session, actor, "donor.tags_set", "donor", donor_id,
                         {"added": added, "removed": removed})
    return wanted
