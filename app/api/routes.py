"""JSON API routes. Each declares its permission with @require; the ledger does the work."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify
from sqlalchemy import select

from app.api import serialize as out
from app.api.access import (
    MAX_ID,
    ApiError,
    optional_note,
    parse_body,
    query_choice,
    query_date,
    query_int,
    query_text,
    require,
)
from app.api.idempotency import recording
from app.api.openapi import openapi_document
from app.auth.roles import READ, allowed
from app.db import get_session
from app.errors import NotFound
from app.extensions import audit_keys, state
from app.ledger import disclosure, parties, pledges, reviews, series, titles
from app.ledger.gifts import prepare_gift, record_gift, refund_gift
from app.ledger.merge import merge_donors
from app.ledger.search import donors_matching
from app.ledger.summary import compliance_summary
from app.ledger.verification import verify_audit
from app.presenters.compliance import series_public, summary_public
from models import (
    Donor,
    DonorMerge,
    Gift,
    GiftDesignation,
    InKindArrangement,
    Organization,
    OverrideRequest,
    Pledge,
)
from models.gifts import GIFT_STATUSES
from models.money import MoneyError, parse_amount
from models.schemas import (
    AffiliationCreate,
    DonorCreate,
    DonorCreateConfirmed,
    GiftCreate,
    InKindCreate,
    MergeCreate,
    OrganizationCreate,
    PledgeCancel,
    PledgeCreate,
    PledgeSchedule,
    RefundCreate,
    ReviewCreate,
    TitleReview,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


# --- errors -----------------------------------------------------------------------------
# The ledger's refusals get their answers from app.http_errors (registered on the app, for
# the pages too); the API's own input errors carry theirs.

@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    return jsonify(error.body()), error.status, error.headers


def _get(model, ident: int, what: str):
    obj = get_session().get(model, ident)
    if obj is None:
        raise NotFound(what, ident)
    return obj


def _policy():
    return state().policy_for(get_session())


def _created(body: dict):
    return jsonify(body), 201


# --- reference ----------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


# --- organisations and donors ---------------------------------------------------------------

@bp.post("/organizations")
@require("organizations.write")
@recording
def create_organization():
    data = parse_body(OrganizationCreate)
    org = parties.create_organization(get_session(), data, g.actor)
    return _created(out.organization_public(org))


@bp.get("/organizations")
@require(READ)
def list_organizations():
    session = get_session()
    query = select(Organization).order_by(Organization.name)
    if query_choice("covered_lab", ("true", "false", "1", "0")) in ("true", "1"):
        query = query.where(Organization.covered_lab.is_(True))
    return jsonify({"items": [out.organization_public(o) for o in session.execute(query).scalars()]})


@bp.get("/organizations/<int:org_id>")
@require(READ)
def get_organization(org_id: int):
    return jsonify(out.organization_public(_get(Organization, org_id, "organization")))


@bp.post("/donors")
@require("donors.write")
@recording
def create_donor():
    body = parse_body(DonorCreateConfirmed)
    if body.different_person_from is not None and not allowed(g.api_user.role, "review"):
        raise ApiError(403, "only a reviewer or an admin may confirm a different person "
                            "(different_person_from)")
    data = DonorCreate.model_validate(body.model_dump(exclude={"different_person_from",
                                                               "reason"}))
    donor = parties.create_donor(get_session(), data, g.actor,
                                 different_person_from=body.different_person_from,
                                 reason=body.reason)
    return _created(out.donor_public(donor, get_session()))


@bp.get("/donors")
@require(READ)
def list_donors():
    session = get_session()
    limit = query_int("limit", 50, 1, 500)
    after = query_int("after_id", 0, 0, MAX_ID)
    query = select(Donor).where(Donor.id > after).order_by(Donor.id).limit(limit)
    term = query_text("q")
    if term:
        query = query.where(donors_matching(term))
    donors = session.execute(query).scalars().all()
    merged = dict(session.execute(
        select(DonorMerge.duplicate_id, DonorMerge.survivor_id)
        .where(DonorMerge.duplicate_id.in_([d.id for d in donors]))
    ).all()) if donors else {}
    return jsonify({"items": [{**out.donor_public(d), "merged_into_id": merged.get(d.id)}
                              for d in donors],
                    "next_after_id": donors[-1].id if len(donors) == limit else None})


@bp.get("/donors/<int:donor_id>")
@require(READ)
def get_donor(donor_id: int):
    return jsonify(out.donor_public(_get(Donor, donor_id, "donor"), get_session()))


@bp.post("/donors/<int:donor_id>/merge")
@require("review")
@recording
def merge_donor(donor_id: int):
    data = parse_body(MergeCreate)
    session = get_session()
    result = merge_donors(session, donor_id, data.duplicate_id, g.actor, _policy())
    return jsonify({
        "survivor": out.donor_public(_get(Donor, donor_id, "donor"), session),
        "duplicate_id": result.duplicate_id,
        "moved": result.moved,
        "combined_attribution_gift_ids": result.combined_attribution_gift_ids,
        "rescreened_gift_ids": result.rescreened_gift_ids,
    })


@bp.post("/donors/<int:donor_id>/affiliations")
@require("affiliations.write")
@recording
def add_affiliation(donor_id: int):
    _get(Donor, donor_id, "donor")
    data = parse_body(AffiliationCreate)
    aff, rescreened = parties.add_affiliation(get_session(), donor_id, data, g.actor,
                                              _policy())
    return _created({**out.affiliation_public(aff),
                     "rescreened_gift_ids": [d.gift_id for d in rescreened]})


# PUT /affiliations/<id>, PATCH /organizations/<id>, DELETE /affiliations/<id> and the
# pending changes: app/api/change_routes.py (the two-person rule for weakening changes).


@bp.post("/affiliations/<int:affiliation_id>/title-review")
@require("review")
@recording
def review_affiliation_title(affiliation_id: int):
    data = parse_body(TitleReview)
    aff, rescreened = titles.review_title(get_session(), affiliation_id, data.senior,
                                          data.reason, g.actor, _policy())
    return jsonify({**out.affiliation_public(aff),
                    "rescreened_gift_ids": [d.gift_id for d in rescreened]})


# --- gifts ------------------------------------------------------------------------------------

def _record(dry_run: bool):
    prepared = None if dry_run else g.pop("prepared_gift", None)
    data = prepared.data if prepared is not None else parse_body(GiftCreate)
    st = state()
    # With the facts prepared before the lock, the policy read with them is used, or read
    # again under the lock if anything but gifts was audited since (gifts.PreparedGift).
    policy = prepared.policy if prepared is not None else _policy()
    recorded = record_gift(get_session(), data, g.actor, policy, st.reporting_currency,
                           dry_run=dry_run, max_gift_minor=st.max_gift_minor,
                           prepared=prepared, open_only=True)
    return recorded


def _prepare_gift():
    """Before the ledger lock: parse the body and read the gift's facts about people
    (gifts.prepare_gift); record_gift checks under the lock that they still hold."""
    data = parse_body(GiftCreate)
    st = state()
    g.prepared_gift = prepare_gift(get_session(), data, g.actor, st.reporting_currency,
                                   st.policies.current, max_gift_minor=st.max_gift_minor,
                                   policy_at=st.policies.at, open_only=True)


@bp.post("/gifts")
@require("gifts.write")
@recording(prepare=_prepare_gift)
def create_gift():
    recorded = _record(dry_run=False)
    return _created(out.new_gift_public(recorded))


@bp.post("/gifts/preview")
@require("gifts.write")
def preview_gift():
    """The decision a gift would get now, without recording anything."""
    recorded = _record(dry_run=True)
    decision = recorded.decision
    return jsonify({
        "status": {"accept": "accepted", "hold": "held", "reject": "rejected"}[decision.outcome],
        "decision": {
            "outcome": decision.outcome,
            "policy_version": decision.policy_version,
            "reasons": decision.reasons,
            "figures": out.figures_public(decision.figures),
        },
    })


@bp.get("/gifts")
@require(READ)
def list_gifts():
    session = get_session()
    limit = query_int("limit", 50, 1, 500)
    after = query_int("after_id", 0, 0, MAX_ID)
    query = select(Gift).where(Gift.id > after).order_by(Gift.id).limit(limit)
    status = query_choice("status", GIFT_STATUSES)
    if status:
        query = query.where(Gift.status == status)
    donor_id = query_int("donor_id", None, 0, MAX_ID)
    if donor_id is not None:
        query = query.where(Gift.donor_id == donor_id)
    designated = {kind: query_int(f"{kind}_id", None, 0, MAX_ID)
                  for kind in ("campaign", "appeal", "fund")}
    if any(v is not None for v in designated.values()):
        query = query.join(GiftDesignation, GiftDesignation.gift_id == Gift.id)
        for kind, value in designated.items():
            if value is not None:
                query = query.where(getattr(GiftDesignation, f"{kind}_id") == value)
    gifts = session.execute(query).scalars().all()
    return jsonify({
        "items": out.gifts_public(gifts, session),
        "next_after_id": gifts[-1].id if len(gifts) == limit else None,
    })


@bp.get("/gifts/<int:gift_id>")
@require(READ)
def get_gift(gift_id: int):
    return jsonify(out.gift_public(_get(Gift, gift_id, "gift"), get_session()))


@bp.post("/gifts/<int:gift_id>/refund")
@require("refunds")
@recording
def refund(gift_id: int):
    gift = _get(Gift, gift_id, "gift")
    data = parse_body(RefundCreate)
    amount_minor = None
    if data.amount is not None:
        try:
            amount_minor = parse_amount(data.amount, gift.currency)
        except MoneyError as error:
            raise ApiError(422, "invalid input", {"amount": [str(error)]}) from None
    session = get_session()
    record = refund_gift(session, gift_id, g.actor, amount_minor=amount_minor,
                         refunded_on=data.refunded_on or state().today(), reason=data.reason)
    # Read inside the request's transaction (@recording), before its commit.
    gift = session.get(Gift, gift_id)
    return _created({**out.refund_public(record, gift), "gift": out.gift_public(gift, session)})


@bp.post("/gifts/<int:gift_id>/review")
@require("review")
@recording
def review_gift(gift_id: int):
    _get(Gift, gift_id, "gift")
    data = parse_body(ReviewCreate)
    result = reviews.decide_held(get_session(), gift_id, data.outcome, data.reason, g.actor,
                                 _policy(), public_note=data.public_note)
    if isinstance(result, OverrideRequest):
        return jsonify({"override_request": out.override_public(result),
                        "message": "The policy rejects this gift; accepting it needs a "
                                   "second reviewer's approval."}), 202
    return _created(out.decision_public(result))


@bp.post("/gifts/<int:gift_id>/override")
@require("review")
@recording
def request_override(gift_id: int):
    _get(Gift, gift_id, "gift")
    data = parse_body(ReviewCreate)
    if data.outcome != "accept":
        raise ApiError(422, "invalid input", {"outcome": ["an override accepts a gift"]})
    request_ = reviews.request_override(get_session(), gift_id, data.reason, g.actor,
                                        public_note=data.public_note)
    return _created(out.override_public(request_))


@bp.post("/overrides/<int:request_id>/approve")
@require("review")
@recording
def approve_override(request_id: int):
    _get(OverrideRequest, request_id, "override request")
    public_note = (optional_note("public_note") or "").strip() or None
    if public_note is not None and not 3 <= len(public_note) <= 2000:
        # Published word for word: refused, never cut mid-sentence.
        raise ApiError(422, "invalid input",
                       {"public_note": ["must be 3 to 2000 characters after trimming"]})
    decision = reviews.approve_override(get_session(), request_id, g.actor, _policy(),
                                        note=optional_note(), public_note=public_note)
    return _created(out.decision_public(decision))


@bp.post("/overrides/<int:request_id>/decline")
@require("review")
@recording
def decline_override(request_id: int):
    _get(OverrideRequest, request_id, "override request")
    note = optional_note() or ""
    result = reviews.decline_override(get_session(), request_id, g.actor, note[:2000])
    return jsonify(out.override_public(result))


# --- pledges and in-kind ------------------------------------------------------------------

def _pledge_body(session, pledge: Pledge) -> dict:
    return out.pledge_public(pledge, pledges.pledge_schedule(session, pledge, state().today()),
                             pledges.paid_minor(session, pledge.id))


@bp.post("/pledges")
@require("pledges.write")
@recording
def create_pledge():
    data = parse_body(PledgeCreate)
    session = get_session()
    return _created(_pledge_body(session, pledges.create_pledge(session, data, g.actor)))


@bp.get("/pledges/<int:pledge_id>")
@require(READ)
def get_pledge(pledge_id: int):
    return jsonify(_pledge_body(get_session(), _get(Pledge, pledge_id, "pledge")))


@bp.post("/pledges/<int:pledge_id>/cancel")
@require("pledges.write")
@recording
def cancel_pledge(pledge_id: int):
    data = parse_body(PledgeCancel)
    session = get_session()
    return jsonify(_pledge_body(session, pledges.cancel_pledge(session, pledge_id, data, g.actor)))


@bp.put("/pledges/<int:pledge_id>/schedule")
@require("pledges.write")
@recording
def reschedule_pledge(pledge_id: int):
    data = parse_body(PledgeSchedule)
    session = get_session()
    return jsonify(_pledge_body(session,
                                pledges.reschedule_pledge(session, pledge_id, data, g.actor)))


@bp.post("/in-kind")
@require("in_kind.write")
@recording
def create_in_kind():
    data = parse_body(InKindCreate)
    item = parties.create_in_kind(get_session(), data, g.actor)
    return _created(out.in_kind_public(item))


@bp.get("/in-kind")
@require(READ)
def list_in_kind():
    items = get_session().execute(
        select(InKindArrangement).order_by(InKindArrangement.start_date, InKindArrangement.id)
    ).scalars()
    return jsonify({"items": [out.in_kind_public(i) for i in items]})


@bp.get("/in-kind/<int:item_id>")
@require(READ)
def get_in_kind(item_id: int):
    return jsonify(out.in_kind_public(_get(InKindArrangement, item_id, "in-kind arrangement")))


# --- compliance -----------------------------------------------------------------------------

@bp.get("/compliance/summary")
@require(READ)
def summary():
    st = state()
    as_of = query_date("as_of", st.today())
    result = compliance_summary(get_session(), as_of, _policy(),
                                st.reporting_currency)
    return jsonify(summary_public(result))


@bp.get("/compliance/series")
@require(READ)
def compliance_series():
    """The share day by day with its breach periods, and the funding mix by month."""
    st = state()
    session = get_session()
    try:
        start, end = series.series_range(query_date("from", None), query_date("to", None),
                                         st.today())
    except series.RangeError as error:
        raise ApiError(422, "invalid input", error.errors) from None
    policy = _policy()
    return jsonify(series_public(series.share_series(session, start, end, policy),
                                 series.funding_mix(session, start, end),
                                 st.reporting_currency, policy.version))


@bp.get("/disclosures/conflicts")
@require(READ)
def conflict_disclosure():
    """The conflict-of-interest disclosure for ?from=YYYY-MM-DD&to=YYYY-MM-DD, from the ledger now."""
    errors: dict[str, list[str]] = {}
    period = {}
    for name in ("from", "to"):
        try:
            period[name] = query_date(name, None)
        except ApiError as error:
            errors.update(error.errors or {})
            continue
        if period[name] is None:
            errors[name] = ["required: a date in the form YYYY-MM-DD"]
    if not errors:
        try:
            disclosure.check_period(period["from"], period["to"])
        except disclosure.PeriodError as error:
            errors["to"] = [str(error)]
    if errors:
        raise ApiError(422, "invalid input", errors)
    st = state()
    result = disclosure.conflict_disclosure(get_session(), period["from"], period["to"], _policy(),
                                            st.reporting_currency, current_app.config["ORG_NAME"])
    return jsonify(disclosure.disclosure_content(result))


@bp.get("/audit/verify")
@require(READ)
def audit_verify():
    # The chain, every signed checkpoint and every published disclosure (docs/api.md).
    return jsonify(verify_audit(get_session(), audit_keys()).public())
