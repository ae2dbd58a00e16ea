"""JSON API for the public-support test (Form 990 Schedule A, Part II): the computation for
a tax year, and the reviewer-recorded facts it uses (donors treated as one, unlimited donor
classes, unusual grants). See docs/public-support.md."""

from __future__ import annotations

from flask import g, jsonify

from app.api.access import parse_body, query_choice, query_int, require
from app.api.idempotency import recording
from app.api.routes import _created, bp
from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import public_support as ledger
from app.presenters.public_support import (
    SCHEDULE_B_COPIES,
    public_support_data,
    schedule_b_data,
)
from models.public_support import (
    SupportClassCreate,
    SupportLinkCreate,
    SupportReason,
    UnusualGrantCreate,
)


@bp.get("/public-support")
@require(READ)
def public_support():
    today = state().today()
    # Default: the last tax year that has ended (calendar years).
    year = query_int("year", today.year - 1, 1900, today.year)
    return jsonify(public_support_data(get_session(), year, state().reporting_currency))


@bp.get("/public-support/schedule-b")
@require(READ)
def schedule_b():
    """The Schedule B worksheet: copy=staff (names and addresses) or public (without)."""
    today = state().today()
    year = query_int("year", today.year - 1, 1900, today.year)
    copy = query_choice("copy", SCHEDULE_B_COPIES) or "staff"
    return jsonify(schedule_b_data(get_session(), year, state().reporting_currency, copy))


@bp.post("/public-support/links")
@require("review")
@recording
def link_donors():
    body = parse_body(SupportLinkCreate)
    link = ledger.link_donors(get_session(), body.donor_id, body.other_donor_id, body.relation,
                              body.reason, g.actor)
    return _created({"id": link.id, "donor_ids": [link.donor_id, link.other_donor_id],
                     "relation": link.relation, "reason": link.reason})


@bp.delete("/public-support/links/<int:link_id>")
@require("review")
@recording
def unlink_donors(link_id: int):
    body = parse_body(SupportReason)
    ledger.unlink_donors(get_session(), link_id, body.reason, g.actor)
    return jsonify({"id": link_id, "removed": True})


@bp.post("/public-support/classes")
@require("review")
@recording
def set_support_class():
    body = parse_body(SupportClassCreate)
    row = ledger.set_support_class(get_session(), body.donor_id, body.support_class,
                                   body.reason, g.actor)
    return _created({"donor_id": row.donor_id, "support_class": row.support_class,
                     "reason": row.reason})


@bp.delete("/public-support/classes/<int:donor_id>")
@require("review")
@recording
def clear_support_class(donor_id: int):
    body = parse_body(SupportReason)
    ledger.clear_support_class(get_session(), donor_id, body.reason, g.actor)
    return jsonify({"donor_id": donor_id, "removed": True})


@bp.post("/public-support/unusual-grants")
@require("review")
@recording
def mark_unusual_grant():
    body = parse_body(UnusualGrantCreate)
    row = ledger.mark_unusual_grant(get_session(), body.gift_id, body.reason, g.actor)
    return _created({"gift_id": row.gift_id, "reason": row.reason})


@bp.delete("/public-support/unusual-grants/<int:gift_id>")
@require("review")
@recording
def unmark_unusual_grant(gift_id: int):
    body = parse_body(SupportReason)
    ledger.unmark_unusual_grant(get_session(), gift_id, body.reason, g.actor)
    return jsonify({"gift_id": gift_id, "removed": True})
