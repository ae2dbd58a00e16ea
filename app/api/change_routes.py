"""JSON API for changes that weaken enforcement: editing organisations, affiliations and roster
entries under
the two-person rule, and the pending changes a second person approves or declines.

A request whose every part tightens (or changes nothing the rules read) answers as before;
one with a weakening part applies the rest at once and answers 202 with the change that
now waits: {"change_id": N, "status": "pending_approval", ...}.
"""

from __future__ import annotations

from flask import g, jsonify
from pydantic import ValidationError
from sqlalchemy import select

from app.api import serialize as out
from app.api.access import ApiError, optional_note, parse_body, query_choice, require
from app.api.idempotency import recording
from app.api.identity import roster_public
from app.api.routes import _get, _policy, bp
from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import changes
from app.presenters.changes import change_public, replay_public
from models import Affiliation, InKindArrangement, Organization, PendingChange, RosterEntry
from models.changes import CHANGE_STATES
from models.schemas import (
    AffiliationCreate,
    InKindCreate,
    OrganizationCreate,
    OrganizationPatch,
    RosterEntryCreate,
    field_errors,
)


def _rescreened(decisions) -> list[int]:
    return [d.gift_id for d in decisions]


def _answer(proposed: changes.Proposed, body: dict, status: int = 200):
    """200 with the record, or 202 naming the change that waits (with the record as it now
    is, after any part that applied at once)."""
    body = {**body, "rescreened_gift_ids": _rescreened(proposed.rescreened)}
    if proposed.change is None:
        return jsonify(body), status
    return jsonify({"change_id": proposed.change.id, "status": "pending_approval",
                    "weakens": list(proposed.change.weakens), **body}), 202


@bp.patch("/organizations/<int:org_id>")
@require("organizations.write")
@recording
def patch_organization(org_id: int):
    org = _get(Organization, org_id, "organization")
    patch = parse_body(OrganizationPatch)
    values = {"name": org.name, "covered_lab": org.covered_lab, "aliases": list(org.aliases or []),
              "parent_id": org.parent_id, **patch.model_dump(exclude_unset=True)}
    try:
        data = OrganizationCreate.model_validate(values)
    except ValidationError as error:
        raise ApiError(422, "invalid input", field_errors(error)) from None
    proposed = changes.propose_organization_change(get_session(), org_id, data, g.actor,
                                                   _policy())
    return _answer(proposed, out.organization_public(proposed.record))


@bp.put("/affiliations/<int:affiliation_id>")
@require("affiliations.write")
@recording
def update_affiliation(affiliation_id: int):
    """The whole affiliation, as before; a weakening part waits for a second person."""
    data = parse_body(AffiliationCreate)
    proposed = changes.propose_affiliation_change(get_session(), affiliation_id, data, g.actor,
                                                  _policy())
    return _answer(proposed, out.affiliation_public(proposed.record))


@bp.put("/in-kind/<int:item_id>")
@require("in_kind.write")
@recording
def update_in_kind(item_id: int):
    """The whole arrangement, as POST /in-kind takes it; ending it is an end_date. At a
    covered lab, what would take disclosed support out of the disclosure waits for a second
    person (202); the rest applies at once."""
    _get(InKindArrangement, item_id, "in-kind arrangement")
    data = parse_body(InKindCreate)
    proposed = changes.propose_in_kind_change(get_session(), item_id, data, g.actor, _policy(),
                                              state().today())
    return _answer(proposed, out.in_kind_public(proposed.record))


@bp.delete("/affiliations/<int:affiliation_id>")
@require("affiliations.write")
@recording
def delete_affiliation(affiliation_id: int):
    _get(Affiliation, affiliation_id, "affiliation")
    proposed = changes.propose_affiliation_removal(get_session(), affiliation_id, g.actor,
                                                   _policy())
    return _answer(proposed, {"id": affiliation_id, "removed": proposed.change is None})


@bp.put("/rosters/<int:entry_id>")
@require("review")
@recording
def update_roster_entry(entry_id: int):
    """The whole roster entry, as a roster row has it; ending it early (or anything else
    that weakens, at a covered lab) waits for a second person."""
    session = get_session()
    _get(RosterEntry, entry_id, "roster entry")
    data = parse_body(RosterEntryCreate)
    proposed = changes.propose_roster_change(session, entry_id, data, g.actor, _policy())
    org_names = dict(session.execute(select(Organization.id, Organization.name)).all())
    return _answer(proposed, roster_public(proposed.record, org_names))


@bp.delete("/rosters/<int:entry_id>")
@require("review")
@recording
def delete_roster_entry(entry_id: int):
    _get(RosterEntry, entry_id, "roster entry")
    proposed = changes.propose_roster_removal(get_session(), entry_id, g.actor, _policy())
    return _answer(proposed, {"id": entry_id, "removed": proposed.change is None})


@bp.get("/changes")
@require(READ)
def list_changes():
    wanted = query_choice("status", CHANGE_STATES)
    session = get_session()
    policy = _policy()
    return jsonify({"items": [change_public(session, c, policy)
                              for c in changes.changes_in_state(session, wanted,
                                                                policy=policy)]})


@bp.get("/changes/<int:change_id>")
@require(READ)
def get_change(change_id: int):
    session = get_session()
    change = _get(PendingChange, change_id, "change")
    body = change_public(session, change, _policy())
    if change.kind == "policy_version" and body["status"] == "pending":
        st = state()
        result = changes.policy_replay(session, change, _policy(), st.today())
        body["replay"] = replay_public(result, st.reporting_currency)
    return jsonify(body)


@bp.post("/changes/<int:change_id>/approve")
@require("review")
@recording
def approve_change(change_id: int):
    _get(PendingChange, change_id, "change")
    note = _note()
    st = state()
    try:
        decided = changes.approve_change(get_session(), change_id, g.actor, st.policies,
                                         st.today(), note=note)
    except changes.ChangeExpired as expired:
        return _expired(expired)
    return jsonify({**change_public(get_session(), decided.change, _policy()),
                    "rescreened_gift_ids": _rescreened(decided.rescreened)})


@bp.post("/changes/<int:change_id>/decline")
@require("changes.decline")
@recording
def decline_change(change_id: int):
    _get(PendingChange, change_id, "change")
    try:
        change = changes.decline_change(get_session(), change_id, g.actor, _policy(),
                                        note=_note())
    except changes.ChangeExpired as expired:
        return _expired(expired)
    return jsonify(change_public(get_session(), change, _policy()))


def _expired(expired: changes.ChangeExpired):
    """409, answered (not raised): the request's transaction commits the recorded expiry."""
    return jsonify({"error": str(expired), "change_id": expired.change.id,
                    "status": "expired"}), 409


def _note() -> str | None:
    note = (optional_note() or "").strip() or None
    if note is not None and len(note) > 2000:
        raise ApiError(422, "invalid input", {"note": ["at most 2000 characters"]})
    return note
