"""JSON API for donor segments (saved searches) and donor tags (docs/api.md, "Segments")."""

from __future__ import annotations

from flask import g, jsonify

from app.api import serialize as out
from app.api.access import parse_body, query_int, require
from app.api.idempotency import recording
from app.api.routes import _created, _get, bp
from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import segments
from models import Donor, Segment
from models.schemas import SegmentCreate, TagSet

MAX_ID = 2**63 - 1


def segment_public(segment: Segment) -> dict:
    return {"id": segment.id, "name": segment.name, "description": segment.description,
            "criteria": segment.criteria, "created_by_id": segment.created_by_id,
            "created_at": segment.created_at.isoformat(timespec="seconds")}


@bp.get("/segments")
@require(READ)
def list_segments():
    return jsonify({"items": [segment_public(s) for s in segments.all_segments(get_session())]})


@bp.post("/segments")
@require("segments.write")
@recording
def create_segment():
    data = parse_body(SegmentCreate)
    segment = segments.create_segment(get_session(), data, state().reporting_currency, g.actor)
    return _created(segment_public(segment))


@bp.get("/segments/<int:segment_id>")
@require(READ)
def get_segment(segment_id: int):
    return jsonify(segment_public(_get(Segment, segment_id, "segment")))


@bp.get("/segments/<int:segment_id>/donors")
@require(READ)
def segment_donors(segment_id: int):
    """The segment's members today, by id, in pages (?after_id=&limit=)."""
    segment = _get(Segment, segment_id, "segment")
    session = get_session()
    limit = query_int("limit", 50, 1, 500)
    after = query_int("after_id", 0, 0, MAX_ID)
    donors = session.execute(
        segments.members(session, segments.criteria_of(segment), state().reporting_currency)
        .where(Donor.id > after).order_by(Donor.id).limit(limit)).scalars().all()
    return jsonify({"segment_id": segment.id,
                    "items": [out.donor_public(d) for d in donors],
                    "next_after_id": donors[-1].id if len(donors) == limit else None})


@bp.get("/donors/<int:donor_id>/tags")
@require(READ)
def get_tags(donor_id: int):
    _get(Donor, donor_id, "donor")
    return jsonify({"donor_id": donor_id,
                    "tags": segments.tags_of(get_session(), [donor_id]).get(donor_id, [])})


@bp.put("/donors/<int:donor_id>/tags")
@require("donors.write")
@recording
def put_tags(donor_id: int):
    _get(Donor, donor_id, "donor")
    tags = segments.set_tags(get_session(), donor_id, parse_body(TagSet).tags, g.actor)
    return jsonify({"donor_id": donor_id, "tags": tags})
