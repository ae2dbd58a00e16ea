"""Money that arrives and then fails the policy: held for a reviewer, or refunded at once;
a reviewer's reject refunds through Stripe; a rejected monthly gift is stopped."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from models import AuditEntry, Decision, Gift, OnlineDonation, Refund
from tests.builders import affiliate, gift, organization, person
from tests.stripe.stripe_stubs import (
    charge_refunded,
    expect_invoice_payment,
    expect_refund_create,
    expect_refund_list,
    expect_settlement,
    form,
    invoice,
    post_event,
    refund_object,
    requests_to,
    session_completed,
    start_donation,
    subscription_started,
)


def ok(response) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    return response.get_json()["outcome"]


def reload(db, model, ident):
    db.rollback()
    return db.get(model, ident)


def actions(db) -> list[str]:
    db.rollback()
    return list(db.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars())


@pytest.fixture
def cap_moves(api, client, httpserver, db):
    """A lab employee's $500 passes screening; before it is paid another lab employee's $600
    is recorded, so at payment the lab-employee share would be 1100 / 2100 > 50%."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "1000.00", date.today())
    donation = start_donation(client, httpserver, db, session_id="cs_test_cap", amount="other",
                              other_amount="500", lab=str(lab["id"]))
    colleague = person(api, "Lee Colleague")
    affiliate(api, colleague["id"], lab["id"], start="2015-01-01")
    assert gift(api, colleague["id"], "600.00", date.today())["status"] == "accepted"
    expect_settlement(httpserver, "pi_1", 50000)
    return donation


def _online_gift(db) -> Gift:
    db.rollback()
    return db.execute(select(Gift).where(Gift.stripe_payment_intent_id == "pi_1")).scalar_one()


def test_money_the_policy_now_rejects_is_held_and_a_reviewers_reject_refunds_it(
        client, httpserver, db, api_as, cap_moves):
    assert "recorded: reject, now held" in ok(post_event(client, session_completed(cap_moves)))
    held = _online_gift(db)
    assert held.status == "held" and held.refunded_minor == 0
    decisions = db.execute(select(Decision.kind, Decision.outcome).where(Decision.gift_id == held.id)
                           .order_by(Decision.id)).all()
    assert decisions == [("screening", "reject"), ("rescreen", "hold")]
    assert "stripe.rejected_after_payment" in actions(db)
    assert requests_to(httpserver, "/v1/refunds") == []  # nothing returned without a person

    expect_refund_create(httpserver, "re_reject", 50000, "pi_1")
    reviewer = api_as("reviewer")
    response = reviewer.post(f"/gifts/{held.id}/review",
                             {"outcome": "reject", "reason": "Over the lab-employee cap"})
    assert response.status_code == 201, response.get_json()
    [request] = requests_to(httpserver, "/v1/refunds", "POST")
    assert request.headers["Idempotency-Key"] == "reject-pi_1"
    sent = form(request)
    assert (sent["payment_intent"], sent["amount"], sent["metadata[gift_id]"]) == (
        "pi_1", "50000", str(held.id))
    rejected = _online_gift(db)
    assert (rejected.status, rejected.refund_status) == ("rejected", "full")
    assert db.execute(select(Refund.stripe_refund_id)).scalar_one() == "re_reject"
    # Stripe then reports the refund it made: recognised, not counted twice.
    expect_refund_list(httpserver, "ch_1", [refund_object("re_reject", 50000, "pi_1")])
    assert "already recorded" in ok(post_event(
        client, charge_refunded(amount=50000, amount_refunded=50000)))


@pytest.mark.parametrize("stripe_settings", [{"STRIPE_AUTO_REFUND": True}])
def test_with_auto_refund_rejected_money_goes_straight_back(client, httpserver, db, cap_moves):
    expect_refund_create(httpserver, "re_auto", 50000, "pi_1")
    ok(post_event(client, session_completed(cap_moves)))
    rejected = _online_gift(db)
    assert (rejected.status, rejected.refund_status) == ("rejected", "full")
    [request] = requests_to(httpserver, "/v1/refunds", "POST")
    assert request.headers["Idempotency-Key"] == "reject-pi_1"
    assert db.execute(select(Refund.stripe_refund_id)).scalar_one() == "re_auto"


@pytest.mark.parametrize("stripe_settings", [{"STRIPE_AUTO_REFUND": True}])
def test_a_failed_auto_refund_puts_the_gift_in_front_of_a_reviewer(client, httpserver, db,
                                                                  cap_moves):
    httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "invalid_request_error", "message": "charge already disputed"}},
        status=400)
    ok(post_event(client, session_completed(cap_moves)))
    gift_ = _online_gift(db)
    assert (gift_.status, gift_.refunded_minor) == ("held", 0)
    assert "stripe.refund_failed" in actions(db)


