"""Merging two donor records that are one person (or one organisation).

Everything that names the duplicate moves to the survivor: gifts, their attributions,
affiliations, pledges, online donations (with their declarations), acknowledgements, and
any other row whose foreign key points at donor.id (found from the tables' metadata, so a
table added later moves too). The duplicate's row stays, and a donor_merge row names the
survivor: its id is still found (the API answers it with merged_into_id, the survivor's id)
and its import external id still leads to the survivor; declarations refused before payment
under the duplicate's e-mail (kept by address) show on the survivor's page and hold its
online gifts from then on. Then the gifts whose facts changed
are re-screened exactly as when an affiliation is added (hold_for_rescreen, as
parties.rescreen_person does): the duplicate's gifts against the survivor's lab
affiliations, and the survivor's against the duplicate's. All in one ledger_write, audited
as "donor.merged".

Callers: the API (POST /api/v1/donors/<id>/merge), the staff donor page, and the resolution
of a probable match as "same person". merge_donors opens its own ledger_write (it joins a
ledger_batch when one is open): do not call it inside another ledger_write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Column, delete, or_, select, update
from sqlmodel import Session, SQLModel

from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, funding, relationships, row_hashes
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations
from app.ledger.identity import refresh_possibly_covered
from app.ledger.parties import _affected_range, _gifts_to_rescreen, _today_by
from app.ledger.public_support import merge_facts
from app.ledger.reviews import hold_for_rescreen
from models import (
    Affiliation,
    Attribution,
    Donor,
    DonorExternalId,
    DonorMerge,
    DonorTag,
    Gift,
    RefusedDeclaration,
    Relationship,
)
from policies import Policy

#: Foreign keys to donor.id that are not simply re-pointed at the survivor:
#: - donor_merge: records merged into the duplicate earlier are re-pointed at the survivor
#:   (no chains); the duplicate's own row is added;
#: - donor_external_id.donor_id: one external id per donor (unique); the duplicate keeps
#:   its own, and the import follows donor_merge from it;
#: - attribution.donor_id: a gift attributed to both records gets one combined share.
#: - support_link, support_class: the public-support facts (app.ledger.public_support
#:   .merge_facts: a link between the two records goes; no second class or duplicate link;
#:   it seals what it writes); support_fact_removal: history, it keeps the ids it named.
_HANDLED_APART = {("donor_merge", "duplicate_id"), ("donor_merge", "survivor_id"),
                  ("donor_external_id", "donor_id"), ("attribution", "donor_id"),
                  ("support_link", "donor_id"), ("support_link", "other_donor_id"),
                  ("support_class", "donor_id"), ("support_fact_removal", "donor_id"),
                  ("support_fact_removal", "other_donor_id"), ("relationship", "donor_id"),
                  ("relationship", "related_donor_id")}


@dataclass
class MergeResult:
    survivor_id: int
    duplicate_id: int
    #: "table.column" -> ids of the rows re-pointed from the duplicate to the survivor.
    moved: dict[str, list[int]] = field(default_factory=dict)
    #: Gifts attributed to both records: the duplicate's share was added to the survivor's.
    combined_attribution_gift_ids: list[int] = field(default_factory=list)
    #: Gifts put on hold by the re-screening, in date order.
    rescreened_gift_ids: list[int] = field(default_factory=list)
    #: Records merged into the duplicate earlier, now pointing at the survivor.
    repointed_merged_ids: list[int] = field(default_factory=list)


def _donor_references() -> list[tuple[type[SQLModel], Column]]:
    """(model, column) of every foreign key to donor.id, in table order."""
    refs = []
    for mapper in sorted(SQLModel._sa_registry.mappers, key=lambda m: m.local_table.name):
        table = mapper.local_table
        for fk in sorted(table.foreign_keys, key=lambda f: f.parent.name):
            if fk.column.table.name == "donor" and fk.column.name == "id":
                refs.append((mapper.class_, fk.parent))
    return refs


def _live(session: Session, donor_id: int, what: str) -> Donor:
    donor = session.get(Donor, donor_id)
    if donor is None:
        raise NotFound("donor", donor_id)
    merge = session.get(DonorMerge, donor_id)
    if merge is not None:
        raise NotAllowed(f"the {what} record, donor {donor_id}, was already merged into donor "
                         f"{merge.survivor_id}")
    return donor


def _check(survivor: Donor, duplicate: Donor) -> None:
    if survivor.id == duplicate.id:
        raise ValidationFailed({"duplicate_id": ["a record cannot be merged into itself"]})
    if survivor.type != duplicate.type:
        raise ValidationFailed({"duplicate_id": [
            f"a {duplicate.type} cannot be merged into a {survivor.type}"]})
    if survivor.type == "organization" and survivor.organization_id != duplicate.organization_id:
        # An organisation donor's link decides whether its money is a lab's: merging one
        # linked to another organisation (or to none) would move gifts out from under it.
        raise ValidationFailed({"duplicate_id": [
            "the two organisation donors are linked to different organisations"]})


def _covered_ranges(session: Session, donor_id: int, policy: Policy) -> list[tuple[date, date | None]]:
    covered = CoveredOrganizations(session)
    return [
        _affected_range(aff, policy)
        for aff in session.execute(
            select(Affiliation).where(Affiliation.donor_id == donor_id)
        ).scalars()
        if covered.covered(aff.organization_id)
    ]


def _move_attributions(session: Session, survivor: Donor, duplicate: Donor,
                       result: MergeResult) -> list[int]:
    """Move the duplicate's attributions; returns the ids of those deleted (combined)."""
    removed: list[int] = []
    if duplicate.category != survivor.category:
        # The funding mix credits organisation donors by category: the duplicate's shares
        # now count under the survivor's.
        funding.move_credits(session, duplicate.id, duplicate.category, survivor.category)
    theirs = session.execute(
        select(Attribution).where(Attribution.donor_id == duplicate.id).order_by(Attribution.id)
    ).scalars().all()
    ours = {a.gift_id: a for a in session.execute(
        select(Attribution).where(Attribution.donor_id == survivor.id,
                                  Attribution.gift_id.in_([a.gift_id for a in theirs]))
    ).scalars()} if theirs else {}
    moved = []
    for attribution in theirs:
        same_gift = ours.get(attribution.gift_id)
        if same_gift is not None:
            # A joint gift split between the two records: one person's share is the sum.
            same_gift.fraction_ppm += attribution.fraction_ppm
            result.combined_attribution_gift_ids.append(attribution.gift_id)
            session.flush()
            session.execute(delete(Attribution).where(Attribution.id == attribution.id))
            removed.append(attribution.id)
        else:
            moved.append(attribution.id)
    if moved:
        session.execute(update(Attribution).where(Attribution.id.in_(moved))
                        .values(donor_id=survivor.id))
        result.moved["attribution.donor_id"] = moved
    return removed


