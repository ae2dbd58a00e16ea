"""JSON API for relationships between people and the households they make (docs/api.md,
"Households and relationships"). Recording one applies at once and re-screens; ending or
deleting one that could let money through answers 202 and waits for a second person."""

from __future__ import annotations

from flask import g, jsonify

from app.api.access import parse_body, require
from app.api.change_routes import _answer
from app.api.idempotency import recording
from app.api.routes import _get, _policy, bp
from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import changes, relationships
from app.presenters.relationships import household_public, related_public, relationship_public
from models import Donor, Relationship
from models.schemas import RelationshipCreate, RelationshipEnd


@bp.get("/donors/<int:donor_id>/relationships")
@require(READ)
def list_relationships(donor_id: int):
    _get(Donor, donor_id, "donor")
    today = state().today()
    return jsonify({"relationships": [
        related_public(r, today) for r in relationships.relationships_of(get_session(), donor_id)]})


@bp.post("/donors/<int:donor_id>/relationships")
@require("affiliations.write")
@recording
def create_relationship(donor_id: int):
    _get(Donor, donor_id, "donor")
    data = parse_body(RelationshipCreate)
    rel, rescreened = relationships.add_relationship(get_session(), donor_id, data, g.actor,
                                                     _policy())
    return jsonify({**relationship_public(rel, state().today()),
                    "rescreened_gift_ids": [d.gift_id for d in rescreened]}), 201


@bp.post("/relationships/<int:relationship_id>/end")
@require("affiliations.write")
@recording
def end_relationship(relationship_id: int):
    _get(Relationship, relationship_id, "relationship")
    data = parse_body(RelationshipEnd)
    proposed = changes.propose_relationship_end(get_session(), relationship_id, data.end_date,
                                                g.actor, _policy())
    return _answer(proposed, relationship_public(proposed.record, state().today()))


@bp.delete("/relationships/<int:relationship_id>")
@require("affiliations.write")
@recording
def delete_relationship(relationship_id: int):
    _get(Relationship, relationship_id, "relationship")
    proposed = changes.propose_relationship_removal(get_session(), relationship_id, g.actor,
                                                    _policy())
    return _answer(proposed, {"id": relationship_id, "removed": proposed.change is None})


@bp.get("/households/<int:donor_id>")
@require(READ)
def get_household(donor_id: int):
    """The household of this donor (any member's id names it; its id is the smallest)."""
    _get(Donor, donor_id, "donor")
    st = state()
    today = st.today()
    found = relationships.household(get_session(), donor_id, st.reporting_currency, today)
    return jsonify(household_public(found, today))
