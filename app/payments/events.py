"""Stripe webhook events: each type's handler, and the once-only processing around them.

Stripe delivers events at least once and in any order. An event is processed in one
ledger_batch that also writes its StripeEvent row, so "processed" and "its work" commit
together or not at all; a second delivery finds the row and does nothing. The payment
ids are unique on Gift too, so the two events of one payment (checkout.session.completed
and payment_intent.succeeded) still make one gift.

An event finds its donation by Stripe's ids, never by metadata alone (app.payments.matching).
One that finds none is acknowledged, recorded on no donation, and kept in
stripe_unmatched_event for staff.

A handler may first `prepare` (read from the Stripe API, outside the ledger lock),
then `apply` (write, inside the batch), and returns a line saying what it did, or
an Unmatched saying why the event is about no donation here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from app.db.locking import ledger_batch
from app.ledger import audit
from app.ledger.gifts import PaymentRefs
from app.ledger.refund_reversals import reversal_of, reverse_refund
from app.payments import matching, recurring
from app.payments.gateway import Settlement, refund_from, subscription_from
from app.payments.matching import Unmatched
from app.payments.recording import (
    STRIPE,
    Context,
    gift_for_payment,
    move,
    record_lost_dispute,
    record_payment,
    refund_or_defer,
    resolve_donors,
)
from models import (
    DeferredRefund,
    Gift,
    OnlineDonation,
    Refund,
    StripeDispute,
    StripeEvent,
    StripeUnmatchedEvent,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handler:
    apply: Callable[[Context, dict, dict, object], str | Unmatched]
    prepare: Callable[[Context, dict], object] | None = None


HANDLERS: dict[str, Handler] = {}


def handles(*types: str, prepare=None):
    def register(apply):
        for event_type in types:
            HANDLERS[event_type] = Handler(apply, prepare)
        return apply

    return register


def _instant(ts) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC) if ts else utcnow()


def _id(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.get("id")


def process_event(ctx: Context, event: dict) -> str:
    """Process one verified event, once. Returns what it did."""
    session = ctx.session
    event_id = event["id"]
    seen = session.get(StripeEvent, event_id) is not None
    session.rollback()  # end the read: no transaction stays open across prepare's Stripe calls
    if seen:
        return "duplicate: already processed"
    handler = HANDLERS.get(event["type"])
    obj = event["data"]["object"]
    prepared = handler.prepare(ctx, obj) if handler and handler.prepare else None
    with ledger_batch(session):
        if session.get(StripeEvent, event_id) is not None:  # a concurrent delivery won
            return "duplicate: already processed"
        if handler is None:
            result = f"ignored: {event['type']} is not used"
        else:
            result = handler.apply(ctx, event, obj, prepared)
        outcome = f"unmatched: {result.why}" if isinstance(result, Unmatched) else result
        session.add(StripeEvent(id=event_id, type=event["type"], created=_instant(event.get("created")),
                                outcome=outcome[:500]))
        session.flush()
        if isinstance(result, Unmatched):
            _log_unmatched(ctx, event, obj, result)
    for followup in ctx.followups:
        try:
            followup()
        except Exception:  # the event is recorded; a failed follow-up must not undo that
            session.rollback()
            log.exception("follow-up of Stripe event %s failed", event_id)
    return outcome


def _metadata_of(event_type: str, obj: dict) -> dict | None:
    if event_type.startswith("invoice."):
        return _invoice_subscription(obj)[1]
    return obj.get("metadata")


def _log_unmatched(ctx: Context, event: dict, obj: dict, result: Unmatched) -> None:
    install, donation = matching.claims(
        result.metadata if result.metadata is not None else _metadata_of(event["type"], obj))
    ctx.session.add(StripeUnmatchedEvent(
        event_id=event["id"], event_type=event["type"], object_id=_id(obj.get("id")),
        claimed_install=install, claimed_donation=donation, reason=result.why[:500]))
    ctx.session.flush()
    if install is not None or donation is not None:
        # Its metadata looks like a donation form's: another installation on this Stripe
        # account, or a donation lost in a restore from a backup. Worth a look.
        log.warning("Stripe event %s (%s) matched no online donation: %s", event["id"],
                    event["type"], result.why)


# --- one-off payments ----------------------------------------------------------------------

def _settlement(ctx: Context, payment_intent_id: str | None, ours: bool) -> Settlement | None:
    """The payment's balance transaction, fetched only for a payment of ours not yet recorded."""
    if not payment_intent_id:
        return None
    fetch = ours and gift_for_payment(ctx.session, payment_intent_id=payment_intent_id) is None
    ctx.session.rollback()  # never hold a transaction open across a call to Stripe
    return ctx.gateway.payment_settlement(payment_intent_id) if fetch else None


