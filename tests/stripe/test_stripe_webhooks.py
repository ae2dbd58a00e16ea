"""Webhooks: signed events in, exactly one gift per payment, refunds and disputes by id."""

from __future__ import annotations

import re
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from models import (
    AuditEntry,
    DeferredRefund,
    Gift,
    OnlineDonation,
    Refund,
    StripeDispute,
    StripeEvent,
    StripeSettlement,
    StripeUnmatchedEvent,
)
from tests.stripe.stripe_stubs import (
    charge_refunded,
    dispute,
    event,
    expect_invoice_payment,
    expect_payment_metadata,
    expect_refund_list,
    expect_session_lookup,
    expect_settlement,
    intent_succeeded,
    invoice,
    metadata,
    post_event,
    refund_object,
    session_completed,
    start_donation,
    subscription_started,
)


def count(db, model) -> int:
    db.rollback()
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def gifts(db) -> list[Gift]:
    db.rollback()
    return list(db.execute(select(Gift).order_by(Gift.id)).scalars())


def ok(response) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    return response.get_json()["outcome"]


@pytest.fixture
def donation(client, httpserver, db) -> OnlineDonation:
    """A screened $50 one-off donation, sent to Checkout as cs_test_1."""
    return start_donation(client, httpserver, db, session_id="cs_test_1", amount="50")


# --- signatures ------------------------------------------------------------------------------

def test_a_bad_signature_is_refused_and_nothing_is_written(client, db, donation):
    response = post_event(client, session_completed(donation), secret="whsec_wrong")
    assert response.status_code == 400
    assert (count(db, StripeEvent), count(db, Gift)) == (0, 0)


def test_a_stale_signature_is_refused_as_a_replay(client, db, donation):
    old = int(time.time()) - 3600
    response = post_event(client, session_completed(donation), timestamp=old)
    assert response.status_code == 400
    assert (count(db, StripeEvent), count(db, Gift)) == (0, 0)


def test_a_missing_signature_and_a_tampered_body_are_refused(client, db, donation):
    assert client.post("/stripe/webhook", json=session_completed(donation)).status_code == 400
    assert count(db, StripeEvent) == 0


@pytest.mark.parametrize("stripe_settings", [{"STRIPE_WEBHOOK_SECRET": None}])
def test_without_a_webhook_secret_events_are_refused_for_later_delivery(client, db, donation):
    assert post_event(client, session_completed(donation)).status_code == 503
    assert count(db, StripeEvent) == 0


# --- one payment, one gift --------------------------------------------------------------------

def test_a_paid_checkout_records_one_accepted_gift_with_its_settlement(client, httpserver, db,
                                                                        donation):
    expect_settlement(httpserver, "pi_1", 5000, fee=175)
    outcome = ok(post_event(client, session_completed(donation)))
    assert "recorded: accept" in outcome
    [gift] = gifts(db)
    assert (gift.amount_minor, gift.currency, gift.status, gift.method) == (5000, "USD", "accepted",
                                                                            "stripe")
    assert (gift.stripe_payment_intent_id, gift.stripe_checkout_session_id) == ("pi_1", "cs_test_1")
    assert gift.donor_id == donation.donor_id
    assert gift.received_on == date.today()
    settlement = db.execute(select(StripeSettlement)).scalar_one()
    assert (settlement.gift_id, settlement.gross_minor, settlement.fee_minor, settlement.net_minor,
            settlement.settlement_currency) == (gift.id, 5000, 175, 4825, "USD")
    assert db.get(OnlineDonation, donation.id).state == "paid"


def test_the_same_event_delivered_twice_makes_one_gift(client, httpserver, db, donation):
    expect_settlement(httpserver, "pi_1", 5000)
    payload = session_completed(donation)
    ok(post_event(client, payload))
    assert ok(post_event(client, payload)).startswith("duplicate")
    assert len(gifts(db)) == 1
    assert count(db, StripeEvent) == 1


