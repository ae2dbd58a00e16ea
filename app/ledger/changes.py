"""Two people for anything that weakens enforcement.

Every edit of an organisation, an affiliation, a roster entry or the policy made by a person (staff pages,
JSON API) comes here, never straight to app.ledger.parties or app.ledger.policy_store:

- the part that only tightens (or changes nothing the rules read) applies at once, through
  the same ledger code as before (re-screening included);
- the part that weakens (app.ledger.weakening says which) is stored as a PendingChange and
  changes nothing until a second person, a reviewer or admin who is not the proposer
  (app.ledger.approvers.check_may_approve), approves it. Approval applies it through that
  same ledger code; a decline ends it. Each step is audited.

A change not approved within the policy's [approvals] pending_change_days of its proposal
expires: nobody may approve it any more (ChangeExpired, a 409), since by then nobody
remembers what it was for. It shows as expired at once (status_of); the next approval,
decline or proposal of any change records the expiry (state "expired", audit entry
change.expired by "system"), in that request's own transaction.

A new policy version always waits: what it would change is shown first by a replay of the
last 365 days of the ledger under it (policy_replay). An approved version takes effect on
the day of its approval, never earlier.

The CSV import and the CLI only add organisations' people (add_affiliation, tightening) and
register the shipped policy file: they make no weakening change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import tomli_w
from sqlalchemy import select
from sqlmodel import Session

from app.db.locking import ledger_batch
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit, parties, policy_store, relationships, rosters, whatif
from app.ledger.approvers import check_may_approve
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations
from app.ledger.weakening import (
    IN_KIND_FIELDS,
    Split,
    split_affiliation,
    split_in_kind,
    split_organization,
    split_roster_entry,
)
from models import (
    Affiliation,
    Decision,
    Donor,
    InKindArrangement,
    Organization,
    PendingChange,
    PolicyVersion,
    Relationship,
    RosterEntry,
    utcnow,
)
from models.schemas import (
    AffiliationCreate,
    InKindCreate,
    OrganizationCreate,
    RosterEntryCreate,
)
from policies import Policy, PolicyError
from policies.document import policy_from_mapping

#: The replay shown with a proposed policy version covers this many days, ending today.
REPLAY_DAYS = 365

ORGANIZATION_FIELDS = ("name", "covered_lab", "aliases", "parent_id")
AFFILIATION_FIELDS = ("organization_id", "kind", "title", "senior_decision_maker", "start_date",
                      "end_date")


@dataclass
class Proposed:
    """What an edit did: the record as it now is, the gifts re-screened by the part that
    applied at once, and the change waiting for a second person (None: nothing waits)."""

    record: object | None
    rescreened: list[Decision] = field(default_factory=list)
    change: PendingChange | None = None


class ChangeExpired(NotAllowed):
    """Approval or decline of a change whose time ran out. Raised after the expiry is
    recorded, outside the ledger transaction: a caller inside a larger transaction (an API
    request's) answers with it and commits, so the record stays."""

    def __init__(self, change: PendingChange, policy: Policy):
        self.change = change
        deadline = expires_at(change, policy)
        super().__init__(
            f"change {change.id} expired on {deadline:%Y-%m-%d %H:%M} UTC: a change may be "
            f"approved within {policy.pending_change_days} days of its proposal (the policy's "
            "[approvals] pending_change_days) and nothing of it applies after; propose it "
            "again if it is still wanted")


@dataclass
class Decided:
    change: PendingChange
    rescreened: list[Decision] = field(default_factory=list)


def _day(value) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _jsonable(values: dict) -> dict:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


def expires_at(change: PendingChange, policy: Policy) -> datetime:
    """When a change proposed then stops being approvable (the policy in force decides)."""
    return change.proposed_at + timedelta(days=policy.pending_change_days)


def status_of(change: PendingChange, policy: Policy, now: datetime | None = None) -> str:
    """The change's status for people and the API: its state, or "expired" for a pending
    change past its time whose expiry is not recorded yet."""
    if change.state == "pending" and (now or utcnow()) >= expires_at(change, policy):
        return "expired"
    return change.state


def _expire_due(session: Session, policy: Policy, now: datetime,
                noticed_by: Actor) -> list[PendingChange]:
    """Record the expiry of every pending change past its time (inside a ledger batch)."""
    due = session.execute(
        select(PendingChange).where(
            PendingChange.state == "pending",
            PendingChange.proposed_at <= now - timedelta(days=policy.pending_change_days))
        .order_by(PendingChange.id)
    ).scalars().all()
    for change in due:
        # Nobody decided: decided_by and decided_at stay empty; the audit entry has the time.
        change.state = "expired"
        audit.append(session, audit.SYSTEM, "change.expired", "pending_change", change.id, {
            "kind": change.kind, "target_id": change.target_id,
            "proposed_by_id": change.proposed_by_id,
            "proposed_at": change.proposed_at.isoformat(),
            "expired_at": expires_at(change, policy).isoformat(),
            "pending_change_days": policy.pending_change_days,
            "noticed_by": noticed_by.label,
        }, sealed=[change])
    return list(due)


def _open(session: Session, kind: str, target_id: int | None, split: Split | None,
          actor: Actor, policy: Policy, *, proposed: dict | None = None,
          before: dict | None = None, weakens: list[str] | None = None) -> PendingChange:
    if actor.user_id is None:
        raise NotAllowed("a change that weakens enforcement must be proposed by a named user")
    _expire_due(session, policy, utcnow(), actor)
    change = PendingChange(
        kind=kind, target_id=target_id,
        proposed=_jsonable(split.pending) if split else proposed,
        before=_jsonable(split.before) if split else before,
        weakens=split.weakens if split else weakens, proposed_by_id=actor.user_id,
    )
    session.add(change)
    session.flush()
    if kind == "policy_version":
        shown = {"proposed": {"version": change.proposed.get("version")}, "before": change.before}
    elif kind == "in_kind":
        # What an arrangement provides is words people typed: the chain names the fields
        # (the sealed pending_change row keeps the values).
        shown = {"proposed": sorted(change.proposed), "before": sorted(change.before or {})}
    else:
        shown = {"proposed": change.proposed, "before": change.before}
    audit.append(session, actor, "change.proposed", "pending_change", change.id, {
        "kind": kind, "target_id": target_id, "weakens": change.weakens, **shown,
    }, sealed=[change])
    return change


# --- organisations --------------------------------------------------------------------------

def _organization_values(org: Organization) -> dict:
    return {"name": org.name, "covered_lab": org.covered_lab, "aliases": list(org.aliases or []),
            "parent_id": org.parent_id}


def propose_organization_change(session: Session, org_id: int, data: OrganizationCreate,
                                actor: Actor, policy: Policy) -> Proposed:
    """Edit an organisation: what tightens applies now, what weakens waits."""
    with ledger_batch(session):
        org, _family = parties.check_organization_update(session, org_id, data)
        covered = CoveredOrganizations(session)
        split = split_organization(_organization_values(org), data.model_dump(),
                                   covered=covered.covered(org.id),
                                   covered_parent=covered.covered)
        org, rescreened = parties.update_organization(
            session, org_id, OrganizationCreate(**split.now), actor, policy)
        change = _open(session, "organization", org_id, split, actor, policy) if split.pending else None
    return Proposed(org, rescreened, change)


def _apply_organization(session: Session, change: PendingChange, actor: Actor,
                        policy: Policy) -> list[Decision]:
    org = session.get(Organization, change.target_id)
    if org is None:
        raise NotAllowed(f"organisation {change.target_id} no longer exists")
    values = _organization_values(org)
    _refuse_if_moved(change, values)
    values.update(change.proposed)
    _org, rescreened = parties.update_organization(
        session, org.id, OrganizationCreate(**values), actor, policy)
    return rescreened


# --- affiliations ---------------------------------------------------------------------------

def _affiliation_values(aff: Affiliation) -> dict:
    return {k: getattr(aff, k) for k in AFFILIATION_FIELDS}


def propose_affiliation_change(session: Session, affiliation_id: int, data: AffiliationCreate,
                               actor: Actor, policy: Policy) -> Proposed:
    with ledger_batch(session):
        aff = session.get(Affiliation, affiliation_id)
        if aff is None:
            raise NotFound("affiliation", affiliation_id)
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        split = split_affiliation(
            _affiliation_values(aff), data.model_dump(),
            covered_before=CoveredOrganizations(session).covered(aff.organization_id))
        aff, rescreened = parties.update_affiliation(
            session, affiliation_id, AffiliationCreate(**split.now), actor, policy)
        change = (_open(session, "affiliation", affiliation_id, split, actor, policy)
                  if split.pending else None)
    return Proposed(aff, rescreened, change)


def propose_affiliation_removal(session: Session, affiliation_id: int, actor: Actor,
                                policy: Policy) -> Proposed:
    """Delete an affiliation: at once at an organisation that is not covered, else it waits."""
    with ledger_batch(session):
        aff = session.get(Affiliation, affiliation_id)
        if aff is None:
            raise NotFound("affiliation", affiliation_id)
        if not CoveredOrganizations(session).covered(aff.organization_id):
            return Proposed(None, parties.remove_affiliation(session, affiliation_id, actor,
                                                             policy))
        values = _jsonable(_affiliation_values(aff))
        change = _open(session, "affiliation_removal", affiliation_id, None, actor, policy,
                       proposed={}, before=values,
                       weakens=["affiliation with a covered organisation deleted"])
    return Proposed(aff, [], change)


def _apply_affiliation(session: Session, change: PendingChange, actor: Actor,
                       policy: Policy) -> list[Decision]:
    aff = session.get(Affiliation, change.target_id)
    if aff is None:
        raise NotAllowed(f"affiliation {change.target_id} no longer exists")
    values = _jsonable(_affiliation_values(aff))
    _refuse_if_moved(change, values)
    if change.kind == "affiliation_removal":
        return parties.remove_affiliation(session, aff.id, actor, policy)
    values.update(change.proposed)
    try:
        data = AffiliationCreate.model_validate(values)
    except ValueError as error:
        raise NotAllowed(f"the change no longer fits the affiliation: {error}") from None
    _aff, rescreened = parties.update_affiliation(session, aff.id, data, actor, policy)
    return rescreened


def _refuse_if_moved(change: PendingChange, values: dict) -> None:
    moved = sorted(k for k, v in change.before.items() if _jsonable(values).get(k) != v)
    if moved:
        raise NotAllowed(
            f"change {change.id} was proposed on values that have changed since "
            f"({', '.join(moved)}): decline it and propose again")


# --- roster entries -------------------------------------------------------------------------

def propose_roster_change(session: Session, entry_id: int, data: RosterEntryCreate,
                          actor: Actor, policy: Policy) -> Proposed:
    """Edit a roster entry: what tightens (an extension, a senior flag, a correction at an
    organisation that is not covered) applies now; ending it early and the rest of what
    weakens (app.ledger.weakening.split_roster_entry) waits for a second person."""
    with ledger_batch(session):
        entry = rosters.roster_entry(session, entry_id)
        if session.get(Organization, data.organization_id) is None:
            raise ValidationFailed({"organization_id": ["no such organisation"]})
        split = split_roster_entry(
            rosters.roster_values(entry), data.model_dump(),
            covered_before=CoveredOrganizations(session).covered(entry.organization_id))
        try:
            now = RosterEntryCreate.model_validate(split.now)
        except ValueError as error:
            # The part that would apply now alone breaks a rule (a start moved past an
            # unchanged end): nothing applies; the whole edit waits.
            raise ValidationFailed({"body": [f"{error}"]}) from None
        entry, rescreened = rosters.update_roster_entry(session, entry_id, now, actor, policy)
        change = (_open(session, "roster_entry", entry_id, split, actor, policy)
                  if split.pending else None)
    return Proposed(entry, rescreened, change)


def propose_roster_removal(session: Session, entry_id: int, actor: Actor,
                           policy: Policy) -> Proposed:
    """Delete a roster entry: at once at an organisation that is not covered, else it waits."""
    with ledger_batch(session):
        entry = rosters.roster_entry(session, entry_id)
        if not CoveredOrganizations(session).covered(entry.organization_id):
            rosters.remove_roster_entry(session, entry_id, actor)
            return Proposed(None)
        change = _open(session, "roster_entry_removal", entry_id, None, actor, policy,
                       proposed={},
                       before=_jsonable(rosters.roster_values(entry)),
                       weakens=["roster entry at a covered organisation deleted"])
    return Proposed(entry, [], change)


def _apply_roster(session: Session, change: PendingChange, actor: Actor,
                  policy: Policy) -> list[Decision]:
    entry = session.get(RosterEntry, change.target_id)
    if entry is None:
        raise NotAllowed(f"roster entry {change.target_id} no longer exists")
    values = _jsonable(rosters.roster_values(entry))
    _refuse_if_moved(change, values)
    if change.kind == "roster_entry_removal":
        rosters.remove_roster_entry(session, entry.id, actor)
        return []
    values.update(change.proposed)
    try:
        data = RosterEntryCreate.model_validate(values)
    except ValueError as error:
        raise NotAllowed(f"the change no longer fits the roster entry: {error}") from None
    _entry, rescreened = rosters.update_roster_entry(session, entry.id, data, actor, policy)
    return rescreened


# --- in-kind arrangements -------------------------------------------------------------------

def propose_in_kind_change(session: Session, item_id: int, data: InKindCreate, actor: Actor,
                           policy: Policy, today: date) -> Proposed:
    """Edit or end an in-kind arrangement: at a covered lab what would take disclosed support
    out of the disclosure waits (app.ledger.weakening.split_in_kind), the rest applies now."""
    with ledger_batch(session):
        item = session.get(InKindArrangement, item_id)
        if item is None:
            raise NotFound("in-kind arrangement", item_id)
        split = split_in_kind(
            parties.in_kind_values(item), {k: getattr(data, k) for k in IN_KIND_FIELDS},
            covered=CoveredOrganizations(session).covered(item.organization_id), today=today)
        item = parties.update_in_kind(session, item_id, split.now, actor)
        change = _open(session, "in_kind", item_id, split, actor, policy) if split.pending else None
    return Proposed(item, [], change)


def _apply_in_kind(session: Session, change: PendingChange, actor: Actor) -> None:
    item = session.get(InKindArrangement, change.target_id)
    if item is None:
        raise NotAllowed(f"in-kind arrangement {change.target_id} no longer exists")
    values = parties.in_kind_values(item)
    _refuse_if_moved(change, values)
    values.update({k: _day(v) if k in ("start_date", "end_date") else v
                   for k, v in change.proposed.items()})
    parties.update_in_kind(session, item.id, values, actor)


# --- relationships --------------------------------------------------------------------------

def propose_relationship_end(session: Session, relationship_id: int, end_date: date,
                             actor: Actor, policy: Policy) -> Proposed:
    """End a relationship: at once when it stops no money (relationships.weakens), else it
    waits for a second person. An end later than the one recorded only lengthens it: at once."""
    with ledger_batch(session):
        rel = relationships.get_relationship(session, relationship_id)
        if end_date < rel.start_date:
            raise ValidationFailed({"end_date": ["must not be before start_date"]})
        why = relationships.weakens(session, rel, policy)
        shortens = rel.end_date is None or end_date < rel.end_date
        if not why or not shortens:
            rel, rescreened = relationships.end_relationship(session, relationship_id,
                                                             end_date, actor, policy)
            return Proposed(rel, rescreened)
        change = _open(session, "relationship_end", relationship_id, None, actor, policy,
                       proposed={"end_date": end_date.isoformat()},
                       before=_jsonable(relationships.values_of(rel)),
                       weakens=[f"ended on {end_date.isoformat()}: {why[0]}"])
    return Proposed(rel, [], change)


def propose_relationship_removal(session: Session, relationship_id: int, actor: Actor,
                                 policy: Policy) -> Proposed:
    """Delete a relationship recorded in error: at once when it stops no money, else it waits."""
    with ledger_batch(session):
        rel = relationships.get_relationship(session, relationship_id)
        why = relationships.weakens(session, rel, policy)
        if not why:
            rescreened = relationships.remove_relationship(session, relationship_id, actor,
                                                           policy)
            return Proposed(None, rescreened)
        change = _open(session, "relationship_removal", relationship_id, None, actor, policy,
                       proposed={}, before=_jsonable(relationships.values_of(rel)),
                       weakens=[f"deleted: {why[0]}"])
    return Proposed(rel, [], change)


def _apply_relationship(session: Session, change: PendingChange, actor: Actor,
                        policy: Policy) -> list[Decision]:
    rel = session.get(Relationship, change.target_id)
    if rel is None:
        raise NotAllowed(f"relationship {change.target_id} no longer exists")
    _refuse_if_moved(change, relationships.values_of(rel))
    if change.kind == "relationship_removal":
        return relationships.remove_relationship(session, rel.id, actor, policy)
    return relationships.end_relationship(
        session, rel.id, date.fromisoformat(change.proposed["end_date"]), actor, policy)[1]


# --- policy versions ------------------------------------------------------------------------

def _version_taken(session: Session, version: str, *, except_change: int | None = None) -> bool:
    if session.execute(select(PolicyVersion.id).where(PolicyVersion.version == version)).first():
        return True
    for change_id, proposed in session.execute(
        select(PendingChange.id, PendingChange.proposed).where(
            PendingChange.kind == "policy_version", PendingChange.state == "pending")
    ).all():
        if change_id != except_change and proposed.get("version") == version:
            return True
    return False


def propose_policy_version(session: Session, document: dict, actor: Actor,
                           in_force: Policy) -> PendingChange:
    """Store an edited policy document as a proposal. Nothing decides by it until approved."""
    try:
        policy = policy_from_mapping(document)
    except PolicyError as error:
        raise ValidationFailed({"policy": [str(error)]}) from None
    with ledger_batch(session):
        # An expired proposal no longer holds its version name.
        _expire_due(session, in_force, utcnow(), actor)
        if _version_taken(session, policy.version) or policy.version == in_force.version:
            raise ValidationFailed({"version": ["this version exists; choose a new version name"]})
        change = _open(session, "policy_version", None, None, actor, in_force,
                       proposed=document,
                       before={"version": in_force.version},
                       weakens=["a new policy version decides every gift from its approval on"])
    return change


def _apply_policy(session: Session, change: PendingChange, actor: Actor,
                  policies: policy_store.PolicyCache, today: date) -> None:
    in_force = policies.current(session)
    if in_force.version != change.before.get("version"):
        raise NotAllowed(
            f"change {change.id} was drafted from policy version {change.before.get('version')}; "
            f"version {in_force.version} is in force now: decline it and propose again")
    if _version_taken(session, change.proposed["version"], except_change=change.id):
        raise NotAllowed(f"policy version {change.proposed['version']} exists already")
    document = dict(change.proposed)
    # Never in force before it was approved, whatever the draft said.
    proposed_from = document.get("effective_from")
    effective = max(today, date.fromisoformat(str(proposed_from))) if proposed_from else today
    document["effective_from"] = effective.isoformat()
    if session.execute(select(PolicyVersion.id).limit(1)).first() is None:
        # The file policy has been deciding gifts without a stored copy: store it first, so
        # every version a decision names can be read back.
        policy_store.register_file_policy(session, policies, actor)
    policy_store.save_policy_version(session, document, actor)
    change.result_id = session.execute(
        select(PolicyVersion.id).where(PolicyVersion.version == document["version"])
    ).scalar_one()
    change.proposed = document


def policy_replay(session: Session, change: PendingChange, in_force: Policy,
                  today: date) -> whatif.WhatIfResult:
    """The last REPLAY_DAYS days of the ledger under the proposed version. Reads only."""
    proposed = policy_from_mapping(change.proposed)
    return whatif.replay(session, in_force, proposed, today - timedelta(days=REPLAY_DAYS - 1),
                         today)


def proposed_document_text(change: PendingChange) -> str:
    return tomli_w.dumps(change.proposed)


# --- deciding -------------------------------------------------------------------------------

def _pending(session: Session, change_id: int) -> PendingChange:
    change = session.get(PendingChange, change_id)
    if change is None:
        raise NotFound("change", change_id)
    if change.state != "pending":
        raise NotAllowed(f"change {change_id} is already {change.state}")
    return change


def _decidable(session: Session, change_id: int, policy: Policy,
               actor: Actor) -> PendingChange:
    """The change, with the expiry of every change past its time recorded first."""
    _expire_due(session, policy, utcnow(), actor)
    change = session.get(PendingChange, change_id)
    if change is None:
        raise NotFound("change", change_id)
    return change


def approve_change(session: Session, change_id: int, actor: Actor,
                   policies: policy_store.PolicyCache, today: date,
                   note: str | None = None) -> Decided:
    """A second person approves: the change applies through the ledger's own code, in the
    same transaction as the approval. ChangeExpired once its time has run out."""
    with ledger_batch(session):
        policy = policies.current(session)
        change = _decidable(session, change_id, policy, actor)
        if change.state != "expired":
            return Decided(change, _approve(session, change, actor, policy, policies, today,
                                            note))
    raise ChangeExpired(change, policy)


def _approve(session: Session, change: PendingChange, actor: Actor, policy: Policy,
             policies: policy_store.PolicyCache, today: date,
             note: str | None) -> list[Decision]:
    change_id = change.id
    change = _pending(session, change_id)
    check_may_approve(session, actor.user_id, change.proposed_by_id, policy,
                      what=f"change {change_id}")
    rescreened: list[Decision] = []
    if change.kind == "organization":
        rescreened = _apply_organization(session, change, actor, policy)
    elif change.kind in ("affiliation", "affiliation_removal"):
        rescreened = _apply_affiliation(session, change, actor, policy)
    elif change.kind in ("roster_entry", "roster_entry_removal"):
        rescreened = _apply_roster(session, change, actor, policy)
    elif change.kind == "in_kind":
        _apply_in_kind(session, change, actor)
    elif change.kind in ("relationship_end", "relationship_removal"):
        rescreened = _apply_relationship(session, change, actor, policy)
    else:
        _apply_policy(session, change, actor, policies, today)
    change.state = "approved"
    change.decided_by_id = actor.user_id
    change.decided_at = utcnow()
    change.note = note
    audit.append(session, actor, "change.approved", "pending_change", change.id, {
        "kind": change.kind, "target_id": change.target_id,
        "proposed_by_id": change.proposed_by_id, "note": note,
        "result_id": change.result_id,
        "rescreened_gift_ids": [d.gift_id for d in rescreened],
    }, sealed=[change])
    return rescreened


def decline_change(session: Session, change_id: int, actor: Actor,
                   policy: Policy, note: str | None = None) -> PendingChange:
    """A reviewer or admin declines, or the proposer withdraws. Nothing of it applies.
    ChangeExpired once its time has run out (it ended by itself)."""
    with ledger_batch(session):
        change = _decidable(session, change_id, policy, actor)
        if change.state != "expired":
            change = _pending(session, change_id)
            withdrawn = actor.user_id is not None and actor.user_id == change.proposed_by_id
            if not withdrawn and actor.role not in ("reviewer", "admin"):
                raise NotAllowed("only a reviewer or admin, or the proposer, may decline a "
                                 "change")
            change.state = "declined"
            # Kept apart from the proposer (the table's two-person check): a withdrawal has
            # no second person; the audit entry names who withdrew.
            change.decided_by_id = None if withdrawn else actor.user_id
            change.decided_at = utcnow()
            change.note = note
            audit.append(session, actor, "change.declined", "pending_change", change.id, {
                "kind": change.kind, "target_id": change.target_id, "note": note,
                "withdrawn_by_proposer": withdrawn,
            }, sealed=[change])
            return change
    raise ChangeExpired(change, policy)


def changes_in_state(session: Session, status: str | None = None, *, policy: Policy,
                     now: datetime | None = None) -> list[PendingChange]:
    """Changes, oldest first; with `status`, those whose status_of is it (a pending change
    past its time is "expired", not "pending", before its expiry is recorded too)."""
    query = select(PendingChange).order_by(PendingChange.id)
    if status in ("pending", "expired"):
        query = query.where(PendingChange.state.in_(("pending", "expired")))
    elif status:
        query = query.where(PendingChange.state == status)
    found = session.execute(query).scalars()
    now = now or utcnow()
    return [c for c in found if status is None or status_of(c, policy, now) == status]


def describe(session: Session, change: PendingChange) -> str:
    """One line for people: what the change does, by name."""
    if change.kind == "policy_version":
        return f"New policy version {change.proposed.get('version')}"
    if change.kind == "organization":
        org = session.get(Organization, change.target_id)
        name = org.name if org else f"organisation {change.target_id}"
        return f"{name}: " + "; ".join(change.weakens)
    if change.kind == "in_kind":
        item = session.get(InKindArrangement, change.target_id)
        org = session.get(Organization, item.organization_id) if item else None
        return (f"In-kind arrangement {change.target_id}"
                f"{f' with {org.name}' if org else ''}: " + "; ".join(change.weakens))
    if change.kind in ("roster_entry", "roster_entry_removal"):
        entry = session.get(RosterEntry, change.target_id)
        org = session.get(Organization, entry.organization_id) if entry else None
        who = (f"Roster entry {change.target_id} ({entry.name} at "
               f"{org.name if org else 'organisation'})" if entry
               else f"Roster entry {change.target_id}")
        return f"{who}: " + "; ".join(change.weakens)
    if change.kind in ("relationship_end", "relationship_removal"):
        rel = session.get(Relationship, change.target_id)
        names = [session.get(Donor, i) for i in (rel.donor_id, rel.related_donor_id)] \
            if rel else []
        who = (" and ".join(d.name if d else "donor" for d in names)
               if names else f"Relationship {change.target_id}")
        return f"{who}: " + "; ".join(change.weakens)
    aff = session.get(Affiliation, change.target_id)
    if aff is None:
        return f"Affiliation {change.target_id}: " + "; ".join(change.weakens)
    donor = session.get(Donor, aff.donor_id)
    org = session.get(Organization, aff.organization_id)
    return (f"{donor.name if donor else 'donor'} at {org.name if org else 'organisation'}: "
            + "; ".join(change.weakens))