def _session_donation(ctx: Context, obj: dict) -> OnlineDonation | Unmatched:
    return matching.for_checkout_session(ctx.session, obj["id"], obj.get("metadata"),
                                         ctx.install_id)


def _prepare_session(ctx: Context, obj: dict):
    if obj.get("mode") == "payment" and obj.get("payment_status") == "paid":
        pi = _id(obj.get("payment_intent"))
        donation = _session_donation(ctx, obj)
        ours = isinstance(donation, OnlineDonation) and donation.payment_intent_id in (None, pi)
        return _settlement(ctx, pi, ours)
    return None


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded",
         prepare=_prepare_session)
def _session_paid(ctx: Context, event: dict, obj: dict, settlement) -> str | Unmatched:
    donation = _session_donation(ctx, obj)
    if isinstance(donation, Unmatched):
        return donation
    if obj.get("mode") == "subscription":
        subscription = _id(obj.get("subscription"))
        if donation.subscription_id not in (None, subscription):
            return Unmatched(f"online donation {donation.id} is subscription "
                             f"{donation.subscription_id}, not {subscription}")
        donation.subscription_id = subscription
        donation.customer_id = donation.customer_id or _id(obj.get("customer"))
        if obj.get("payment_status") == "paid":
            resolve_donors(ctx.session, donation)  # its first invoice is paid: a donor now
        move(donation, "active")
        return f"online donation {donation.id}: subscription {donation.subscription_id} started"
    pi = _id(obj.get("payment_intent"))
    if donation.payment_intent_id not in (None, pi):
        return Unmatched(f"online donation {donation.id} was paid by payment intent "
                         f"{donation.payment_intent_id}, not {pi}")
    if obj.get("payment_status") != "paid":
        # Known now, so its payment_intent.succeeded is matched without asking Stripe.
        donation.payment_intent_id = pi
        return f"online donation {donation.id}: waiting for a delayed payment"
    gift, note = record_payment(
        ctx, donation, amount_minor=int(obj["amount_total"]), currency=obj["currency"].upper(),
        paid_at=_instant(event.get("created")),
        refs=PaymentRefs(stripe_payment_intent_id=pi, stripe_checkout_session_id=obj["id"]),
        settlement=settlement,
    )
    donation.payment_intent_id = pi
    move(donation, "paid")
    return f"online donation {donation.id}: {note}"


@dataclass(frozen=True)
class _Found:
    """What prepare learned from Stripe: the Checkout Session that made an object we had not
    stored, and the payment's settlement when it is ours and not yet recorded."""

    checkout_session_id: str | None = None
    settlement: Settlement | None = None
    payment_intent_id: str | None = None


def _ask_stripe(ctx: Context, metadata: dict | None, **made) -> str | None:
    """The Checkout Session that made this payment intent or subscription, asked of Stripe
    only when the metadata says it may be ours (a foreign payment costs no call)."""
    if not matching.worth_asking_stripe(metadata, ctx.install_id):
        return None
    return ctx.gateway.checkout_session_for(**made)