@pytest.mark.parametrize("order", ["session first", "intent first"])
def test_checkout_completed_and_intent_succeeded_for_one_payment_make_one_gift(
        client, httpserver, db, donation, order):
    expect_settlement(httpserver, "pi_1", 5000)
    events = [session_completed(donation), intent_succeeded(donation)]
    if order == "intent first":
        events.reverse()
        # The payment intent is not stored yet: Stripe says which Checkout Session made it.
        expect_session_lookup(httpserver, "cs_test_1", payment_intent="pi_1")
    first, second = (ok(post_event(client, e)) for e in events)
    assert "recorded" in first and "already recorded" in second
    [gift] = gifts(db)
    assert (gift.stripe_payment_intent_id, gift.stripe_checkout_session_id) == ("pi_1", "cs_test_1")
    assert count(db, StripeEvent) == 2


def test_a_delayed_payment_waits_then_succeeds_or_fails(client, httpserver, db):
    waiting = start_donation(client, httpserver, db, session_id="cs_test_slow")
    assert "waiting" in ok(post_event(client, session_completed(waiting, payment_status="unpaid")))
    assert gifts(db) == []
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(
        waiting, event_type="checkout.session.async_payment_succeeded")))
    assert len(gifts(db)) == 1
    failing = start_donation(client, httpserver, db, session_id="cs_test_fail", email="bo@example.org")
    ok(post_event(client, session_completed(
        failing, "pi_2", event_type="checkout.session.async_payment_failed", payment_status="unpaid")))
    db.rollback()
    assert db.get(OnlineDonation, failing.id).state == "failed"
    assert len(gifts(db)) == 1


def test_a_yen_gift_takes_its_reporting_amount_from_the_settled_dollars(client, httpserver, db):
    donation = start_donation(client, httpserver, db, currency="JPY", amount="5000")
    expect_settlement(httpserver, "pi_jpy", 5000, "jpy", settled=3350, settled_currency="usd",
                      fee=127, exchange_rate=0.0067)
    ok(post_event(client, session_completed(donation, "pi_jpy")))
    [gift] = gifts(db)
    assert (gift.amount_minor, gift.currency) == (5000, "JPY")
    assert (gift.reporting_amount_minor, gift.reporting_currency) == (3350, "USD")
    assert gift.fx_rate == "0.0067" and gift.fx_source.startswith("Stripe settlement txn_")
    settlement = db.execute(select(StripeSettlement)).scalar_one()
    assert (settlement.gross_minor, settlement.fee_minor, settlement.net_minor,
            settlement.settlement_currency, settlement.exchange_rate) == (3350, 127, 3223, "USD",
                                                                          "0.0067")


def test_events_for_payments_not_started_here_are_recorded_and_ignored(client, db):
    stranger = event("payment_intent.succeeded", {
        "id": "pi_other", "object": "payment_intent", "amount": 900, "amount_received": 900,
        "currency": "usd", "metadata": {}})
    # No metadata of this site: not worth a call to Stripe (the stub would refuse one).
    assert ok(post_event(client, stranger)).startswith("unmatched: payment intent pi_other")
    assert ok(post_event(client, event("customer.created", {"id": "cus_9"}))).startswith("ignored")
    assert count(db, StripeEvent) == 2 and gifts(db) == []
    db.rollback()
    [logged] = db.execute(select(StripeUnmatchedEvent)).scalars().all()
    assert (logged.event_id, logged.object_id, logged.claimed_install,
            logged.claimed_donation) == (stranger["id"], "pi_other", None, None)


# --- refunds ------------------------------------------------------------------------------------

def test_a_partial_refund_then_another_are_recorded_once_each(client, httpserver, db, donation):
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(donation)))
    expect_refund_list(httpserver, "ch_1", [refund_object("re_1", 2000, "pi_1")])
    ok(post_event(client, charge_refunded(amount=5000, amount_refunded=2000)))
    expect_refund_list(httpserver, "ch_1", [refund_object("re_2", 1000, "pi_1"),
                                            refund_object("re_1", 2000, "pi_1")])
    ok(post_event(client, charge_refunded(amount=5000, amount_refunded=3000)))
    [gift] = gifts(db)
    assert gift.refunded_minor == 3000 and gift.refund_status == "partial"
    refunds = db.execute(select(Refund.stripe_refund_id, Refund.amount_minor)
                         .order_by(Refund.id)).all()
    assert refunds == [("re_1", 2000), ("re_2", 1000)]