def _move_relationships(session: Session, survivor: Donor, duplicate: Donor,
                        result: MergeResult) -> list[int]:
    """The duplicate's relationships become the survivor's, stored as every relationship is
    (smaller id first). Only one between the two records themselves is deleted (a person is
    not their own relative). One the survivor seems to have already (same person, same
    kind) is moved too, never dropped: its dates may cover days the survivor's does not,
    and dropping it would end a relationship the policy screens without a second person.
    Returns the deleted ids."""
    removed, moved = [], []
    theirs = session.execute(
        select(Relationship).where(or_(Relationship.donor_id == duplicate.id,
                                       Relationship.related_donor_id == duplicate.id))
        .order_by(Relationship.id)).scalars().all()
    for rel in theirs:
        other = rel.other(duplicate.id)
        if other == survivor.id:
            session.execute(delete(Relationship).where(Relationship.id == rel.id))
            removed.append(rel.id)
            continue
        low, high = sorted((survivor.id, other))
        session.execute(update(Relationship).where(Relationship.id == rel.id)
                        .values(donor_id=low, related_donor_id=high))
        moved.append(rel.id)
    if moved:
        result.moved["relationship.donor_id"] = moved
    return removed


def merge_donors(session: Session, survivor_id: int, duplicate_id: int, actor: Actor,
                 policy: Policy) -> MergeResult:
    """Merge the duplicate record into the survivor; see the module's docstring."""
    with ledger_write(session):
        survivor = _live(session, survivor_id, "surviving")
        duplicate = _live(session, duplicate_id, "duplicate")
        _check(survivor, duplicate)
        result = MergeResult(survivor_id, duplicate_id)

        # Which gifts' facts change, found before anything moves: each side's gifts dated
        # while the other side's lab affiliations count.
        to_rescreen: dict[int, Gift] = {}
        for gift in (_gifts_to_rescreen(session, duplicate.id,
                                        _covered_ranges(session, survivor.id, policy))
                     + _gifts_to_rescreen(session, survivor.id,
                                          _covered_ranges(session, duplicate.id, policy))):
            to_rescreen.setdefault(gift.id, gift)

        removed_attributions = _move_attributions(session, survivor, duplicate, result)
        removed_relationships = _move_relationships(session, survivor, duplicate, result)
        facts_moved, facts_sealed = merge_facts(session, survivor.id, duplicate.id)
        result.moved.update(facts_moved)
        # A tag both records carry stays once (a donor has each tag once); the rest move.
        session.execute(delete(DonorTag).where(
            DonorTag.donor_id == duplicate.id,
            DonorTag.tag.in_(select(DonorTag.tag).where(DonorTag.donor_id == survivor.id))))
        for model, column in _donor_references():
            if (column.table.name, column.name) in _HANDLED_APART:
                continue
            attribute = getattr(model, column.key)
            key = list(model.__table__.primary_key.columns)[0]
            ids = list(session.execute(
                select(key).where(attribute == duplicate.id).order_by(key)
            ).scalars())
            if ids:
                session.execute(update(model).where(attribute == duplicate.id)
                                .values({column.key: survivor.id}))
                result.moved[f"{column.table.name}.{column.name}"] = ids
        result.repointed_merged_ids = list(session.execute(
            select(DonorMerge.duplicate_id).where(DonorMerge.survivor_id == duplicate.id)
            .order_by(DonorMerge.duplicate_id)
        ).scalars())
        if result.repointed_merged_ids:
            session.execute(update(DonorMerge)
                            .where(DonorMerge.survivor_id == duplicate.id)
                            .values(survivor_id=survivor.id))
        merge_row = DonorMerge(duplicate_id=duplicate.id, survivor_id=survivor.id)
        session.add(merge_row)
        # Asked once to stay out of public listings: still so after the merge.
        became_anonymous = duplicate.anonymous and not survivor.anonymous
        if became_anonymous:
            survivor.anonymous = True
        session.flush()
        # The survivor now has the duplicate's affiliations; the duplicate has none.
        refresh_possibly_covered(session, donor_ids=(survivor.id, duplicate.id))

        why = (f"Donor records merged: donor {duplicate.id} ({duplicate.name}) into donor "
               f"{survivor.id} ({survivor.name}) {_today_by(actor)}; the gift is now "
               "screened with both records' affiliations.")
        for gift in sorted(to_rescreen.values(), key=lambda g: (g.received_on, g.id)):
            session.refresh(gift)
            result.rescreened_gift_ids.append(
                hold_for_rescreen(session, gift, policy, actor, why).gift_id)
        if result.moved.get("relationship.donor_id"):
            # The survivor's gifts against the relationships it now has (household rule).
            ranges = [(r.start_date, r.end_date) for r in session.execute(
                select(Relationship).where(Relationship.id.in_(
                    result.moved["relationship.donor_id"]))
                .execution_options(populate_existing=True)).scalars()]
            result.rescreened_gift_ids += [
                d.gift_id for d in relationships.rescreen_household_gifts(
                    session, survivor.id, ranges, policy, actor, why,
                    set(result.rescreened_gift_ids))]

        external_ids = list(session.execute(
            select(DonorExternalId.external_id).where(DonorExternalId.donor_id == duplicate.id)
        ).scalars())
        # The rows the merge moved (bulk UPDATEs), as they now stand: the entry seals them.
        sealed: list = [survivor, merge_row, *[row_hashes.removed(Attribution, i)
                                               for i in removed_attributions],
                        *[row_hashes.removed(Relationship, i) for i in removed_relationships]]
        if result.repointed_merged_ids:
            sealed += session.execute(
                select(DonorMerge).where(DonorMerge.duplicate_id.in_(
                    result.repointed_merged_ids))
                .execution_options(populate_existing=True)).scalars().all()
        sealed += facts_sealed
        for name, ids in result.moved.items():
            table = name.split(".", 1)[0]
            if table in row_hashes.SEALED and ids and name not in facts_moved:
                model = row_hashes.SEALED[table].model
                sealed += session.execute(
                    select(model).where(model.id.in_(ids))
                    .execution_options(populate_existing=True)).scalars().all()
        sealed += [a for a in session.execute(
            select(Attribution).where(Attribution.gift_id.in_(
                result.combined_attribution_gift_ids), Attribution.donor_id == survivor.id)
            .execution_options(populate_existing=True)).scalars()]
        # Declarations refused before payment under the duplicate's address: kept by that
        # address (anyone may type it again), and from now on shown on the survivor's page
        # and holding the survivor's online gifts (declarations.person_email_keys).
        refused_ids = [] if duplicate.email_key in (None, survivor.email_key) else list(
            session.execute(select(RefusedDeclaration.id).where(
                RefusedDeclaration.email_key == duplicate.email_key)
                .order_by(RefusedDeclaration.id)).scalars())
        audit.append(session, actor, "donor.merged", "donor", survivor.id, {
            "survivor_id": survivor.id,
            "duplicate_id": duplicate.id,
            "moved": result.moved,
            "combined_attribution_gift_ids": result.combined_attribution_gift_ids,
            "repointed_merged_ids": result.repointed_merged_ids,
            "duplicate_external_ids": external_ids,
            "survivor_made_anonymous": became_anonymous,
            "rescreened_gift_ids": result.rescreened_gift_ids,
            "refused_declaration_ids": refused_ids,
        }, sealed=sealed)
    return result
