"""JSON API for campaigns, appeals and funds: create, list with progress, get, close or
reopen (docs/api.md, "Campaigns, appeals and funds"). A gift names them in POST /gifts."""

from __future__ import annotations

from flask import g, jsonify

from app.api.access import parse_body, query_date, require
from app.api.idempotency import recording
from app.api.routes import _created, bp
from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import campaigns
from app.presenters.campaigns import item_public, progress_public
from models.schemas import ActiveSet, AppealCreate, CampaignCreate, FundCreate

_CREATE = {"campaign": (CampaignCreate, campaigns.create_campaign),
           "appeal": (AppealCreate, campaigns.create_appeal),
           "fund": (FundCreate, campaigns.create_fund)}


def _progress_of(kind: str, row_id: int):
    st = state()
    return campaigns.progress(get_session(), kind, st.reporting_currency, ids=[row_id])[0]


def _routes(kind: str) -> None:
    """POST /{kind}s, GET /{kind}s, GET /{kind}s/<id>, PUT /{kind}s/<id>/active."""
    model, create = _CREATE[kind]
    plural = f"{kind}s"

    @require("campaigns.write")
    @recording
    def create_one():
        session = get_session()
        row = create(session, parse_body(model), g.actor, state().reporting_currency)
        return _created(item_public(row, _progress_of(kind, row.id)))

    @require(READ)
    def list_all():
        st = state()
        rows = campaigns.progress(get_session(), kind, st.reporting_currency,
                                  start=query_date("from", None), end=query_date("to", None))
        return jsonify({"items": [progress_public(p) for p in rows]})

    @require(READ)
    def get_one(row_id: int):
        row = campaigns.by_id(get_session(), kind, row_id)
        return jsonify(item_public(row, _progress_of(kind, row_id)))

    @require("campaigns.write")
    @recording
    def set_active(row_id: int):
        data = parse_body(ActiveSet)
        row = campaigns.set_active(get_session(), kind, row_id, data.active, g.actor)
        return jsonify(item_public(row, _progress_of(kind, row_id)))

    bp.add_url_rule(f"/{plural}", f"create_{kind}", create_one, methods=["POST"])
    bp.add_url_rule(f"/{plural}", f"list_{plural}", list_all, methods=["GET"])
    bp.add_url_rule(f"/{plural}/<int:row_id>", f"get_{kind}", get_one, methods=["GET"])
    bp.add_url_rule(f"/{plural}/<int:row_id>/active", f"set_{kind}_active", set_active,
                    methods=["PUT"])


for _kind in campaigns.MODELS:
    _routes(_kind)
