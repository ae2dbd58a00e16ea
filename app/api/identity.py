"""JSON API for identity matching: a donor's possible matches, a reviewer's answers about
them, and rosters of people at labs. Routes on the API blueprint (app.api.routes.bp)."""

from __future__ import annotations

from flask import g, jsonify, request
from sqlalchemy import select

from app.api.access import MAX_ID, ApiError, parse_body, query_int, require
from app.api.idempotency import recording
from app.api.routes import _created, _get, _policy, bp
from app.auth.roles import READ
from app.db import get_session
from app.ledger import matches, rosters
from models import Donor, Organization, RosterEntry
from models.schemas import MatchVerdictCreate
from policies.identity import score_text


def match_public(match: matches.PossibleMatch) -> dict:
    fact = match.fact
    return {
        "record": fact.record,
        "record_id": fact.record_id,
        "name": fact.name,
        "score": match.score,
        "probable": match.probable,
        "name_similarity": score_text(fact.name_similarity),
        "same_email": fact.same_email,
        "same_phone": fact.same_phone,
        "same_address": fact.same_address,
        # One name gives the given name as an initial that agrees with the other's.
        "same_initial": fact.same_initial,
        "labs": match.labs,
        "resolved_different": fact.different,
    }


def roster_public(entry: RosterEntry, org_names: dict[int, str]) -> dict:
    return {
        "id": entry.id,
        "name": entry.name,
        "title": entry.title,
        "organization_id": entry.organization_id,
        "organization": org_names.get(entry.organization_id),
        "start_date": entry.start_date.isoformat(),
        "end_date": entry.end_date.isoformat() if entry.end_date else None,
        "senior_decision_maker": entry.senior_decision_maker,
        "source": entry.source,
        "created_at": entry.created_at.isoformat(),
    }


@bp.get("/donors/<int:donor_id>/matches")
@require(READ)
def donor_matches(donor_id: int):
    policy = _policy()
    found = matches.possible_matches(get_session(), donor_id, policy)
    return jsonify({"donor_id": donor_id,
                    "threshold": score_text(policy.settings["possible_match"]["threshold"]),
                    "items": [match_public(m) for m in found]})


@bp.post("/donors/<int:donor_id>/matches/different")
@require("review")
@recording
def match_different(donor_id: int):
    data = parse_body(MatchVerdictCreate)
    _get(Donor, donor_id, "donor")
    verdict = matches.different(get_session(), donor_id, data.record, data.record_id,
                                data.reason, g.actor)
    return _created({"id": verdict.id, "donor_id": donor_id, "record": data.record,
                     "record_id": data.record_id, "verdict": "different"})


@bp.post("/donors/<int:donor_id>/matches/same")
@require("review")
@recording
def match_same(donor_id: int):
    data = parse_body(MatchVerdictCreate)
    _get(Donor, donor_id, "donor")
    verdict, rescreened = matches.same(get_session(), donor_id, data.record, data.record_id,
                                       data.reason, g.actor, _policy())
    return _created({"id": verdict.id if verdict else None, "donor_id": donor_id,
                     "record": data.record, "record_id": data.record_id, "verdict": "same",
                     "rescreened_gift_ids": [d.gift_id for d in rescreened]})


def _roster_text() -> tuple[str, str | None]:
    """The CSV from a text/csv body or a multipart "file" part, as text."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(422, "invalid input", {"file": ["attach the roster as \"file\""]})
        raw, name = upload.read(), (upload.filename or "")[:200] or None
    elif request.mimetype in ("text/csv", "text/plain"):
        raw, name = request.get_data(), None
    else:
        raise ApiError(415, "send the roster as text/csv or multipart/form-data")
    try:
        return raw.decode("utf-8"), name
    except UnicodeDecodeError:
        raise ApiError(422, "invalid input", {"file": ["not UTF-8 text"]}) from None


@bp.post("/rosters")
@require("review")
@recording
def import_roster():
    session = get_session()
    text, name = _roster_text()
    entries = rosters.read_roster(session, text)
    stored, rescreened = rosters.import_roster(session, entries, g.actor, _policy(),
                                               file_name=name)
    org_names = dict(session.execute(select(Organization.id, Organization.name)).all())
    return _created({"imported": len(stored),
                     "entries": [roster_public(e, org_names) for e in stored],
                     "rescreened_gift_ids": [d.gift_id for d in rescreened]})


@bp.get("/rosters")
@require(READ)
def list_rosters():
    session = get_session()
    limit = query_int("limit", 50, 1, 500)
    after = query_int("after_id", 0, 0, MAX_ID)
    entries = session.execute(select(RosterEntry).where(RosterEntry.id > after)
                              .order_by(RosterEntry.id).limit(limit)).scalars().all()
    org_names = dict(session.execute(select(Organization.id, Organization.name)).all())
    return jsonify({"items": [roster_public(e, org_names) for e in entries],
                    "next_after_id": entries[-1].id if len(entries) == limit else None})