def _prepare_intent(ctx: Context, obj: dict) -> _Found:
    session, pi = ctx.session, obj["id"]
    recorded = gift_for_payment(session, payment_intent_id=pi) is not None
    known = matching.stored(session, OnlineDonation.payment_intent_id, pi) is not None
    session.rollback()  # never hold a transaction open across a call to Stripe
    if recorded:
        return _Found()
    found = None if known else _ask_stripe(ctx, obj.get("metadata"), payment_intent=pi)
    ours = isinstance(matching.for_payment_intent(session, pi, found, obj.get("metadata"),
                                                  ctx.install_id), OnlineDonation)
    return _Found(found, _settlement(ctx, pi, ours))


@handles("payment_intent.succeeded", prepare=_prepare_intent)
def _intent_succeeded(ctx: Context, event: dict, obj: dict, found: _Found) -> str | Unmatched:
    pi = obj["id"]
    recorded = gift_for_payment(ctx.session, payment_intent_id=pi)
    if recorded is not None:
        # Also every monthly payment's intent: its invoice recorded it.
        return f"gift {recorded.id} already recorded for this payment"
    donation = matching.for_payment_intent(ctx.session, pi, found.checkout_session_id,
                                           obj.get("metadata"), ctx.install_id)
    if isinstance(donation, Unmatched):
        return donation
    if donation.frequency != "once":
        return Unmatched(f"online donation {donation.id} is monthly: its payments are recorded "
                         "from their invoices")
    if donation.currency != obj["currency"].upper():
        return Unmatched(f"currency {obj['currency']} does not match online donation {donation.id}")
    gift, note = record_payment(
        ctx, donation, amount_minor=int(obj.get("amount_received") or obj["amount"]),
        currency=obj["currency"].upper(), paid_at=_instant(event.get("created")),
        refs=PaymentRefs(stripe_payment_intent_id=pi,
                         stripe_checkout_session_id=donation.checkout_session_id),
        settlement=found.settlement,
    )
    donation.payment_intent_id = pi
    move(donation, "paid")
    return f"online donation {donation.id}: {note}"


@handles("checkout.session.async_payment_failed")
def _session_failed(ctx: Context, event: dict, obj: dict, _prepared) -> str | Unmatched:
    donation = _session_donation(ctx, obj)
    if isinstance(donation, Unmatched):
        return donation
    move(donation, "failed")
    audit.append(ctx.session, STRIPE, "donation.payment_failed", "online_donation", donation.id,
                 {"checkout_session_id": obj["id"]})
    return f"online donation {donation.id}: the delayed payment failed"


@handles("checkout.session.expired")
def _session_expired(ctx: Context, event: dict, obj: dict, _prepared) -> str | Unmatched:
    donation = _session_donation(ctx, obj)
    if isinstance(donation, Unmatched):
        return donation
    move(donation, "expired")
    return f"online donation {donation.id}: checkout expired unpaid"


# --- monthly gifts ---------------------------------------------------------------------------

def _invoice_subscription(obj: dict) -> tuple[str | None, dict]:
    """The subscription and its metadata snapshot (API 2025-03-31+: under parent)."""
    details = ((obj.get("parent") or {}).get("subscription_details")
               or obj.get("subscription_details") or {})
    subscription = _id(details.get("subscription")) or _id(obj.get("subscription"))
    return subscription, details.get("metadata") or {}


def _find_subscription(ctx: Context, subscription: str | None, metadata: dict | None) -> _Found:
    """Prepare: a subscription not stored yet (its invoice came before checkout.session.completed)
    is looked up at Stripe. Leaves no transaction open."""
    known = matching.stored(ctx.session, OnlineDonation.subscription_id, subscription) is not None
    ctx.session.rollback()
    if known or not subscription:
        return _Found()
    return _Found(_ask_stripe(ctx, metadata, subscription=subscription))


