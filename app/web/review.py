"""The review queue: held gifts, re-screen flags and overrides awaiting a second reviewer.

Every human decision goes through app.ledger.reviews with a written reason. The
two-person rule is the ledger's: these pages hide the approve button from the
reviewer who asked, and if a request gets through anyway, show the ledger's refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlalchemy import func, select

from app.db import get_session
from app.errors import LedgerBusy, NotAllowed, NotFound, ValidationFailed
from app.extensions import state
from app.ledger import declarations, matches, pledges, reviews
from app.ledger.review_effect import AcceptanceEffect, acceptance_effect
from app.web.access import get_or_404, role_required
from app.web.changes import pending_for_queue
from app.web.decisions import OUTCOME_WORDS, DecisionView, decision_view, user_emails
from app.web.review_forms import (
    PUBLIC_NOTE_HELP,
    DecideForm,
    DeclarationForm,
    MatchAnswerForm,
    OverrideDecisionForm,
    OverrideRequestForm,
)
from models import (
    Decision,
    Donor,
    Gift,
    IllegalTransition,
    OnlineDonation,
    Organization,
    OverrideRequest,
)
from models.schemas import ReviewCreate, field_errors

bp = Blueprint("review", __name__, url_prefix="/staff/review")

REVIEW = "review"
REFUSED = (NotAllowed, NotFound, LedgerBusy, IllegalTransition)


def _latest_decisions(session, gift_ids: list[int]) -> dict[int, Decision]:
    if not gift_ids:
        return {}
    newest = (select(func.max(Decision.id)).where(Decision.gift_id.in_(gift_ids))
              .group_by(Decision.gift_id))
    rows = session.execute(select(Decision).where(Decision.id.in_(newest))).scalars()
    return {d.gift_id: d for d in rows}


@dataclass(frozen=True)
class HeldItem:
    gift: Gift
    donor: Donor
    latest: DecisionView | None
    pending: OverrideRequest | None
    #: The share with and without the gift (a held cash gift), as it stands now.
    effect: AcceptanceEffect | None = None

    @property
    def rescreen(self) -> bool:
        return self.latest is not None and self.latest.decision.kind == "rescreen"

    @property
    def possible_matches(self) -> list[dict]:
        """The records the latest decision says the donor probably is (rule possible_match),
        each to be answered "same person" or "different person"."""
        if self.latest is None:
            return []
        return list(self.latest.decision.figures.get("possible_matches") or [])

    @property
    def more_possible_matches(self) -> int:
        """How many more records the latest decision says the donor probably is, not listed
        (policy [possible_match] max_listed)."""
        if self.latest is None:
            return 0
        return int(self.latest.decision.figures.get("more_possible_matches") or 0)


@dataclass(frozen=True)
class PendingItem:
    request: OverrideRequest
    gift: Gift
    donor: Donor
    requested_by: str
    latest: DecisionView | None


def _queue_items(session) -> tuple[list[HeldItem], list[PendingItem]]:
    held = session.execute(
        select(Gift, Donor).join(Donor, Donor.id == Gift.donor_id).where(Gift.status == "held")
    ).all()
    pending = session.execute(
        select(OverrideRequest, Gift, Donor)
        .join(Gift, Gift.id == OverrideRequest.gift_id)
        .join(Donor, Donor.id == Gift.donor_id)
        .where(OverrideRequest.state == "pending")
        .order_by(OverrideRequest.requested_at, OverrideRequest.id)
    ).all()
    latest = _latest_decisions(session, [gift.id for gift, _ in held]
                               + [gift.id for _, gift, _ in pending])
    emails = user_emails(session, [d.decided_by_id for d in latest.values()]
                         + [d.approved_by_id for d in latest.values()]
                         + [r.requested_by_id for r, _, _ in pending])
    kinds = {gift.id: gift.kind for gift, _ in held} | {gift.id: gift.kind for _, gift, _ in pending}
    views = {gift_id: decision_view(d, kinds[gift_id], emails) for gift_id, d in latest.items()}
    pending_by_gift = {r.gift_id: r for r, _, _ in pending}
    policy = state().policy_for(session)
    held_items = [HeldItem(gift, donor, views.get(gift.id), pending_by_gift.get(gift.id),
                           acceptance_effect(session, gift, policy))
                  for gift, donor in held]
    # Waiting longest first: ordered by the decision that put (or kept) each gift on hold.
    held_items.sort(key=lambda item: (item.latest.decision.id if item.latest else 0, item.gift.id))
    pending_items = [PendingItem(r, gift, donor, emails.get(r.requested_by_id, f"user {r.requested_by_id}"),
                                 views.get(gift.id)) for r, gift, donor in pending]
    return held_items, pending_items


def _render_queue(status: int = 200):
    held, pending = _queue_items(get_session())
    return render_template("review/queue.html", held=held, pending=pending,
                           pending_changes=pending_for_queue(get_session()),
                           overpaid=pledges.overpaid_pledges(get_session()),
                           override_form=OverrideDecisionForm(formdata=None),
                           public_note_help=PUBLIC_NOTE_HELP), status


@bp.get("/")
@role_required(REVIEW)
def queue():
    return _render_queue()


# --- deciding a held gift ------------------------------------------------------------------------

def _public_note(form) -> str | None:
    """The form's public justification, or None when left empty."""
    return (form.public_note.data or "").strip() or None


