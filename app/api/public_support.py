"""JSON API for the public-support test (Form 990 Schedule A, Part II): the computation for
a tax year, and the reviewer-recorded facts it uses (donors treated as one, unlimited donor
classes, unusual grants). See docs/public-support.md."""

from __future__ import annotations

from datetime import date

from flask import g, jsonify, request

from app.api.access import MAX_ID, ApiError, parse_body, query_choice, query_date, query_int, require
from app.api.idempotency import recording
from app.api.routes import _created, bp
from app.auth.roles import READ, allowed
from app.db import get_session
from app.extensions import state
from app.ledger import public_support as ledger
from app.ledger.public_support_forecast import (
    YEARS_AHEAD,
    Expected,
    forecast_data,
    support_forecast,
)
from app.ledger.schedule_b import STAFF_COPY_PERMISSION, staff_copy_seen
from app.presenters.public_support import (
    SCHEDULE_B_COPIES,
    public_support_data,
    rules,
    schedule_b_data,
)
from models import Donor
from models.money import MoneyError, parse_amount
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
    # gift_ids=false leaves out the gift id lists (an extension; by default they are listed).
    gift_ids = query_choice("gift_ids", ("true", "false")) != "false"
    return jsonify(public_support_data(get_session(), year, state().reporting_currency,
                                       gift_ids=gift_ids))


@bp.get("/public-support/schedule-b")
@require(READ)
def schedule_b():
    """The Schedule B worksheet: copy=staff (names and addresses; the default, as before) or
    public (without). The staff copy needs the export permission (403 otherwise) and each
    view of it is audited as an export."""
    today = state().today()
    year = query_int("year", today.year - 1, 1900, today.year)
    copy = query_choice("copy", SCHEDULE_B_COPIES) or "staff"
    if copy == "staff" and not allowed(g.actor.role, STAFF_COPY_PERMISSION):
        raise ApiError(403, f"role {g.actor.role!r} may not see the staff copy "
                            f"({STAFF_COPY_PERMISSION}); ask for copy=public")
    session = get_session()
    data = schedule_b_data(session, year, state().reporting_currency, copy)
    if copy == "staff":
        staff_copy_seen(session, g.actor, year, "json", len(data["contributors"]))
    return jsonify(data)


#: The default answer (the staff copy) also needs this: the route-table tests read it.
schedule_b.default_also_requires = STAFF_COPY_PERMISSION


@bp.get("/public-support/forecast")
@require(READ)
def forecast():
    """This year and the next two from recorded and expected money; with proposed_amount
    (and optionally proposed_donor_id, proposed_on), each year also without that gift."""
    st = state()
    today = st.today()
    proposed = None
    amount = request.args.get("proposed_amount")
    if amount is not None:
        try:
            minor = parse_amount(amount, st.reporting_currency)
        except MoneyError as error:
            raise ApiError(422, "invalid input", {"proposed_amount": [str(error)]}) from None
        on = query_date("proposed_on", today)
        if not today <= on <= date(today.year + YEARS_AHEAD, 12, 31):
            raise ApiError(422, "invalid input", {"proposed_on": [
                f"must be from today to the end of {today.year + YEARS_AHEAD}"]})
        donor_id = query_int("proposed_donor_id", None, 1, MAX_ID)
        if donor_id is not None and get_session().get(Donor, donor_id) is None:
            raise ApiError(422, "invalid input", {"proposed_donor_id": ["no such donor"]})
        # A new donor: an id no donor has, so the gift is its own contributor's.
        proposed = Expected(donor_id if donor_id is not None else 0, on, minor, "proposed",
                            None)
    found = support_forecast(get_session(), today, rules(), st.reporting_currency, proposed)
    return jsonify(forecast_data(found, st.reporting_currency))


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