def _subscription_donation(ctx: Context, subscription: str | None, metadata: dict | None,
                           found: _Found | None) -> OnlineDonation | Unmatched:
    donation = matching.for_subscription(ctx.session, subscription,
                                         found.checkout_session_id if found else None,
                                         metadata, ctx.install_id)
    if isinstance(donation, OnlineDonation):
        if donation.frequency != "monthly":
            return Unmatched(f"online donation {donation.id} is a one-off gift, not a subscription")
        donation.subscription_id = subscription
    return donation


def _prepare_invoice(ctx: Context, obj: dict) -> _Found:
    subscription, metadata = _invoice_subscription(obj)
    recorded = gift_for_payment(ctx.session, invoice_id=obj["id"]) is not None
    ctx.session.rollback()
    if recorded:
        return _Found()
    found = _find_subscription(ctx, subscription, metadata)
    ours = isinstance(matching.for_subscription(ctx.session, subscription,
                                                found.checkout_session_id, metadata,
                                                ctx.install_id), OnlineDonation)
    ctx.session.rollback()  # never hold a transaction open across a call to Stripe
    if not ours or not obj.get("amount_paid"):
        return found
    pi = _id(obj.get("payment_intent")) or ctx.gateway.invoice_payment_intent(obj["id"])
    return _Found(found.checkout_session_id, ctx.gateway.payment_settlement(pi) if pi else None, pi)


@handles("invoice.paid", prepare=_prepare_invoice)
def _invoice_paid(ctx: Context, event: dict, obj: dict, found: _Found) -> str | Unmatched:
    recorded = gift_for_payment(ctx.session, invoice_id=obj["id"])
    if recorded is not None:
        return f"gift {recorded.id} already recorded for invoice {obj['id']}"
    subscription, metadata = _invoice_subscription(obj)
    donation = _subscription_donation(ctx, subscription, metadata, found)
    if isinstance(donation, Unmatched):
        return donation
    if not obj.get("amount_paid"):
        return f"online donation {donation.id}: invoice {obj['id']} paid nothing"
    donation.customer_id = donation.customer_id or _id(obj.get("customer"))
    move(donation, "active")
    paid_at = (obj.get("status_transitions") or {}).get("paid_at") or event.get("created")
    gift, note = record_payment(
        ctx, donation, amount_minor=int(obj["amount_paid"]), currency=obj["currency"].upper(),
        paid_at=_instant(paid_at),
        refs=PaymentRefs(stripe_payment_intent_id=found.payment_intent_id,
                         stripe_invoice_id=obj["id"]),
        settlement=found.settlement,
    )
    return f"online donation {donation.id}, invoice {obj['id']}: {note}"


def _prepare_failed_invoice(ctx: Context, obj: dict) -> _Found:
    return _find_subscription(ctx, *_invoice_subscription(obj))


@handles("invoice.payment_failed", prepare=_prepare_failed_invoice)
def _invoice_failed(ctx: Context, event: dict, obj: dict, found: _Found) -> str | Unmatched:
    subscription, metadata = _invoice_subscription(obj)
    donation = _subscription_donation(ctx, subscription, metadata, found)
    if isinstance(donation, Unmatched):
        return donation
    day = ctx.local_date(_instant(event.get("created"))).isoformat()
    donation.attention = (f"A monthly payment failed on {day} (invoice {obj['id']}); Stripe "
                          "retries it, and ends the subscription if every retry fails.")
    # Once per event (the event row makes a second delivery a no-op): each failed attempt.
    donation.failed_payments += 1
    donation.updated_at = utcnow()
    audit.append(ctx.session, STRIPE, "donation.payment_failed", "online_donation", donation.id,
                 {"invoice_id": obj["id"], "attempt_count": obj.get("attempt_count"),
                  "failed_payments": donation.failed_payments})
    return (f"online donation {donation.id}: monthly payment failed "
            f"({donation.failed_payments} so far)")


def _prepare_subscription(ctx: Context, obj: dict) -> _Found:
    return _find_subscription(ctx, obj["id"], obj.get("metadata"))