def _review_input(outcome: str | None, reason: str | None, form) -> ReviewCreate | None:
    try:
        return ReviewCreate.model_validate({"outcome": outcome, "reason": (reason or "").strip()})
    except ValidationError as error:
        for key, messages in field_errors(error).items():
            field = getattr(form, key, None) or form.reason
            field.errors = [*field.errors, *messages]
        return None


@bp.route("/gifts/<int:gift_id>/decide", methods=["GET", "POST"])
@role_required(REVIEW)
def decide(gift_id: int):
    session = get_session()
    gift = get_or_404(Gift, gift_id)
    form = DecideForm()
    if request.method == "GET":
        return _render_decide(gift, form)
    if not form.validate():
        return _render_decide(gift, form, 422)
    data = _review_input(form.outcome.data, form.reason.data, form)
    if data is None:
        return _render_decide(gift, form, 422)
    try:
        result = reviews.decide_held(session, gift_id, data.outcome, data.reason, g.actor,
                                     state().policy_for(session),
                                     public_note=_public_note(form))
    except REFUSED as error:
        flash(f"Not decided: {error}.", "error")
        return _render_decide(session.get(Gift, gift_id), form, 409)
    if isinstance(result, OverrideRequest):
        flash(f"The policy now rejects gift #{gift_id}, so accepting it overrides a reject and "
              "needs a second reviewer's approval. Your request is waiting in the queue; "
              "the gift stays held until another reviewer approves it.", "warning")
    else:
        flash(f"Gift #{gift_id} {OUTCOME_WORDS[result.outcome]}; your reason is in its "
              "decision history.", "success" if result.outcome == "accept" else "info")
    return redirect(url_for("review.queue"))


def _declaration(session, gift_id: int) -> OnlineDonation | None:
    """The donate-form declaration this gift waits on (the first gift held for it, or any
    later held gift of the same donor), while it waits for an answer."""
    gift = session.get(Gift, gift_id)
    return reviews.waiting_for(session, gift) if gift is not None else None


@bp.post("/gifts/<int:gift_id>/declaration")
@role_required(REVIEW)
def answer_declaration(gift_id: int):
    session = get_session()
    gift = get_or_404(Gift, gift_id)
    form = DeclarationForm()
    donation = _declaration(session, gift_id)
    if donation is None:
        flash(f"Gift #{gift_id} has no declaration waiting for an answer.", "error")
        return _render_decide(gift, DecideForm(formdata=None), 409)
    if not form.validate():
        return _render_decide(gift, DecideForm(formdata=None), 422, declaration_form=form)
    reason = form.reason.data.strip()
    st = state()
    waiting = [g.id for g in declarations.held_gifts_waiting(session, donation)] or [gift_id]
    try:
        if form.answer.data == "apply":
            declarations.apply_declaration(
                session, donation.id, g.actor, st.policy_for(session), reason,
                donation.created_at.astimezone(st.timezone).date())
            flash(f"Declaration applied: the role is on the donor's record and their gifts were "
                  f"screened again. {_still_held(waiting)} still yours to decide.", "success")
        else:
            declarations.dismiss_declaration(session, donation.id, g.actor, reason)
            flash(f"Declaration dismissed: the donor's record is unchanged. "
                  f"{_still_held(waiting)} still yours to decide.", "info")
    except REFUSED as error:
        flash(f"Not answered: {error}.", "error")
        return _render_decide(session.get(Gift, gift_id), DecideForm(formdata=None), 409)
    return redirect(url_for("review.decide", gift_id=gift_id))


def _still_held(gift_ids: list[int]) -> str:
    numbers = ", ".join(f"#{n}" for n in gift_ids)
    return f"Gift {numbers} is" if len(gift_ids) == 1 else f"Gifts {numbers} are"


def _render_decide(gift: Gift, form: DecideForm, status: int = 200,
                   declaration_form: DeclarationForm | None = None):
    session = get_session()
    declaration = _declaration(session, gift.id)
    donor = session.get(Donor, gift.donor_id)
    latest = _latest_decisions(session, [gift.id]).get(gift.id)
    pending = session.execute(
        select(OverrideRequest).where(OverrideRequest.gift_id == gift.id,
                                      OverrideRequest.state == "pending")
    ).scalars().first()
    emails = user_emails(session, [latest.decided_by_id if latest else None,
                                   latest.approved_by_id if latest else None,
                                   pending.requested_by_id if pending else None])
    return render_template(
        "review/decide.html", gift=gift, donor=donor, form=form, pending=pending, emails=emails,
        declaration=declaration,
        waiting_gifts=declarations.held_gifts_waiting(session, declaration) if declaration else [],
        declared_lab=session.get(Organization, declaration.declared_lab_id) if declaration else None,
        declaration_form=declaration_form or DeclarationForm(formdata=None),
        latest=decision_view(latest, gift.kind, emails) if latest else None,
        effect=acceptance_effect(session, gift, state().policy_for(session)),
    ), status