def test_staff_see_money_to_return_and_can_retry_the_refund(client, httpserver, db, web_as,
                                                           api_as, cap_moves):
    ok(post_event(client, session_completed(cap_moves)))
    held = _online_gift(db)
    httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "try later"}}, status=400)
    reviewer = api_as("reviewer")
    assert reviewer.post(f"/gifts/{held.id}/review",
                         {"outcome": "reject", "reason": "Over the cap"}).status_code == 201
    assert _online_gift(db).status == "rejected"  # the decision stands; the money is owed
    finance = web_as("finance")
    page = finance.get("/staff/online/").get_data(as_text=True)
    assert f'id="return-{held.id}"' in page
    expect_refund_create(httpserver, "re_retry", 50000, "pi_1")
    from tests.webtools import csrf_token

    response = finance.post(f"/staff/online/gifts/{held.id}/return-money",
                            data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    keys = [r.headers["Idempotency-Key"] for r in requests_to(httpserver, "/v1/refunds", "POST")]
    assert keys == ["reject-pi_1"] * 2  # the retry can never refund twice
    assert _online_gift(db).refund_status == "full"
    assert f'id="return-{held.id}"' not in finance.get("/staff/online/").get_data(as_text=True)


def test_a_monthly_donor_who_becomes_senior_is_stopped_at_the_next_payment(
        client, httpserver, db, api, api_as, web_as):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    donation = start_donation(client, httpserver, db, frequency="monthly", amount="100")
    ok(post_event(client, subscription_started(donation)))
    expect_invoice_payment(httpserver, "in_1", "pi_inv_1")
    expect_settlement(httpserver, "pi_inv_1", 10000, charge="ch_inv_1")
    ok(post_event(client, invoice("invoice.paid", donation, "in_1")))
    db.rollback()
    donor_id = db.get(OnlineDonation, donation.id).donor_id  # made by the first payment
    db.rollback()
    # Staff learn the donor became a senior decision-maker at the lab.
    affiliate(api, donor_id, lab["id"], start=date.today().isoformat(), senior=True,
              title="Chief Scientist")
    httpserver.expect_oneshot_request("/v1/subscriptions/sub_1", method="DELETE").respond_with_json(
        {"id": "sub_1", "object": "subscription", "status": "canceled"})
    expect_invoice_payment(httpserver, "in_2", "pi_inv_2")
    expect_settlement(httpserver, "pi_inv_2", 10000, charge="ch_inv_2")
    assert "recorded: reject" in ok(post_event(client, invoice("invoice.paid", donation, "in_2")))
    assert len(requests_to(httpserver, "/v1/subscriptions/sub_1", "DELETE")) == 1
    stopped = reload(db, OnlineDonation, donation.id)
    assert stopped.state == "cancelled"
    assert "Monthly gift stopped" in stopped.attention
    second = db.execute(select(Gift).where(Gift.stripe_invoice_id == "in_2")).scalar_one()
    assert second.status == "held"  # the money is in; a reviewer decides how to return it
    assert {"donation.subscription_stopping", "donation.subscription_cancelled"} <= set(actions(db))
    page = web_as("viewer").get("/staff/online/").get_data(as_text=True)
    assert "Monthly gift stopped" in page


@pytest.mark.parametrize("stripe_settings", [  # UTC+14 and UTC-11
    {"STRIPE_AUTO_REFUND": True, "ORG_TIMEZONE": "Pacific/Kiritimati"},
    {"STRIPE_AUTO_REFUND": True, "ORG_TIMEZONE": "Pacific/Pago_Pago"}])
def test_an_automatic_refund_is_dated_in_the_organisations_time_zone(
        app, api, client, httpserver, db):
    """Paid days ago, refunded now: the refund's date is today in ORG_TIMEZONE, not UTC's
    date (at any hour one of the two zones is on another date than UTC)."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    zone = app.config["ORG_TIMEZONE"]
    local_today = datetime.now(ZoneInfo(zone)).date()
    lab = organization(api, "Frontier Lab", covered_lab=True)
    ada = person(api, "Ada Lovelace", "ada@example.org")  # the donate form finds her by e-mail
    affiliate(api, ada["id"], lab["id"], start="2015-01-01")
    gift(api, person(api, "Plain Donor")["id"], "1000.00", local_today - timedelta(days=5))
    donation = start_donation(client, httpserver, db, session_id="cs_test_tz", amount="other",
                              other_amount="500")
    colleague = person(api, "Lee Colleague")
    affiliate(api, colleague["id"], lab["id"], start="2015-01-01")
    gift(api, colleague["id"], "600.00", local_today - timedelta(days=5))
    charged = datetime.now(UTC) - timedelta(days=3)
    expect_settlement(httpserver, "pi_1", 50000, created=int(charged.timestamp()))
    expect_refund_create(httpserver, "re_auto", 50000, "pi_1")
    ok(post_event(client, session_completed(donation)))
    rejected = _online_gift(db)
    assert rejected.received_on == charged.astimezone(ZoneInfo(zone)).date()
    [refund] = db.execute(select(Refund)).scalars().all()
    assert refund.stripe_refund_id == "re_auto"
    assert refund.refunded_on == datetime.now(ZoneInfo(zone)).date()
