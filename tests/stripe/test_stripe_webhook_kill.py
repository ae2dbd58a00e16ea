"""A webhook worker killed with SIGKILL while it processes a payment event.

The child receives a signed checkout.session.completed, fetches the settlement from the
stub Stripe API, and is stopped inside the event's one transaction once the gift's rows
are flushed (see tests/reliability/fault_worker.py); the parent kills it. Nothing of the event is
kept: no gift, no StripeEvent row, the donation still waiting. Stripe then delivers the
event again (at least once, as it does after a failed delivery) and it makes exactly one
gift; a further delivery is a duplicate.

Signature checks, including a replay outside the tolerance, are in test_stripe_webhooks.py
(test_a_stale_signature_is_refused_as_a_replay).
"""

from __future__ import annotations

import json

import pytest
import stripe
from sqlalchemy import func, select

from models import Gift, OnlineDonation, StripeEvent
from tests.reliability import fault_worker
from tests.reliability.test_concurrency import ledger_snapshot
from tests.reliability.test_fault_kill import kill_when_inside
from tests.stripe.stripe_stubs import (
    WEBHOOK_SECRET,
    expect_settlement,
    post_event,
    session_completed,
    start_donation,
)

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it

CONFIG_KEYS = ("DATABASE_URL", "TESTING", "SECRET_KEY", "ORG_TIMEZONE", "STRIPE_SECRET_KEY",
               "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "STRIPE_MAX_NETWORK_RETRIES")


def count(db, model) -> int:
    db.rollback()
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_killed_webhook_keeps_nothing_and_the_redelivery_makes_one_gift(app, client, httpserver,
                                                                           db):
    donation = start_donation(client, httpserver, db, session_id="cs_test_kill", amount="50")
    expect_settlement(httpserver, "pi_kill", 5000)
    event = session_completed(donation, payment_intent="pi_kill")
    payload = json.dumps(event)
    signature = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    config = {key: app.config[key] for key in CONFIG_KEYS}
    before = ledger_snapshot(app)

    kill_when_inside(fault_worker.webhook_main, (config, payload, signature),
                     app.config["DATABASE_URL"])

    assert ledger_snapshot(app) == before
    assert (count(db, Gift), count(db, StripeEvent)) == (0, 0)
    db.rollback()
    assert db.get(OnlineDonation, donation.id).state != "paid"
    db.rollback()

    redelivered = post_event(client, event)  # re-signed now, as Stripe does for each attempt
    assert redelivered.status_code == 200, redelivered.get_data(as_text=True)
    assert "recorded" in redelivered.get_json()["outcome"]
    again = post_event(client, event)
    assert again.get_json()["outcome"].startswith("duplicate")
    assert (count(db, Gift), count(db, StripeEvent)) == (1, 1)
    db.rollback()
    gift = db.execute(select(Gift)).scalar_one()
    assert (gift.stripe_payment_intent_id, gift.amount_minor, gift.status) == ("pi_kill", 5000,
                                                                               "accepted")
    assert db.get(OnlineDonation, donation.id).state == "paid"
    db.rollback()