# --- possible matches ----------------------------------------------------------------------------

def _answer_match(donor_id: int, answer: str):
    """A reviewer's answer about a possible match, from the review queue: the same person
    (merge, or the roster entry's role onto the donor) or different people (never asked
    again for this pair). The held gift is then decided as any other."""
    session = get_session()
    get_or_404(Donor, donor_id)
    form = MatchAnswerForm()
    if not form.validate():
        flash("Not answered: say why, in 3 to 2000 characters.", "error")
        return _render_queue(422)
    record, record_id = form.record.data, form.record_id.data
    try:
        if answer == "different":
            matches.different(session, donor_id, record, record_id, form.reason.data, g.actor)
            flash(f"Recorded: donor #{donor_id} and {record} #{record_id} are different people; "
                  "this pair will not be flagged again. Their held gifts are still yours to "
                  "decide.", "success")
        else:
            matches.same(session, donor_id, record, record_id, form.reason.data, g.actor,
                         state().policy_for(session))
            flash(f"Recorded: donor #{donor_id} and {record} #{record_id} are the same person.",
                  "success")
    except REFUSED + (ValidationFailed,) as error:
        flash(f"Not answered: {error}.", "error")
        return _render_queue(409)
    return redirect(url_for("review.queue"))


@bp.post("/donors/<int:donor_id>/matches/different")
@role_required(REVIEW)
def match_different(donor_id: int):
    return _answer_match(donor_id, "different")


@bp.post("/donors/<int:donor_id>/matches/same")
@role_required(REVIEW)
def match_same(donor_id: int):
    return _answer_match(donor_id, "same")


# --- overrides -----------------------------------------------------------------------------------

@bp.route("/gifts/<int:gift_id>/override", methods=["GET", "POST"])
@role_required(REVIEW)
def request_override(gift_id: int):
    session = get_session()
    gift = get_or_404(Gift, gift_id)
    form = OverrideRequestForm()
    if request.method == "GET":
        return _render_override(gift, form)
    if not form.validate():
        return _render_override(gift, form, 422)
    data = _review_input("accept", form.reason.data, form)
    if data is None:
        return _render_override(gift, form, 422)
    try:
        reviews.request_override(session, gift_id, data.reason, g.actor,
                                 public_note=_public_note(form))
    except REFUSED as error:
        flash(f"Not requested: {error}.", "error")
        return _render_override(session.get(Gift, gift_id), form, 409)
    flash(f"Override of gift #{gift_id} requested. It is pending second approval: another "
          "reviewer must approve it before the gift is accepted.", "warning")
    return redirect(url_for("gifts.detail", gift_id=gift_id))


def _render_override(gift: Gift, form: OverrideRequestForm, status: int = 200):
    session = get_session()
    latest = _latest_decisions(session, [gift.id]).get(gift.id)
    emails = user_emails(session, [latest.decided_by_id if latest else None])
    return render_template(
        "review/override.html", gift=gift, donor=session.get(Donor, gift.donor_id), form=form,
        latest=decision_view(latest, gift.kind, emails) if latest else None,
    ), status


@bp.post("/overrides/<int:request_id>/approve")
@role_required(REVIEW)
def approve(request_id: int):
    session = get_session()
    override = get_or_404(OverrideRequest, request_id)
    form = OverrideDecisionForm()
    if not form.validate():
        flash("Not approved: " + "; ".join(form.note.errors + form.public_note.errors), "error")
        return _render_queue(422)
    note = (form.note.data or "").strip() or None
    try:
        reviews.approve_override(session, request_id, g.actor, state().policy_for(session),
                                 note=note, public_note=_public_note(form))
    except REFUSED as error:
        flash(f"Not approved: {error}.", "error")
        return _render_queue(409)
    flash(f"Override approved: gift #{override.gift_id} is now accepted.", "success")
    return redirect(url_for("review.queue"))


@bp.post("/overrides/<int:request_id>/decline")
@role_required(REVIEW)
def decline(request_id: int):
    session = get_session()
    override = get_or_404(OverrideRequest, request_id)
    form = OverrideDecisionForm()
    if not form.validate():
        flash("Not declined: " + "; ".join(form.note.errors + form.public_note.errors), "error")
        return _render_queue(422)
    try:
        reviews.decline_override(session, request_id, g.actor, (form.note.data or "").strip())
    except REFUSED as error:
        flash(f"Not declined: {error}.", "error")
        return _render_queue(409)
    gift = session.get(Gift, override.gift_id)
    done = "withdrawn" if override.requested_by_id == g.actor.user_id else "declined"
    flash(f"Override request for gift #{gift.id} {done}; the gift stays {gift.status}.", "info")
    return redirect(url_for("review.queue"))
