"""Changes that weaken enforcement, waiting for a second person: their list, each one's page
(a proposed policy version's with its replay of the last 365 days), approve and decline.

The two-person rule is the ledger's (app.ledger.changes, app.ledger.approvers): these pages
hide the approve button from the proposer and show the ledger's refusal if one gets through.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from app.auth.roles import READ
from app.db import get_session
from app.errors import LedgerBusy, NotAllowed, NotFound
from app.extensions import state
from app.ledger import changes
from app.presenters.changes import replay_public
from app.web.access import get_or_404, role_required
from app.web.decisions import user_emails
from models import PendingChange

bp = Blueprint("changes", __name__, url_prefix="/staff/changes")

REFUSED = (NotAllowed, NotFound, LedgerBusy)


class ChangeDecisionForm(FlaskForm):
    note = TextAreaField("Note (optional, internal)", validators=[Optional(), Length(max=2000)])


def pending_message(change: PendingChange) -> str:
    """The flash after an edit whose weakening part now waits."""
    return (f"Change #{change.id} waits for a second person: {'; '.join(change.weakens)}. "
            "Nothing of that part applies until a reviewer or admin who did not propose it "
            "approves it in the review queue.")


def rescreen_message(count: int) -> str:
    """The flash after an edit that re-screened past gifts (affiliations, relationships)."""
    if count == 0:
        return "No past gifts needed re-screening."
    gifts = "gift was" if count == 1 else "gifts were"
    return (f"{count} past {gifts} re-screened and put on hold for a reviewer "
            "(see the review queue).")


def pending_for_queue(session) -> list[tuple[PendingChange, str, str]]:
    """(change, description, proposer's e-mail) for every pending change, oldest first."""
    waiting = changes.changes_in_state(session, "pending", policy=state().policy_for(session))
    emails = user_emails(session, [c.proposed_by_id for c in waiting])
    return [(c, changes.describe(session, c), emails.get(c.proposed_by_id, f"user {c.proposed_by_id}"))
            for c in waiting]


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    policy = state().policy_for(session)
    every = changes.changes_in_state(session, policy=policy)
    emails = user_emails(session, [c.proposed_by_id for c in every]
                         + [c.decided_by_id for c in every])
    return render_template("changes/index.html", items=[
        (c, changes.describe(session, c), changes.status_of(c, policy))
        for c in reversed(every)], emails=emails)


def _render(change: PendingChange, status: int = 200, form: ChangeDecisionForm | None = None):
    session = get_session()
    st = state()
    replay = None
    policy = st.policy_for(session)
    change_status = changes.status_of(change, policy)
    if change.kind == "policy_version" and change_status == "pending":
        result = changes.policy_replay(session, change, policy, st.today())
        replay = replay_public(result, st.reporting_currency)
    emails = user_emails(session, [change.proposed_by_id, change.decided_by_id])
    return render_template(
        "changes/detail.html", change=change, description=changes.describe(session, change),
        status=change_status, expires_at=changes.expires_at(change, policy),
        replay=replay, emails=emails, form=form or ChangeDecisionForm(formdata=None),
        document=(changes.proposed_document_text(change)
                  if change.kind == "policy_version" else None),
    ), status


@bp.get("/<int:change_id>")
@role_required(READ)
def detail(change_id: int):
    return _render(get_or_404(PendingChange, change_id))


@bp.post("/<int:change_id>/approve")
@role_required("review")
def approve(change_id: int):
    session = get_session()
    change = get_or_404(PendingChange, change_id)
    form = ChangeDecisionForm()
    if not form.validate_on_submit():
        return _render(change, 422, form)
    st = state()
    try:
        decided = changes.approve_change(session, change_id, g.actor, st.policies, st.today(),
                                         note=(form.note.data or "").strip() or None)
    except REFUSED as error:
        flash(f"Not approved: {error}.", "error")
        return _render(session.get(PendingChange, change_id), 409, form)
    held = len(decided.rescreened)
    flash(f"Change #{change_id} approved and applied."
          + (f" {held} past gift(s) were re-screened and put on hold for a reviewer." if held
             else ""), "success")
    return redirect(url_for("changes.detail", change_id=change_id), 303)


@bp.post("/<int:change_id>/decline")
@role_required("changes.decline")
def decline(change_id: int):
    session = get_session()
    change = get_or_404(PendingChange, change_id)
    form = ChangeDecisionForm()
    if not form.validate_on_submit():
        return _render(change, 422, form)
    try:
        changes.decline_change(session, change_id, g.actor, state().policy_for(session),
                               note=(form.note.data or "").strip() or None)
    except REFUSED as error:
        flash(f"Not declined: {error}.", "error")
        return _render(session.get(PendingChange, change_id), 409, form)
    flash(f"Change #{change_id} declined: nothing of it applies.", "info")
    return redirect(url_for("changes.detail", change_id=change_id), 303)