def _snapshot(ctx: Context, event: dict, obj: dict, donation: OnlineDonation) -> dict:
    """Apply the subscription the event carries (ignored if older than the last applied);
    an audit entry by Stripe when it changed something."""
    changed = recurring.apply_subscription(ctx.session, donation, subscription_from(obj),
                                           _instant(event.get("created")), ctx.timezone)
    if changed:
        audit.append(ctx.session, STRIPE, "donation.subscription_updated", "online_donation",
                     donation.id, {"subscription_id": obj["id"], "event_id": event["id"],
                                   "changed": recurring.jsonable(changed)})
    return changed


@handles("customer.subscription.created", "customer.subscription.updated",
         prepare=_prepare_subscription)
def _subscription_updated(ctx: Context, event: dict, obj: dict, found: _Found) -> str | Unmatched:
    donation = _subscription_donation(ctx, obj["id"], obj.get("metadata"), found)
    if isinstance(donation, Unmatched):
        return donation
    changed = _snapshot(ctx, event, obj, donation)
    what = ", ".join(sorted(changed)) if changed else "nothing new"
    return f"online donation {donation.id}: subscription {obj.get('status')} ({what})"


@handles("customer.subscription.deleted", prepare=_prepare_subscription)
def _subscription_deleted(ctx: Context, event: dict, obj: dict, found: _Found) -> str | Unmatched:
    donation = _subscription_donation(ctx, obj["id"], obj.get("metadata"), found)
    if isinstance(donation, Unmatched):
        return donation
    if donation.state != "cancelled":
        move(donation, "cancelled")
        audit.append(ctx.session, STRIPE, "donation.subscription_ended", "online_donation",
                     donation.id, {"subscription_id": obj["id"],
                                   "reason": (obj.get("cancellation_details") or {}).get("reason")})
    _snapshot(ctx, event, {**obj, "status": obj.get("status") or "canceled"}, donation)
    return f"online donation {donation.id}: subscription ended"


# --- refunds and disputes --------------------------------------------------------------------

def _foreign(ctx: Context, payment_intent_id: str | None, metadata: dict | None) -> str | None:
    """Why a refund or dispute of this payment is another installation's (never waits for a
    payment that will not come here), or None. Leaves no transaction open."""
    session = ctx.session
    recorded = gift_for_payment(session, payment_intent_id=payment_intent_id) is not None \
        if payment_intent_id else False
    why = matching.foreign_payment(session, payment_intent_id, metadata, ctx.install_id,
                                   recorded)
    session.rollback()
    return why


def _prepare_refunds(ctx: Context, obj: dict):
    # The charge carries its payment intent's metadata (Stripe copies it when the payment
    # is confirmed): another installation's charge costs no call to Stripe.
    foreign = _foreign(ctx, _id(obj.get("payment_intent")), obj.get("metadata"))
    if foreign is not None:
        return Unmatched(foreign)
    embedded = (obj.get("refunds") or {}).get("data")
    if embedded is not None:
        return [refund_from(item) for item in embedded]
    # Since API 2022-11-15 a charge no longer carries its refunds: ask for them.
    return ctx.gateway.refunds_for_charge(obj["id"])


@handles("charge.refunded", prepare=_prepare_refunds)
def _charge_refunded(ctx: Context, event: dict, obj: dict, refunds) -> str | Unmatched:
    pi = _id(obj.get("payment_intent"))
    if isinstance(refunds, Unmatched):
        # Another installation's payment: never recorded here (its metadata is refused by
        # every match, app.payments.matching), so nothing can have changed under the lock.
        return refunds
    notes = [refund_or_defer(ctx, pi, refund) for refund in refunds]
    return "; ".join(notes) or "no refunds listed"


#: The audit action that records a recorded refund Stripe later reported as failed. Since
#: reversals exist its entry names the reversal (reversal_id); older entries only flagged
#: the failure for finance.
REFUND_FAILED_LATER = "stripe.refund_failed_later"


