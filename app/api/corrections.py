"""JSON API for corrections of mistaken gifts (docs/api.md, "Corrections"): void a gift
recorded in error, or correct it (void it and record the right one through the one door)."""

from __future__ import annotations

from flask import g, jsonify

from app.api import serialize as out
from app.api.access import parse_body, require
from app.api.idempotency import recording
from app.api.routes import _get, _policy, bp
from app.db import get_session
from app.extensions import state
from app.ledger import corrections
from models import Gift
from models.schemas import GiftCorrectionCreate, GiftVoid


def _answer(done: corrections.Corrected, status: int):
    session = get_session()
    body = {
        "gift": out.gift_public(session.get(Gift, done.gift.id), session),
        "correction": out.correction_public(done.correction),
        "rescreened_gift_ids": [d.gift_id for d in done.rescreened],
    }
    if done.replacement is not None:
        body["replacement"] = out.gift_public(done.replacement.gift, session)
    return jsonify(body), status


@bp.post("/gifts/<int:gift_id>/void")
@require("gifts.correct")
@recording
def void(gift_id: int):
    _get(Gift, gift_id, "gift")
    data = parse_body(GiftVoid)
    return _answer(corrections.void_gift(get_session(), gift_id, data.reason, g.actor,
                                         _policy()), 200)


@bp.post("/gifts/<int:gift_id>/correct")
@require("gifts.correct")
@recording
def correct(gift_id: int):
    _get(Gift, gift_id, "gift")
    data = parse_body(GiftCorrectionCreate)
    return _answer(corrections.correct_gift(get_session(), gift_id, data, g.actor, _policy(),
                                            state().reporting_currency), 201)
