"""Human decisions on gifts: deciding held gifts, and two-person overrides of rejects."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlmodel import Session

from app.db.locking import ledger_write, once_committed
from app.errors import NotAllowed, NotFound
from app.ledger import audit, funding, pledges
from app.ledger.approvers import check_may_approve
from app.ledger.audit import Actor
from app.ledger.gifts import add_decision, apply_outcome, screen_gift, stored_shares
from app.ledger.signals import gift_rejected_by_review
from models import Attribution, Decision, Gift, OnlineDonation, OverrideRequest, transition, utcnow
from policies import Policy


def _gift(session: Session, gift_id: int) -> Gift:
    gift = session.get(Gift, gift_id)
    if gift is None:
        raise NotFound("gift", gift_id)
    return gift


def waiting_for(session: Session, gift: Gift) -> OnlineDonation | None:
    """The declaration, waiting for a reviewer's answer, that this gift waits on: the one it
    was held for (declaration_gift_id), else one of its giver's (the donor, or the person a
    donor-advised fund's gift is attributed to). Every later monthly payment of a donation
    whose declaration waits is held by the same rule, so each of those gifts' pages offers
    the one answer, and the answer counts for all of them."""
    own = session.execute(
        select(OnlineDonation).where(OnlineDonation.declaration_gift_id == gift.id,
                                     OnlineDonation.declaration_state == "to_review")
    ).scalars().first()
    if own is not None:
        return own
    attributed = select(Attribution.donor_id).where(Attribution.gift_id == gift.id)
    return session.execute(
        select(OnlineDonation).where(
            OnlineDonation.declaration_state == "to_review",
            or_(OnlineDonation.donor_id == gift.donor_id,
                OnlineDonation.donor_id.in_(attributed)),
        ).order_by(OnlineDonation.id).limit(1)
    ).scalars().first()


def _refuse_while_declaration_waits(session: Session, gift: Gift) -> None:
    """A donate-form declaration of this donor that differs from the record and waits for a
    reviewer's answer: accepting now would judge the gift on the record alone (screen_gift
    reads what is on file), so the declared role would count for nothing. Answer it first
    (apply: the role goes on the record and the gift is re-screened with it; dismiss)."""
    waiting = waiting_for(session, gift)
    if waiting is not None:
        raise NotAllowed(
            f"the donor's declaration on online donation {waiting.id} (gift "
            f"{waiting.declaration_gift_id}) differs from the record and is not answered yet: "
            "apply or dismiss it before accepting this gift")


def decide_held(session: Session, gift_id: int, outcome: str, reason: str, actor: Actor,
                policy: Policy, public_note: str | None = None) -> Decision | OverrideRequest:
    """A reviewer decides a held gift.

    The gift is screened again with today's facts first. If the policy would now
    reject it, accepting it is an override of a reject and needs a second reviewer:
    the result is a pending OverrideRequest and the gift stays held.

    `reason` is internal; `public_note` is the justification the disclosure publishes if
    this accepts an exception to a public promise (None: "no public justification given").
    """
    with ledger_write(session):
        gift = _gift(session, gift_id)
        if gift.status != "held":
            raise NotAllowed(f"gift {gift_id} is {gift.status}, not held")
        if outcome == "accept":
            _refuse_while_declaration_waits(session, gift)
        evaluation = screen_gift(session, gift, stored_shares(session, gift.id), policy)
        if outcome == "accept" and evaluation.outcome == "reject":
            request = _open_request(session, gift, reason, actor, public_note)
            return request
        decision = add_decision(session, gift, outcome, evaluation, kind="review", actor=actor,
                                note=reason, public_note=public_note)
        apply_outcome(session, gift, outcome)
        audit.append(session, actor, "gift.reviewed", "gift", gift.id, {
            "outcome": outcome, "reason": reason, "public_note": public_note,
            "decision_id": decision.id, "policy_outcome": evaluation.outcome,
        }, sealed=[gift, decision])
        pledges.track_payments(session, gift.pledge_id, actor)
        if outcome == "reject":
            _close_pending_requests(session, gift, decision, actor)
    if outcome == "reject":
        # Once committed (an API request commits its writes together, at its end), a
        # processor that holds the money (Stripe) may return it.
        once_committed(session, lambda: gift_rejected_by_review.send(
            session, gift_id=gift_id, actor=actor))
    return decision


def _close_pending_requests(session: Session, gift: Gift, decision: Decision,
                            actor: Actor) -> None:
    """A reviewer's reject ends any override still waiting for the gift: a second reviewer
    approving it later would accept a gift a reviewer has just rejected, on a request made
    before that reject. The requester may ask again, and the two-person rule starts over."""
    pending = session.execute(
        select(OverrideRequest).where(
            OverrideRequest.gift_id == gift.id, OverrideRequest.state == "pending"
        )
    ).scalars().all()
    for request in pending:
        request.state = "declined"
        # The table keeps the decider apart from the requester (the two-person rule); when the
        # requester rejects the gift themself, the audit entry below names them.
        request.decided_by_id = (actor.user_id if actor.user_id != request.requested_by_id
                                 else None)
        request.decided_at = utcnow()
        audit.append(session, actor, "override.closed", "gift", gift.id, {
            "override_request_id": request.id, "requested_by_id": request.requested_by_id,
            "why": f"gift rejected by review decision {decision.id}",
            "decision_id": decision.id,
        }, sealed=[request])


def _open_request(session: Session, gift: Gift, reason: str, actor: Actor,
                  public_note: str | None = None) -> OverrideRequest:
    pending = session.execute(
        select(OverrideRequest).where(
            OverrideRequest.gift_id == gift.id, OverrideRequest.state == "pending"
        )
    ).scalar_one_or_none()
    if pending is not None:
        raise NotAllowed(f"an override of gift {gift.id} is already waiting for approval")
    if actor.user_id is None:
        raise NotAllowed("an override must be requested by a named user")
    request = OverrideRequest(gift_id=gift.id, outcome="accept", reason=reason,
                              public_note=public_note, requested_by_id=actor.user_id)
    session.add(request)
    session.flush()
    # The gift too: screening it again for the request has set its lab part afresh.
    audit.append(session, actor, "override.requested", "gift", gift.id, {
        "override_request_id": request.id, "reason": reason, "public_note": public_note,
    }, sealed=[request, gift])
    return request


def request_override(session: Session, gift_id: int, reason: str, actor: Actor,
                     public_note: str | None = None) -> OverrideRequest:
    """Ask to accept a rejected gift. Nothing changes until a second reviewer approves.
    `public_note`: the justification the disclosure may publish (see decide_held)."""
    with ledger_write(session):
        gift = _gift(session, gift_id)
        if gift.status not in ("rejected", "held"):
            raise NotAllowed(f"gift {gift_id} is {gift.status}; only a rejected or held gift "
                             "can be overridden")
        request = _open_request(session, gift, reason, actor, public_note)
    return request


def approve_override(session: Session, request_id: int, actor: Actor, policy: Policy,
                     note: str | None = None, public_note: str | None = None) -> Decision:
    """A second reviewer approves. The approver's public_note, if given, replaces the
    requester's: the approver is the last to read what will be published."""
    with ledger_write(session):
        request = session.get(OverrideRequest, request_id)
        if request is None:
            raise NotFound("override request", request_id)
        if request.state != "pending":
            raise NotAllowed(f"override request {request_id} is already {request.state}")
        if actor.user_id is None or actor.user_id == request.requested_by_id:
            raise NotAllowed("an override needs the approval of a second reviewer")
        check_may_approve(session, actor.user_id, request.requested_by_id, policy,
                          what="an override")
        gift = _gift(session, request.gift_id)
        if gift.status not in ("rejected", "held"):
            raise NotAllowed(f"gift {gift.id} is {gift.status}; nothing to override")
        if request.outcome == "accept":
            _refuse_while_declaration_waits(session, gift)
        evaluation = screen_gift(session, gift, stored_shares(session, gift.id), policy)
        decision = add_decision(
            session, gift, request.outcome, evaluation, kind="override",
            actor=Actor(label=actor.label, user_id=request.requested_by_id),
            note=request.reason + (f"\nApproval note: {note}" if note else ""),
            approved_by_id=actor.user_id, public_note=public_note or request.public_note,
        )
        request.state = "approved"
        request.decided_by_id = actor.user_id
        request.decided_at = utcnow()
        apply_outcome(session, gift, request.outcome)
        audit.append(session, actor, "override.approved", "gift", gift.id, {
            "override_request_id": request.id, "decision_id": decision.id,
            "requested_by_id": request.requested_by_id, "policy_outcome": evaluation.outcome,
            "public_note": decision.public_note,
        }, sealed=[gift, decision, request])
        pledges.track_payments(session, gift.pledge_id, actor)
    return decision