def test_a_full_refund(client, httpserver, db, donation):
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(donation)))
    expect_refund_list(httpserver, "ch_1", [refund_object("re_1", 5000, "pi_1")])
    ok(post_event(client, charge_refunded(amount=5000, amount_refunded=5000)))
    [gift] = gifts(db)
    assert gift.refund_status == "full"


def test_a_refund_that_arrives_before_its_payment_is_applied_when_the_payment_comes(
        client, httpserver, db, donation):
    expect_refund_list(httpserver, "ch_1", [refund_object("re_early", 1500, "pi_1")])
    assert "kept until payment pi_1" in ok(post_event(
        client, charge_refunded(amount=5000, amount_refunded=1500)))
    waiting = db.execute(select(DeferredRefund)).scalar_one()
    assert (waiting.state, waiting.amount_minor) == ("waiting", 1500)
    expect_session_lookup(httpserver, "cs_test_1", payment_intent="pi_1")
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, intent_succeeded(donation)))
    [gift] = gifts(db)
    assert gift.refunded_minor == 1500
    refund = db.execute(select(Refund)).scalar_one()
    assert refund.stripe_refund_id == "re_early"
    applied = db.execute(select(DeferredRefund)).scalar_one()
    assert (applied.state, applied.refund_id) == ("applied", refund.id)
    # The same refund reported again changes nothing.
    expect_refund_list(httpserver, "ch_1", [refund_object("re_early", 1500, "pi_1")])
    assert "already recorded" in ok(post_event(
        client, charge_refunded(amount=5000, amount_refunded=1500)))
    assert count(db, Refund) == 1


def _flagged(db) -> list[AuditEntry]:
    db.rollback()
    return list(db.execute(select(AuditEntry).where(
        AuditEntry.action == "stripe.refund_failed_later")).scalars())


def _failed(refund_id: str, amount: int, event_type: str = "refund.failed", **kw) -> dict:
    obj = refund_object(refund_id, amount, "pi_1", status="failed")
    obj["failure_reason"] = "expired_or_canceled_card"
    return event(event_type, obj, **kw)


def test_a_recorded_refund_that_later_fails_is_reversed_once(client, httpserver, db,
                                                              donation, web_as):
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(donation)))
    expect_refund_list(httpserver, "ch_1", [refund_object("re_1", 2000, "pi_1")])
    ok(post_event(client, charge_refunded(amount=5000, amount_refunded=2000)))

    failure = _failed("re_1", 2000)
    assert "reversed from" in ok(post_event(client, failure))
    [gift] = gifts(db)
    assert (gift.refunded_minor, gift.refund_status) == (0, "none")
    assert [(e.entity_id, e.data["stripe_refund_id"], e.data["amount_minor"],
             e.data["failure_reason"]) for e in _flagged(db)] == [
        (gift.id, "re_1", 2000, "expired_or_canceled_card")]
    # The same failure again (redelivered, or reported by refund.updated too) reverses it once.
    assert ok(post_event(client, failure)) == "duplicate: already processed"
    assert "already recorded" in ok(post_event(client, _failed("re_1", 2000, "refund.updated")))
    assert "already recorded" in ok(post_event(client, _failed("re_1", 2000,
                                                               "charge.refund.updated")))
    assert len(_flagged(db)) == 1
    assert db.execute(select(func.count()).select_from(Refund)
                      .where(Refund.reverses_refund_id.is_not(None))).scalar_one() == 1

    page = web_as("finance").get("/staff/online/").get_data(as_text=True)
    assert "Refunds Stripe reports as failed" in page and 'id="failed-refunds"' in page
    assert "re_1" in page and "expired_or_canceled_card" in page
    assert "Refund reversed on" in page


