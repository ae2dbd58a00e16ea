"""Each Stripe event finds its donation by Stripe's ids plus this installation's marks.

Form numbers repeat: two installations on one Stripe account both have a donation 1, and a
database restored from a backup hands out 1 again while Stripe still retries the events of
the old 1. Another payment carrying the same metadata must never be recorded as this
donor's gift, and the real payment must still be recorded, with no 500 on the way.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from models import Gift, OnlineDonation, StripeEvent, StripeInstall, StripeUnmatchedEvent
from tests.stripe.stripe_stubs import (
    event,
    expect_invoice_payment,
    expect_session_lookup,
    expect_settlement,
    intent_succeeded,
    invoice,
    metadata,
    post_event,
    requests_to,
    session_completed,
    start_donation,
    subscription_started,
)


def ok(response) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    return response.get_json()["outcome"]


def gifts(db) -> list[Gift]:
    db.rollback()
    return list(db.execute(select(Gift).order_by(Gift.id)).scalars())


def unmatched(db) -> list[StripeUnmatchedEvent]:
    db.rollback()
    return list(db.execute(select(StripeUnmatchedEvent)
                           .order_by(StripeUnmatchedEvent.created_at)).scalars())


def lookups(httpserver) -> int:
    return len(requests_to(httpserver, "/v1/checkout/sessions", "GET"))


def foreign_metadata(donation: OnlineDonation, kind: str) -> dict:
    """The metadata another payment carries, as each way of colliding makes it."""
    same = metadata(donation)
    if kind == "identical":  # the worst case: every key equal
        return same
    if kind == "another installation":  # its own install id and reference, same form numbers
        return {**same, "armslength_install": "f" * 32, "armslength_donation": "e" * 32}
    if kind == "restored backup":  # this install, same form number, the lost donation's reference
        return {**same, "armslength_donation": "d" * 32}
    if kind == "before 0013":  # a form number only, as every donation sent before revision 0013
        return {"pending_gift_id": same["pending_gift_id"], "donor_id": same.get("donor_id", "1")}
    raise ValueError(kind)


def foreign_payment(donation: OnlineDonation, meta: dict, n: int = 1) -> list[dict]:
    """The two events of another one-off payment of the same amount: its Checkout Session
    completed and its payment intent succeeded."""
    session = session_completed(donation, f"pi_other_{n}")
    session["data"]["object"].update(id=f"cs_other_{n}", metadata=meta)
    intent = intent_succeeded(donation, f"pi_other_{n}")
    intent["data"]["object"]["metadata"] = meta
    return [session, intent]


KINDS = ["identical", "another installation", "restored backup", "before 0013"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("when", ["before", "after"])
def test_another_payment_with_the_same_metadata_records_nothing_and_the_real_one_is_recorded(
        client, httpserver, db, kind, when):
    donation = start_donation(client, httpserver, db, session_id="cs_test_real", amount="50")
    meta = foreign_metadata(donation, kind)
    asks_stripe = kind != "another installation"  # names another install: not worth a call

    def deliver_foreign(n: int) -> None:
        session_event, intent_event = foreign_payment(donation, meta, n)
        assert ok(post_event(client, session_event)) == (
            f"unmatched: Checkout Session cs_other_{n} was not created here")
        if asks_stripe:  # Stripe says which Checkout Session made it: not ours
            expect_session_lookup(httpserver, f"cs_other_{n}", payment_intent=f"pi_other_{n}")
        assert ok(post_event(client, intent_event)) == (
            f"unmatched: payment intent pi_other_{n} was made by no Checkout Session created here")

    def deliver_real() -> None:
        expect_settlement(httpserver, "pi_real", 5000)
        expect_session_lookup(httpserver, "cs_test_real", payment_intent="pi_real")
        assert "recorded: accept" in ok(post_event(client, intent_succeeded(donation, "pi_real")))
        assert "already recorded" in ok(post_event(client, session_completed(donation, "pi_real")))

    if when == "before":
        deliver_foreign(1)
        deliver_real()
    else:
        deliver_real()
        deliver_foreign(1)
    deliver_foreign(2)  # and once more, after both

    [gift] = gifts(db)
    assert (gift.stripe_payment_intent_id, gift.stripe_checkout_session_id, gift.amount_minor,
            gift.donor_id) == ("pi_real", "cs_test_real", 5000, donation.donor_id)
    stored = db.get(OnlineDonation, donation.id)
    assert (stored.state, stored.payment_intent_id) == ("paid", "pi_real")
    logged = unmatched(db)
    assert sorted(e.object_id for e in logged) == ["cs_other_1", "cs_other_2", "pi_other_1",
                                                   "pi_other_2"]
    assert {e.claimed_donation for e in logged} == {meta.get("armslength_donation")
                                                    or str(donation.id)}
    assert lookups(httpserver) == (3 if asks_stripe else 1)


def test_a_payment_on_our_checkout_session_whose_metadata_is_another_installations_is_not_recorded(
        client, httpserver, db):
    """The Stripe id matches but the marks do not: compared on every event."""
    donation = start_donation(client, httpserver, db, session_id="cs_test_marks")
    paid = session_completed(donation, "pi_marks")
    paid["data"]["object"]["metadata"] = foreign_metadata(donation, "another installation")
    outcome = ok(post_event(client, paid))
    assert outcome == (f"unmatched: Checkout Session cs_test_marks is online donation "
                       f"{donation.id}'s, but its metadata names another installation")
    assert gifts(db) == []
    assert [e.claimed_install for e in unmatched(db)] == ["f" * 32]


@pytest.mark.parametrize("when", ["before", "after"])
def test_invoice_paid_before_the_subscription_id_is_stored_records_only_the_real_subscription(
        client, httpserver, db, when):
    """An invoice of another subscription carrying the same metadata, before and after the
    real one, while the real subscription id is not stored yet (its checkout.session.completed
    comes last)."""
    donation = start_donation(client, httpserver, db, session_id="cs_test_monthly",
                              amount="other", other_amount="20", frequency="monthly")

    def deliver_foreign(n: int) -> None:
        expect_session_lookup(httpserver, f"cs_other_{n}", subscription=f"sub_other_{n}")
        assert ok(post_event(client, invoice("invoice.paid", donation, f"in_other_{n}",
                                             subscription=f"sub_other_{n}"))) == (
            f"unmatched: subscription sub_other_{n} was started by no Checkout Session created "
            "here")

    def deliver_real() -> None:
        expect_session_lookup(httpserver, "cs_test_monthly", subscription="sub_real")
        expect_invoice_payment(httpserver, "in_real", "pi_in_real")
        expect_settlement(httpserver, "pi_in_real", 2000, charge="ch_in_real")
        assert "recorded: accept" in ok(post_event(client, invoice("invoice.paid", donation,
                                                                   "in_real",
                                                                   subscription="sub_real")))

    if when == "before":
        deliver_foreign(1)
        deliver_real()
    else:
        deliver_real()
        deliver_foreign(1)
    db.rollback()
    assert db.get(OnlineDonation, donation.id).subscription_id == "sub_real"
    deliver_foreign(2)
    # The other subscription ending does not end ours.
    expect_session_lookup(httpserver, None, subscription="sub_other_1")
    assert ok(post_event(client, event("customer.subscription.deleted", {
        "id": "sub_other_1", "object": "subscription", "status": "canceled",
        "metadata": metadata(donation)}))).startswith("unmatched")
    assert "subscription sub_real started" in ok(post_event(
        client, subscription_started(donation, "sub_real")))
    # A later invoice of the real subscription is found by its stored id: no call to Stripe.
    calls = lookups(httpserver)
    expect_invoice_payment(httpserver, "in_real_2", "pi_in_real_2")
    expect_settlement(httpserver, "pi_in_real_2", 2000, charge="ch_in_real_2")
    assert "recorded: accept" in ok(post_event(client, invoice("invoice.paid", donation,
                                                               "in_real_2",
                                                               subscription="sub_real")))
    assert lookups(httpserver) == calls

    assert [(g.stripe_invoice_id, g.donor_id) for g in gifts(db)] == [
        ("in_real", donation.donor_id), ("in_real_2", donation.donor_id)]
    stored = db.get(OnlineDonation, donation.id)
    assert (stored.state, stored.subscription_id) == ("active", "sub_real")
    assert len(unmatched(db)) == 3


def test_a_repeated_event_and_a_second_event_for_a_recorded_payment_are_no_ops(
        client, httpserver, db):
    donation = start_donation(client, httpserver, db, session_id="cs_test_dup")
    expect_settlement(httpserver, "pi_dup", 5000)
    paid = session_completed(donation, "pi_dup")
    assert "recorded: accept" in ok(post_event(client, paid))
    assert ok(post_event(client, paid)) == "duplicate: already processed"
    # Another event about the same payment: no second gift, and no call to Stripe.
    assert "already recorded" in ok(post_event(client, intent_succeeded(donation, "pi_dup")))
    assert "already recorded" in ok(post_event(
        client, session_completed(donation, "pi_dup",
                                  event_type="checkout.session.async_payment_succeeded")))
    # An unmatched event delivered again is logged once.
    [stranger, _] = foreign_payment(donation, foreign_metadata(donation, "identical"))
    assert ok(post_event(client, stranger)).startswith("unmatched")
    assert ok(post_event(client, stranger)) == "duplicate: already processed"
    assert len(gifts(db)) == 1 and len(unmatched(db)) == 1
    assert lookups(httpserver) == 0


def test_a_failed_lookup_at_stripe_is_retried_not_dropped(client, httpserver, db):
    """Stripe unreachable while it says which session made a payment: a 5xx, nothing written,
    so Stripe delivers the event again; the money is never written off as unmatched."""
    donation = start_donation(client, httpserver, db, session_id="cs_test_retry")
    httpserver.expect_oneshot_request("/v1/checkout/sessions", method="GET").respond_with_json(
        {"error": {"type": "api_error", "message": "try later"}}, status=500)
    first = post_event(client, intent_succeeded(donation, "pi_retry"))
    assert first.status_code >= 500
    db.rollback()
    assert db.execute(select(func.count()).select_from(StripeEvent)).scalar_one() == 0
    expect_session_lookup(httpserver, "cs_test_retry", payment_intent="pi_retry")
    expect_settlement(httpserver, "pi_retry", 5000)
    assert "recorded: accept" in ok(post_event(client, intent_succeeded(donation, "pi_retry")))
    assert len(gifts(db)) == 1 and unmatched(db) == []


def test_a_donation_started_before_0013_is_matched_by_its_stored_stripe_ids(client, httpserver,
                                                                            db):
    """Donations stored before the upgrade have no reference; their Stripe objects carry the
    form number only, forever for a running subscription."""
    once = start_donation(client, httpserver, db, session_id="cs_test_old")
    monthly = start_donation(client, httpserver, db, session_id="cs_test_old_m",
                             email="bo@example.org", frequency="monthly")
    db.execute(update(OnlineDonation).values(reference=None))
    db.commit()
    old_once, old_monthly = (foreign_metadata(d, "before 0013") for d in (once, monthly))

    intent = intent_succeeded(once, "pi_old")
    intent["data"]["object"]["metadata"] = old_once
    expect_session_lookup(httpserver, "cs_test_old", payment_intent="pi_old")
    expect_settlement(httpserver, "pi_old", 5000)
    assert "recorded: accept" in ok(post_event(client, intent))

    started = subscription_started(monthly, "sub_old")
    started["data"]["object"]["metadata"] = old_monthly
    assert "started" in ok(post_event(client, started))
    paid = invoice("invoice.paid", monthly, "in_old", subscription="sub_old")
    paid["data"]["object"]["parent"]["subscription_details"]["metadata"] = old_monthly
    expect_invoice_payment(httpserver, "in_old", "pi_in_old")
    expect_settlement(httpserver, "pi_in_old", 5000, charge="ch_in_old")
    assert "recorded: accept" in ok(post_event(client, paid))
    # Another form number on the same subscription is not this donation's.
    wrong = invoice("invoice.paid", monthly, "in_wrong", subscription="sub_old")
    wrong["data"]["object"]["parent"]["subscription_details"]["metadata"] = {
        **old_monthly, "pending_gift_id": str(once.id)}
    assert "its metadata names another donation" in ok(post_event(client, wrong))
    assert sorted(g.stripe_payment_intent_id for g in gifts(db)) == ["pi_in_old", "pi_old"]


def test_a_donation_already_paid_by_another_payment_refuses_a_second_without_a_500(
        client, httpserver, db):
    """A database written by the old metadata matching may hold another payment on the
    donation: the real payment is then kept for staff, never a 500 on every delivery."""
    donation = start_donation(client, httpserver, db, session_id="cs_test_damaged")
    db.execute(update(OnlineDonation).where(OnlineDonation.id == donation.id)
               .values(payment_intent_id="pi_wrongly_recorded"))
    db.commit()
    outcome = ok(post_event(client, session_completed(donation, "pi_real")))
    assert outcome == (f"unmatched: online donation {donation.id} was paid by payment intent "
                       "pi_wrongly_recorded, not pi_real")
    assert gifts(db) == []


def test_each_donation_has_its_own_reference_and_the_installation_one_id(client, httpserver, db):
    first = start_donation(client, httpserver, db)
    second = start_donation(client, httpserver, db, email="bo@example.org")
    assert first.reference != second.reference and len(first.reference) == 32
    installs = db.execute(select(StripeInstall.install_id)).scalars().all()
    assert len(installs) == 1
    assert metadata(first)["armslength_install"] == metadata(second)["armslength_install"] \
        == installs[0]


def test_staff_see_the_events_that_matched_no_donation(client, httpserver, db, web_as):
    donation = start_donation(client, httpserver, db, session_id="cs_test_page")
    session_event, _ = foreign_payment(donation, foreign_metadata(donation, "another installation"))
    ok(post_event(client, session_event))
    ok(post_event(client, event("payment_intent.succeeded", {
        "id": "pi_plain", "object": "payment_intent", "amount": 900, "amount_received": 900,
        "currency": "usd", "metadata": {}})))
    page = web_as("finance").get("/staff/online/").get_data(as_text=True)
    assert 'id="unmatched-events"' in page
    assert "cs_other_1" in page and "was not created here" in page and "e" * 32 in page
    assert "pi_plain" not in page  # a payment with no form metadata is only counted
    assert "1 event(s) without such metadata" in page


def test_a_delayed_payments_intent_is_known_from_its_session_and_needs_no_lookup(
        client, httpserver, db):
    donation = start_donation(client, httpserver, db, session_id="cs_test_slow")
    assert "waiting" in ok(post_event(client, session_completed(donation, "pi_slow",
                                                                payment_status="unpaid")))
    expect_settlement(httpserver, "pi_slow", 5000)
    assert "recorded: accept" in ok(post_event(client, intent_succeeded(donation, "pi_slow")))
    assert lookups(httpserver) == 0
    # Another payment intent on the same donation is not taken.
    assert "was paid by payment intent pi_slow" in ok(post_event(
        client, session_completed(donation, "pi_else",
                                  event_type="checkout.session.async_payment_succeeded")))
    assert [g.stripe_payment_intent_id for g in gifts(db)] == ["pi_slow"]