@handles("refund.failed", "refund.updated", "charge.refund.updated")
def _refund_updated(ctx: Context, event: dict, obj: dict, _prepared) -> str:
    """A refund that failed after Stripe first reported it (the card was closed, say): the
    money came back to us on the failure day. A recorded refund is reversed from that day
    on (app.ledger.refund_reversals), once: refund.failed and refund.updated report the
    same failure as two events, and the reversal is unique per refund. A refund still
    waiting for its payment is dropped, as it never returned anything."""
    session = ctx.session
    status = obj.get("status")
    if status != "failed":
        return f"refund {obj['id']} is {status}: nothing to change"
    failed_on = ctx.local_date(_instant(event.get("created")))
    why = obj.get("failure_reason") or "unknown"
    waiting = session.execute(
        select(DeferredRefund).where(DeferredRefund.stripe_refund_id == obj["id"],
                                     DeferredRefund.state == "waiting")
    ).scalar_one_or_none()
    if waiting is not None:
        session.delete(waiting)
        audit.append(session, STRIPE, "stripe.refund_dropped", "stripe_deferred_refund",
                     waiting.id, {"stripe_refund_id": obj["id"], "failure_reason": why,
                                  "payment_intent_id": waiting.payment_intent_id})
        return f"refund {obj['id']} failed before its payment was recorded: dropped"
    refund = session.execute(
        select(Refund).where(Refund.stripe_refund_id == obj["id"])
    ).scalar_one_or_none()
    if refund is None:
        return f"refund {obj['id']} failed; it was never recorded here: nothing to change"
    existing = reversal_of(session, refund.id)
    if existing is not None:
        return (f"refund {obj['id']} failure already recorded: reversal {existing.id} of "
                f"gift {refund.gift_id}")
    # Never before the refund itself (clocks, time zones): a reversal dated earlier would
    # count the money twice in the windows between.
    reversed_on = max(failed_on, refund.refunded_on)
    reversal = reverse_refund(
        session, refund.id, STRIPE, reversed_on=reversed_on, policy=ctx.policy,
        reason=f"Stripe refund {obj['id']} failed ({why}): the money came back",
    )
    gift = reversal.gift
    rejected = gift.status == "rejected"
    audit.append(session, STRIPE, REFUND_FAILED_LATER, "gift", gift.id, {
        "stripe_refund_id": obj["id"], "refund_id": refund.id,
        "amount_minor": refund.amount_minor, "currency": gift.currency,
        "refunded_on": refund.refunded_on, "failed_on": failed_on, "failure_reason": why,
        "reversal_id": reversal.row.id, "reversed_on": reversed_on,
        "lab_employee_share": [move.as_dict() for move in reversal.shares],
        "ledger": "refund reversed: the money counts again from " + reversed_on.isoformat()
                  + ("; the gift is rejected, so its money must be returned again"
                     if rejected else ""),
    })
    note = (f"refund {obj['id']} (refund {refund.id} of gift {gift.id}) failed on "
            f"{failed_on.isoformat()}: reversed from {reversed_on.isoformat()}")
    if reversal.breach:
        note += "; the lab-employee share is now at or above the cap"
    if rejected:
        note += "; the gift is rejected: its money is to be returned again"
    return note


def _dispute_row(ctx: Context, obj: dict) -> StripeDispute:
    session = ctx.session
    row = session.execute(
        select(StripeDispute).where(StripeDispute.stripe_dispute_id == obj["id"])
    ).scalar_one_or_none()
    if row is None:
        pi = _id(obj.get("payment_intent"))
        gift = gift_for_payment(session, payment_intent_id=pi)
        row = StripeDispute(
            stripe_dispute_id=obj["id"], gift_id=gift.id if gift else None, payment_intent_id=pi,
            charge_id=_id(obj.get("charge")), amount_minor=int(obj["amount"]),
            currency=obj["currency"].upper(), reason=obj.get("reason"), status=obj["status"],
            opened_on=ctx.local_date(_instant(obj.get("created"))),
        )
        session.add(row)
        session.flush()
        if gift is not None:
            audit.append(session, STRIPE, "gift.disputed", "gift", gift.id, {
                "stripe_dispute_id": row.stripe_dispute_id, "reason": row.reason,
                "amount_minor": row.amount_minor,
            }, sealed=[row])
        else:
            _dispute_entry(session, row, "stripe.dispute_recorded")
    return row