def test_a_refund_update_that_is_not_a_failure_changes_nothing(client, httpserver, db, donation):
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(donation)))
    expect_refund_list(httpserver, "ch_1", [refund_object("re_1", 2000, "pi_1")])
    ok(post_event(client, charge_refunded(amount=5000, amount_refunded=2000)))
    updated = event("refund.updated", refund_object("re_1", 2000, "pi_1"))
    assert "succeeded: nothing to change" in ok(post_event(client, updated))
    assert _flagged(db) == []


def test_a_waiting_refund_that_fails_is_never_applied(client, httpserver, db, donation):
    expect_refund_list(httpserver, "ch_1", [refund_object("re_early", 1500, "pi_1")])
    ok(post_event(client, charge_refunded(amount=5000, amount_refunded=1500)))
    assert "dropped" in ok(post_event(client, _failed("re_early", 1500)))
    assert count(db, DeferredRefund) == 0
    expect_session_lookup(httpserver, "cs_test_1", payment_intent="pi_1")
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, intent_succeeded(donation)))
    [gift] = gifts(db)
    assert gift.refunded_minor == 0 and count(db, Refund) == 0


# --- disputes ------------------------------------------------------------------------------------

def test_a_dispute_is_recorded_and_a_lost_one_returns_the_money(client, httpserver, db, donation):
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(donation)))
    [gift] = gifts(db)
    ok(post_event(client, dispute("charge.dispute.created", "du_1", amount=5000,
                                  status="needs_response")))
    db.rollback()
    row = db.execute(select(StripeDispute)).scalar_one()
    assert (row.gift_id, row.status, row.closed_at) == (gift.id, "needs_response", None)
    assert "gift.disputed" in db.execute(select(AuditEntry.action)).scalars().all()
    assert "dispute du_1 lost" in ok(post_event(
        client, dispute("charge.dispute.closed", "du_1", amount=5000, status="lost")))
    db.rollback()
    row = db.execute(select(StripeDispute)).scalar_one()
    assert row.status == "lost" and row.closed_at is not None and row.refund_id is not None
    [gift] = gifts(db)
    assert gift.refund_status == "full"
    assert db.get(Refund, row.refund_id).reason.startswith("Card dispute du_1 lost")


def test_a_won_dispute_returns_nothing(client, httpserver, db, donation):
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, session_completed(donation)))
    ok(post_event(client, dispute("charge.dispute.created", "du_2", amount=5000,
                                  status="needs_response")))
    ok(post_event(client, dispute("charge.dispute.closed", "du_2", amount=5000, status="won")))
    [gift] = gifts(db)
    assert gift.refunded_minor == 0
    assert db.execute(select(StripeDispute.status)).scalar_one() == "won"


# --- monthly gifts -----------------------------------------------------------------------------

def test_each_monthly_invoice_is_a_new_gift(client, httpserver, db, web_as):
    donation = start_donation(client, httpserver, db, amount="other", other_amount="20",
                              frequency="monthly")
    assert "subscription sub_1 started" in ok(post_event(client, subscription_started(donation)))
    assert gifts(db) == []  # the first payment is recorded from its invoice, not twice
    for number in (1, 2):
        expect_invoice_payment(httpserver, f"in_{number}", f"pi_inv_{number}")
        expect_settlement(httpserver, f"pi_inv_{number}", 2000, charge=f"ch_inv_{number}")
        ok(post_event(client, invoice("invoice.paid", donation, f"in_{number}")))
        # Stripe also reports each invoice's payment intent: not a second gift.
        assert "already recorded" in ok(post_event(client, event("payment_intent.succeeded", {
            "id": f"pi_inv_{number}", "object": "payment_intent", "amount": 2000,
            "amount_received": 2000, "currency": "usd", "metadata": {}})))
    recorded = gifts(db)
    assert [(g.stripe_invoice_id, g.stripe_payment_intent_id, g.amount_minor, g.status)
            for g in recorded] == [("in_1", "pi_inv_1", 2000, "accepted"),
                                   ("in_2", "pi_inv_2", 2000, "accepted")]
    db.rollback()
    stored = db.get(OnlineDonation, donation.id)
    assert (stored.state, stored.subscription_id, stored.customer_id) == ("active", "sub_1", "cus_1")
    # The donor's page lists the monthly gift among the relationship's facts.
    page = web_as("viewer").get(f"/staff/donors/{recorded[0].donor_id}").get_data(as_text=True)
    monthly = re.search(r'<table id="monthly-giving">.*?</table>', page, re.S).group(0)
    assert "20.00 USD" in monthly and "Active" in monthly