def decline_override(session: Session, request_id: int, actor: Actor, note: str) -> OverrideRequest:
    """A second reviewer declines a pending request, or its requester withdraws it."""
    with ledger_write(session):
        request = session.get(OverrideRequest, request_id)
        if request is None:
            raise NotFound("override request", request_id)
        if request.state != "pending":
            raise NotAllowed(f"override request {request_id} is already {request.state}")
        withdrawn = actor.user_id is not None and actor.user_id == request.requested_by_id
        request.state = "declined"
        # The table keeps the decider apart from the requester (the two-person rule): a
        # withdrawal has no second person, so no decider; the audit entry names who withdrew.
        request.decided_by_id = None if withdrawn else actor.user_id
        request.decided_at = utcnow()
        audit.append(session, actor, "override.declined", "gift", request.gift_id, {
            "override_request_id": request.id, "note": note,
            "withdrawn_by_requester": withdrawn,
        }, sealed=[request])
    return request


def hold_for_rescreen(session: Session, gift: Gift, policy: Policy, actor: Actor,
                      why: str) -> Decision:
    """Pull a gift back for review after its facts changed (caller holds the lock)."""
    if gift.counts_as_funding:
        funding.remove_from_funding(session, gift)
    evaluation = screen_gift(session, gift, stored_shares(session, gift.id), policy)
    if gift.status != "held":
        transition(gift, "held")
    decision = add_decision(session, gift, "hold", evaluation, kind="rescreen", actor=actor,
                            note=why)
    audit.append(session, actor, "gift.rescreened", "gift", gift.id, {
        "decision_id": decision.id, "why": why, "policy_outcome": evaluation.outcome,
    }, sealed=[gift, decision])
    pledges.track_payments(session, gift.pledge_id, actor)
    return decision
