"""The staff home ("what needs me today") and the search box every staff page carries."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger import acknowledgements as ack
from app.ledger import changes, contacts
from app.ledger.search import OrganizationNames, donors_matching, gifts_matching
from app.ledger.summary import compliance_summary
from app.web.access import role_required
from models import Donor, Gift, Organization, OverrideRequest

bp = Blueprint("staff", __name__, url_prefix="/staff")

#: How many of each kind of item the home page and the search page list before "all N".
SHOWN = 5
SEARCH_SHOWN = 25


@dataclass(frozen=True)
class Approvals:
    """What waits for a second person, split by whether the signed-in user may be it."""

    #: (change, description) the user may approve or decline: proposed by someone else.
    changes: list
    #: (override request, gift, donor) the user may approve: requested by someone else.
    overrides: list
    #: How many of each the user proposed themselves (someone else must decide those).
    own_changes: int
    own_overrides: int

    @property
    def for_me(self) -> int:
        return len(self.changes) + len(self.overrides)


def _approvals(session) -> Approvals:
    me = current_user.user_id
    may_review = current_user.can("review")
    # Pending and not yet past its time: an expired change can no longer be approved.
    pending = changes.changes_in_state(session, "pending", policy=state().policy_for(session))
    overrides = session.execute(
        select(OverrideRequest, Gift, Donor)
        .join(Gift, Gift.id == OverrideRequest.gift_id)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(OverrideRequest.state == "pending")
        .order_by(OverrideRequest.requested_at, OverrideRequest.id)
    ).all()
    return Approvals(
        changes=[(c, changes.describe(session, c)) for c in pending
                 if may_review and c.proposed_by_id != me],
        overrides=[row for row in overrides if may_review and row[0].requested_by_id != me],
        own_changes=sum(c.proposed_by_id == me for c in pending),
        own_overrides=sum(r.requested_by_id == me for r, _, _ in overrides),
    )


@bp.get("/")
@role_required(READ)
def home():
    session = get_session()
    st = state()
    summary = compliance_summary(session, st.today(), st.policy_for(session),
                                 st.reporting_currency)
    held = session.execute(select(func.count()).where(Gift.status == "held")).scalar_one()
    # Oldest first: the gifts that have waited longest.
    oldest_held = session.execute(
        select(Gift, Donor).join(Donor, Donor.id == Gift.donor_id).where(Gift.status == "held")
        .order_by(Gift.created_at, Gift.id).limit(SHOWN)
    ).all()
    letters_due = ack.count_pending(session, st.reporting_currency)
    return render_template(
        "staff/home.html", summary=summary, held=held, oldest_held=oldest_held,
        approvals=_approvals(session), letters_due=letters_due,
        letters=ack.pending_acknowledgements(session, st.reporting_currency, limit=SHOWN),
        my_tasks=contacts.tasks_of(session, assignee_id=current_user.user_id, status="open",
                                   limit=SHOWN),
        my_open_tasks=contacts.open_count(session, current_user.user_id),
        today=st.today(),
    )


@bp.get("/search")
@role_required(READ)
def search():
    """Donors by name, e-mail or number; gifts by number or payment id; organisations by name
    or other name. Each kind lists its first matches, with a link to all of them."""
    session = get_session()
    term = request.args.get("q", "").strip()[:200]
    found = {"donors": [], "gifts": [], "organizations": []}
    counts = {"donors": 0, "gifts": 0, "organizations": 0}
    if term:
        donor_match = donors_matching(term, by_id=True)
        counts["donors"] = session.execute(select(func.count()).where(donor_match)).scalar_one()
        found["donors"] = session.execute(
            select(Donor).where(donor_match).order_by(func.lower(Donor.name), Donor.id)
            .limit(SEARCH_SHOWN)).scalars().all()
        gift_match = gifts_matching(term)
        found["gifts"] = session.execute(
            select(Gift, Donor).join(Donor, Donor.id == Gift.donor_id).where(gift_match)
            .order_by(Gift.id).limit(SEARCH_SHOWN)).all()
        counts["gifts"] = len(found["gifts"])
        org_ids = OrganizationNames(session).containing(term)
        counts["organizations"] = len(org_ids)
        found["organizations"] = session.execute(
            select(Organization).where(Organization.id.in_(org_ids))
            .order_by(func.lower(Organization.name), Organization.id).limit(SEARCH_SHOWN)
        ).scalars().all() if org_ids else []
    return render_template("staff/search.html", q=term, found=found, counts=counts,
                           shown=SEARCH_SHOWN)
