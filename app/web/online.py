"""Staff view of online giving: what needs a person, and money still to be returned."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from sqlalchemy import func, or_, select

from app.auth.roles import READ
from app.db import get_session
from app.extensions import state
from app.ledger.refund_reversals import reversal_of, reverse_refund
from app.payments.events import REFUND_FAILED_LATER
from app.payments.gateway import gateway
from app.payments.recording import return_money
from app.web.access import get_or_404, role_required
from models import (
    AuditEntry,
    DeferredRefund,
    Donor,
    Gift,
    OnlineDonation,
    Refund,
    StripeDispute,
    StripeUnmatchedEvent,
)

bp = Blueprint("online", __name__, url_prefix="/staff/online")

RECENT = 50


def unmatched_events(session) -> tuple[list[StripeUnmatchedEvent], int]:
    """Recent events that matched no donation although their metadata looks like a donation
    form's (another installation on the Stripe account, a donation lost in a restore), and
    how many others matched none (payments not started on the donate page)."""
    claimed = or_(StripeUnmatchedEvent.claimed_install.is_not(None),
                  StripeUnmatchedEvent.claimed_donation.is_not(None))
    listed = session.execute(
        select(StripeUnmatchedEvent).where(claimed)
        .order_by(StripeUnmatchedEvent.created_at.desc()).limit(RECENT)
    ).scalars().all()
    others = session.execute(
        select(func.count()).select_from(StripeUnmatchedEvent).where(~claimed)
    ).scalar_one()
    return list(listed), others


def money_to_return(session) -> list[Gift]:
    """Rejected gifts paid through Stripe whose money has not all gone back."""
    return list(session.execute(
        select(Gift).where(Gift.status == "rejected", Gift.stripe_payment_intent_id.is_not(None),
                           Gift.refunded_minor < Gift.amount_minor).order_by(Gift.id)
    ).scalars())


@bp.get("/")
@role_required(READ)
def index():
    session = get_session()
    attention = session.execute(
        select(OnlineDonation).where(OnlineDonation.attention.is_not(None))
        .order_by(OnlineDonation.updated_at.desc())
    ).scalars().all()
    disputes = session.execute(
        select(StripeDispute).where(StripeDispute.closed_at.is_(None)).order_by(StripeDispute.id)
    ).scalars().all()
    waiting = session.execute(
        select(DeferredRefund).where(DeferredRefund.state == "waiting").order_by(DeferredRefund.id)
    ).scalars().all()
    # Refunds recorded in the ledger that Stripe later reported as failed: the money came
    # back and the refund is reversed from that day (docs/stripe.md). Entries written before
    # reversals existed name no reversal: the ledger still counts those refunds.
    failed_refunds = session.execute(
        select(AuditEntry).where(AuditEntry.action == REFUND_FAILED_LATER)
        .order_by(AuditEntry.id.desc())
    ).scalars().all()
    refund_ids = [e.data.get("refund_id") for e in failed_refunds if e.data.get("refund_id")]
    reversals = {r.reverses_refund_id: r for r in session.execute(
        select(Refund).where(Refund.reverses_refund_id.in_(refund_ids))).scalars()
    } if refund_ids else {}
    failed_gifts = {gift.id: gift for gift in session.execute(
        select(Gift).where(Gift.id.in_({e.entity_id for e in failed_refunds}))).scalars()
    } if failed_refunds else {}
    unmatched, unmatched_others = unmatched_events(session)
    recent = session.execute(
        select(OnlineDonation).order_by(OnlineDonation.id.desc()).limit(RECENT)
    ).scalars().all()
    donor_ids = {d.donor_id for d in (*attention, *recent) if d.donor_id is not None}
    donors = {donor.id: donor for donor in session.execute(
        select(Donor).where(Donor.id.in_(donor_ids))).scalars()} if donor_ids else {}
    return render_template("online/index.html", attention=attention, disputes=disputes,
                           waiting=waiting, failed_refunds=failed_refunds, reversals=reversals,
                           failed_gifts=failed_gifts, recent=recent,
                           unmatched=unmatched, unmatched_others=unmatched_others,
                           to_return=money_to_return(session), donors=donors,
                           configured=gateway() is not None)


@bp.post("/failed-refunds/<int:entry_id>/reverse")
@role_required("refunds")
def reverse_failed_refund(entry_id: int):
    """Reverse a refund flagged as failed before the ledger had reversals, dated the failure
    day the flag recorded (once: a second click finds the reversal)."""
    session = get_session()
    entry = get_or_404(AuditEntry, entry_id)
    refund_id = entry.data.get("refund_id") if entry.action == REFUND_FAILED_LATER else None
    refund = session.get(Refund, refund_id) if refund_id else None
    if refund is None:
        abort(404)
    if reversal_of(session, refund.id) is None:
        failed_on = date.fromisoformat(entry.data["failed_on"])
        reverse_refund(session, refund.id, g.actor,
                       reversed_on=max(failed_on, refund.refunded_on),
                       reason=f"Stripe refund {entry.data.get('stripe_refund_id')} failed "
                              f"({entry.data.get('failure_reason') or 'unknown'}): the money "
                              "came back (reversal recorded from the online giving page)",
                       policy=state().policy_for(session))
        flash(f"Refund {refund.id} of gift {refund.gift_id} reversed.", "success")
    return redirect(url_for("online.index"))


@bp.post("/gifts/<int:gift_id>/return-money")
@role_required("refunds")
def return_gift_money(gift_id: int):
    """Retry the refund of a rejected Stripe gift (same idempotency key: never twice)."""
    session = get_session()
    gift = get_or_404(Gift, gift_id)
    gw = gateway()
    if gw is None or gift.status != "rejected" or not gift.stripe_payment_intent_id:
        abort(409)
    refund = return_money(session, gw, gift_id, g.actor, reason="Rejected gift: refunded through "
                          "Stripe from the online giving page", timezone=state().timezone)
    if refund is None:
        flash(f"Stripe did not refund gift {gift_id}; see the audit trail for its answer.", "error")
    else:
        flash(f"Gift {gift_id}: refund recorded.", "success")
    return redirect(url_for("online.index"))
