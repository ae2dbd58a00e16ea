"""The staff home page."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger.summary import compliance_summary
from app.web.access import role_required
from models import Gift, OverrideRequest

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.get("/")
@role_required(READ)
def home():
    session = get_session()
    st = state()
    summary = compliance_summary(session, st.today(), st.policy_for(session),
                                 st.reporting_currency)
    held = session.execute(select(func.count()).where(Gift.status == "held")).scalar_one()
    pending_overrides = session.execute(
        select(func.count()).where(OverrideRequest.state == "pending")
    ).scalar_one()
    return render_template("staff/home.html", summary=summary, held=held,
                           pending_overrides=pending_overrides)
