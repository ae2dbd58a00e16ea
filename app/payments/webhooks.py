"""POST /stripe/webhook: the only view exempt from CSRF; Stripe's signature protects it.

The signature is checked on the raw body, before anything is parsed or written. A
wrong or stale signature is a 400 and writes nothing. An event about no donation here is
acknowledged (2xx) and kept for staff (stripe_unmatched_event). An error while processing
is a 500, so Stripe delivers the event again later.
"""

from __future__ import annotations

import json

import stripe
from flask import Blueprint, current_app, jsonify, request

from app.db import get_session
from app.errors import LedgerBusy
from app.extensions import state
from app.http_errors import answer_for
from app.payments.currencies import preview_rates
from app.payments.events import process_event
from app.payments.gateway import gateway
from app.payments.matching import install_id
from app.payments.recording import Context

bp = Blueprint("webhooks", __name__)

#: Seconds a signature stays valid: Stripe's default; older deliveries are replays.
SIGNATURE_TOLERANCE = 300


def context() -> Context:
    st = state()
    session = get_session()
    return Context(
        session=session,
        gateway=gateway(),
        policy=st.policy_for(session),
        reporting_currency=st.reporting_currency,
        timezone=st.timezone,
        auto_refund=bool(current_app.config["STRIPE_AUTO_REFUND"]),
        preview_rates=preview_rates(current_app.config, st.reporting_currency),
        install_id=install_id(session),
    )


@bp.post("/stripe/webhook")
def stripe_webhook():
    config = current_app.config
    secret = config.get("STRIPE_WEBHOOK_SECRET")
    if not secret or not config.get("STRIPE_SECRET_KEY"):
        # 503, not 400: Stripe keeps the event and retries once we are configured.
        return jsonify({"error": "Stripe is not configured here"}), 503
    payload = request.get_data()
    try:
        stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature", ""),
                                       secret, tolerance=SIGNATURE_TOLERANCE)
    except stripe.SignatureVerificationError:
        return jsonify({"error": "invalid signature"}), 400
    except ValueError:
        return jsonify({"error": "invalid payload"}), 400
    event = json.loads(payload)
    ctx = context()
    try:
        outcome = process_event(ctx, event)
    except LedgerBusy as error:
        # Any 5xx makes Stripe deliver the event again later.
        answer = answer_for(error)
        return jsonify(answer.body), answer.status, answer.headers
    current_app.logger.info("stripe event %s %s: %s", event.get("id"), event.get("type"), outcome)
    return jsonify({"received": True, "outcome": outcome})
