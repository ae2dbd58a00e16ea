"""Online giving through Stripe: screening before payment, the webhook, the calls to Stripe.

The public donate page and the staff page live in app.web (donate, online); this package
screens a donation before Stripe is asked for anything, records what Stripe reports and
returns money the policy rejects.
"""

from __future__ import annotations

import stripe
from flask import current_app, has_app_context
from sqlmodel import Session

from app.errors import LedgerError
from app.ledger.audit import Actor
from app.ledger.signals import gift_rejected_by_review


def _return_rejected_money(session: Session, gift_id: int, actor: Actor, **_unused) -> None:
    """A reviewer rejected a held gift: if Stripe took its money, give it back now."""
    if not has_app_context():
        return
    from app.extensions import state
    from app.payments.gateway import gateway
    from app.payments.recording import return_money
    from models import Gift

    gw = gateway()
    gift = session.get(Gift, gift_id)
    if gw is None or gift is None or not gift.stripe_payment_intent_id:
        return
    try:
        return_money(session, gw, gift_id, actor, reason="Rejected by a reviewer: refunded "
                     "through Stripe", timezone=state().timezone)
    except (stripe.StripeError, LedgerError):
        # The decision stands; the staff page lists the money still to return.
        current_app.logger.exception("returning the money of gift %s failed", gift_id)


def connect_ledger_signals() -> None:
    """Listen to the ledger (idempotent: blinker keeps one connection per receiver)."""
    gift_rejected_by_review.connect(_return_rejected_money)