def test_an_invoice_paid_before_checkout_completed_is_still_found(client, httpserver, db):
    donation = start_donation(client, httpserver, db, frequency="monthly")
    # The subscription is not stored yet: Stripe says which Checkout Session started it.
    expect_session_lookup(httpserver, donation.checkout_session_id, subscription="sub_1")
    expect_invoice_payment(httpserver, "in_1", "pi_inv_1")
    expect_settlement(httpserver, "pi_inv_1", 5000)
    assert "recorded: accept" in ok(post_event(client, invoice("invoice.paid", donation, "in_1")))
    db.rollback()
    assert db.get(OnlineDonation, donation.id).subscription_id == "sub_1"
    assert "subscription sub_1 started" in ok(post_event(client, subscription_started(donation)))
    assert len(gifts(db)) == 1


def test_a_failed_monthly_payment_and_the_end_of_the_subscription_are_shown_to_staff(
        client, httpserver, db):
    donation = start_donation(client, httpserver, db, frequency="monthly")
    ok(post_event(client, subscription_started(donation)))
    ok(post_event(client, invoice("invoice.payment_failed", donation, "in_9")))
    db.rollback()
    assert "monthly payment failed" in db.get(OnlineDonation, donation.id).attention
    ok(post_event(client, event("customer.subscription.deleted", {
        "id": "sub_1", "object": "subscription", "status": "canceled",
        "metadata": metadata(donation)})))
    db.rollback()
    assert db.get(OnlineDonation, donation.id).state == "cancelled"
    assert gifts(db) == []


def test_a_dispute_lost_before_its_payment_was_recorded_is_applied_when_it_is(
        client, httpserver, db, donation):
    # Its payment is on no gift yet: its metadata (this installation's) is asked of Stripe,
    # once; the dispute's row then answers for the later events.
    expect_payment_metadata(httpserver, "pi_1", metadata(donation))
    ok(post_event(client, dispute("charge.dispute.created", "du_3", amount=5000,
                                  status="needs_response")))
    assert "before its payment was recorded" in ok(post_event(
        client, dispute("charge.dispute.closed", "du_3", amount=5000, status="lost")))
    expect_session_lookup(httpserver, "cs_test_1", payment_intent="pi_1")
    expect_settlement(httpserver, "pi_1", 5000)
    ok(post_event(client, intent_succeeded(donation)))
    [gift] = gifts(db)
    row = db.execute(select(StripeDispute)).scalar_one()
    assert (row.gift_id, row.status) == (gift.id, "lost")
    assert gift.refund_status == "full"


def test_an_expired_checkout_is_marked_and_records_nothing(client, db, donation):
    ok(post_event(client, session_completed(donation, event_type="checkout.session.expired",
                                            payment_status="unpaid")))
    db.rollback()
    assert db.get(OnlineDonation, donation.id).state == "expired"
    assert gifts(db) == []


def test_metadata_that_does_not_match_our_records_is_not_trusted(client, httpserver, db,
                                                                donation):
    """Even on our own Checkout Session, an event whose metadata names another donation
    reference records nothing (and is kept for staff)."""
    forged = intent_succeeded(donation)
    forged["data"]["object"]["metadata"]["armslength_donation"] = "0" * 32
    expect_session_lookup(httpserver, "cs_test_1", payment_intent="pi_1")
    outcome = ok(post_event(client, forged))
    assert outcome.startswith("unmatched") and "names another donation" in outcome
    assert gifts(db) == []
    assert db.execute(select(StripeUnmatchedEvent.claimed_donation)).scalar_one() == "0" * 32