def _dispute_entry(session, row: StripeDispute, action: str) -> None:
    """An entry for a dispute row written or changed with no gift entry to carry it: the
    chain seals every dispute as it stands (app.ledger.row_hashes)."""
    audit.append(session, STRIPE, action, "stripe_dispute", row.id, {
        "stripe_dispute_id": row.stripe_dispute_id, "gift_id": row.gift_id,
        "payment_intent_id": row.payment_intent_id, "status": row.status,
        "amount_minor": row.amount_minor,
    }, sealed=[row])


def _prepare_dispute(ctx: Context, obj: dict) -> Unmatched | None:
    """A dispute of a payment that is on no gift here and no donation here knows: its
    payment's metadata (a dispute carries none of its own) is asked of Stripe, and if it
    names another installation the dispute is not ours to keep. One known here already
    (a row for it, or its payment) costs no call."""
    session, pi = ctx.session, _id(obj.get("payment_intent"))
    known = session.execute(select(StripeDispute.id).where(
        StripeDispute.stripe_dispute_id == obj["id"])).first() is not None
    known = known or not pi or gift_for_payment(session, payment_intent_id=pi) is not None \
        or matching.stored(session, OnlineDonation.payment_intent_id, pi) is not None
    session.rollback()  # never hold a transaction open across a call to Stripe
    if known:
        return None
    metadata = ctx.gateway.payment_metadata(pi)
    foreign = _foreign(ctx, pi, metadata)
    return Unmatched(foreign, metadata) if foreign is not None else None



@handles("charge.dispute.created", "charge.dispute.updated", prepare=_prepare_dispute)
def _dispute_opened(ctx: Context, event: dict, obj: dict, prepared) -> str | Unmatched:
    if prepared is not None:  # another installation's: no row, nothing waits
        return prepared
    row = _dispute_row(ctx, obj)
    if row.closed_at is None:
        changed = row.status != obj["status"]
        row.status = obj["status"]
        row.updated_at = utcnow()
        if changed:
            _dispute_entry(ctx.session, row, "stripe.dispute_updated")
    where = f"gift {row.gift_id}" if row.gift_id else f"payment {row.payment_intent_id} (not yet recorded)"
    return f"dispute {row.stripe_dispute_id} on {where}: {row.status}"


@handles("charge.dispute.closed", prepare=_prepare_dispute)
def _dispute_closed(ctx: Context, event: dict, obj: dict, prepared) -> str | Unmatched:
    if prepared is not None:  # another installation's: no row, nothing waits
        return prepared
    row = _dispute_row(ctx, obj)
    row.status = obj["status"]
    row.closed_at = row.closed_at or _instant(event.get("created"))
    row.updated_at = utcnow()
    if row.gift_id is None:
        _dispute_entry(ctx.session, row, "stripe.dispute_closed")
        return f"dispute {row.stripe_dispute_id} closed ({row.status}) before its payment was recorded"
    gift = ctx.session.get(Gift, row.gift_id)
    audit.append(ctx.session, STRIPE, "gift.dispute_closed", "gift", gift.id, {
        "stripe_dispute_id": row.stripe_dispute_id, "status": row.status,
    }, sealed=[row])
    if row.status == "lost":
        return record_lost_dispute(ctx, gift, row, row.closed_at)
    return f"dispute {row.stripe_dispute_id} closed: {row.status}"
