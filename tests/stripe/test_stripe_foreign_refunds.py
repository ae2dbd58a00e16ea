"""Another installation's refunds and disputes on a shared Stripe account (issue 12 review).

Two installations of Arm's Length on one Stripe account receive each other's events. A
refund or dispute of the other installation's payment matches no gift here and its payment
never comes: it must be acknowledged (2xx), logged as unmatched, and not kept waiting in the
deferred lists for ever. A refund or dispute of this installation's payment that arrives
before the payment still waits, and is applied when the payment comes. Through the real
Stripe SDK against the local stub, with signed webhooks; SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import DeferredRefund, Gift, Refund, StripeDispute, StripeUnmatchedEvent
from tests.stripe.stripe_stubs import (
    charge_refunded,
    dispute,
    expect_payment_metadata,
    expect_refund_list,
    expect_session_lookup,
    expect_settlement,
    intent_succeeded,
    metadata,
    post_event,
    refund_object,
    requests_to,
    start_donation,
)

OTHER_INSTALL = "f" * 32
#: What another installation's donation writes on its payment (and Stripe on its charge).
OTHER = {"armslength_install": OTHER_INSTALL, "armslength_donation": "e" * 32,
         "pending_gift_id": "1", "donor_id": "1"}


def ok(response) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    return response.get_json()["outcome"]


def count(db, model) -> int:
    db.rollback()
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def unmatched(db) -> list[StripeUnmatchedEvent]:
    db.rollback()
    return list(db.execute(select(StripeUnmatchedEvent)
                           .order_by(StripeUnmatchedEvent.created_at)).scalars())


@pytest.fixture
def donation(client, httpserver, db):
    """A donation started here, so this installation has its id."""
    return start_donation(client, httpserver, db)


def test_another_installations_refund_is_acknowledged_logged_and_not_kept(client, httpserver,
                                                                          db, donation):
    outcome = ok(post_event(client, charge_refunded(
        "pi_elsewhere", "ch_elsewhere", amount=5000, amount_refunded=5000, metadata=OTHER)))
    assert outcome.startswith("unmatched: payment intent pi_elsewhere")
    assert "another installation" in outcome
    assert count(db, DeferredRefund) == 0 and count(db, Refund) == 0
    [logged] = unmatched(db)
    assert (logged.event_type, logged.object_id, logged.claimed_install) == (
        "charge.refunded", "ch_elsewhere", OTHER_INSTALL)
    # Known from the charge's own metadata: Stripe was not even asked for its refunds.
    assert requests_to(httpserver, "/v1/refunds", "GET") == []
    # Delivered again: a no-op, still 2xx.
    assert count(db, StripeUnmatchedEvent) == 1


def test_another_installations_dispute_is_acknowledged_logged_and_not_kept(client, httpserver,
                                                                           db, donation):
    for event_type, status in (("charge.dispute.created", "needs_response"),
                               ("charge.dispute.closed", "lost")):
        # A dispute carries no metadata of its own: its payment's is asked of Stripe.
        expect_payment_metadata(httpserver, "pi_elsewhere", OTHER)
        outcome = ok(post_event(client, dispute(event_type, "du_elsewhere", amount=5000,
                                                status=status, payment_intent="pi_elsewhere")))
        assert outcome.startswith("unmatched: payment intent pi_elsewhere"), outcome
    assert count(db, StripeDispute) == 0 and count(db, Refund) == 0
    logged = unmatched(db)
    assert [(u.event_type, u.claimed_install) for u in logged] == [
        ("charge.dispute.created", OTHER_INSTALL), ("charge.dispute.closed", OTHER_INSTALL)]


def test_our_refund_and_dispute_before_the_payment_still_wait_and_are_applied(
        client, httpserver, db, donation):
    """This installation's marks on the charge and on the payment: they wait, as before,
    and the payment applies them."""
    expect_refund_list(httpserver, "ch_1", [refund_object("re_early", 1000, "pi_1")])
    assert "kept until payment pi_1" in ok(post_event(client, charge_refunded(
        amount=5000, amount_refunded=1000, metadata=metadata(donation))))
    expect_payment_metadata(httpserver, "pi_1", metadata(donation))
    assert "not yet recorded" in ok(post_event(client, dispute(
        "charge.dispute.created", "du_ours", amount=5000, status="needs_response")))
    db.rollback()
    assert db.execute(select(DeferredRefund.state)).scalars().all() == ["waiting"]
    assert db.execute(select(StripeDispute.gift_id)).scalars().all() == [None]

    expect_session_lookup(httpserver, donation.checkout_session_id, payment_intent="pi_1")
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, intent_succeeded(donation)))
    db.rollback()
    [gift] = db.execute(select(Gift)).scalars().all()
    assert gift.refunded_minor == 1000
    assert db.execute(select(DeferredRefund.state)).scalars().all() == ["applied"]
    assert db.execute(select(StripeDispute.gift_id)).scalars().all() == [gift.id]
    assert unmatched(db) == []


def test_a_refund_whose_payment_names_no_installation_still_waits(client, httpserver, db,
                                                                  donation):
    """No positive sign it is another's (a monthly renewal's payment carries no metadata):
    it waits for its payment, as before."""
    expect_refund_list(httpserver, "ch_9", [refund_object("re_9", 700, "pi_9", charge="ch_9")])
    assert "kept until payment pi_9" in ok(post_event(client, charge_refunded(
        "pi_9", "ch_9", amount=700, amount_refunded=700)))
    assert count(db, DeferredRefund) == 1 and unmatched(db) == []
