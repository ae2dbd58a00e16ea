"""Stripe, offline: stub API answers for pytest-httpserver, and signed webhook events.

The stub answers are the parts of Stripe's objects the app reads, in the shapes of the
API version the SDK pins (2026-10-28: an invoice names its subscription under
parent.subscription_details; a charge no longer lists its refunds).
"""

from __future__ import annotations

import json
import time
import uuid
from itertools import count
from urllib.parse import parse_qsl

import stripe
from sqlalchemy import select

from models import OnlineDonation
from tests.webtools import csrf_token

SECRET_KEY = "sk_test_armslength_offline"
WEBHOOK_SECRET = "whsec_armslength_test_secret"
CHECKOUT_URL = "https://checkout.stripe.test/c/pay/"
_ids = count(1)


def now() -> int:
    return int(time.time())


# --- what the app sent -------------------------------------------------------------------

def form(request) -> dict[str, str]:
    """A stub request's form-encoded body as {"metadata[donor_id]": "3", ...}."""
    return dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))


def requests_to(httpserver, path: str, method: str | None = None) -> list:
    return [req for req, _resp in httpserver.log
            if req.path == path and (method is None or req.method == method)]


# --- stub answers --------------------------------------------------------------------------

def expect_checkout(httpserver, session_id: str = "cs_test_1") -> str:
    httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json({
        "id": session_id, "object": "checkout.session", "url": CHECKOUT_URL + session_id,
    })
    return CHECKOUT_URL + session_id


def expect_settlement(httpserver, payment_intent: str, amount: int, currency: str = "usd", *,
                      charge: str = "ch_1", settled: int | None = None,
                      settled_currency: str | None = None, fee: int | None = None,
                      exchange_rate: float | None = None, created: int | None = None) -> None:
    """GET /v1/payment_intents/<id>?expand[]=latest_charge.balance_transaction."""
    gross = amount if settled is None else settled
    fee = round(gross * 0.029) + 30 if fee is None else fee
    httpserver.expect_request(f"/v1/payment_intents/{payment_intent}", method="GET").respond_with_json({
        "id": payment_intent, "object": "payment_intent", "amount": amount, "currency": currency,
        "status": "succeeded",
        "latest_charge": {
            "id": charge, "object": "charge", "amount": amount, "currency": currency,
            "created": created or now(), "payment_intent": payment_intent,
            "balance_transaction": {
                "id": f"txn_{charge}", "object": "balance_transaction", "amount": gross,
                "fee": fee, "net": gross - fee, "currency": settled_currency or currency,
                "exchange_rate": exchange_rate, "type": "charge",
            },
        },
    })


def expect_session_lookup(httpserver, session_id: str | None, *, payment_intent: str | None = None,
                          subscription: str | None = None) -> None:
    """GET /v1/checkout/sessions?payment_intent=... (or subscription=...): Stripe's answer to
    which Checkout Session made an object; session_id None: none did."""
    query = {"payment_intent": payment_intent} if payment_intent else {"subscription": subscription}
    data = [] if session_id is None else [{"id": session_id, "object": "checkout.session",
                                           "payment_intent": payment_intent,
                                           "subscription": subscription}]
    httpserver.expect_oneshot_request("/v1/checkout/sessions", method="GET",
                                      query_string={**query, "limit": "1"}).respond_with_json({
        "object": "list", "has_more": False, "url": "/v1/checkout/sessions", "data": data,
    })


def expect_payment_metadata(httpserver, payment_intent: str, metadata: dict) -> None:
    """GET /v1/payment_intents/<id> (no expansion): the payment intent and its metadata,
    answered once."""
    httpserver.expect_oneshot_request(f"/v1/payment_intents/{payment_intent}", method="GET",
                                      query_string="").respond_with_json({
        "id": payment_intent, "object": "payment_intent", "amount": 5000, "currency": "usd",
        "status": "succeeded", "metadata": metadata,
    })


def expect_invoice_payment(httpserver, invoice: str, payment_intent: str) -> None:
    httpserver.expect_request("/v1/invoice_payments", method="GET",
                              query_string={"invoice": invoice, "status": "paid", "limit": "10"}
                              ).respond_with_json({
        "object": "list", "has_more": False, "url": "/v1/invoice_payments",
        "data": [{"id": f"inpay_{invoice}", "object": "invoice_payment", "invoice": invoice,
                  "status": "paid",
                  "payment": {"type": "payment_intent", "payment_intent": payment_intent}}],
    })


def refund_object(refund_id: str, amount: int, payment_intent: str, charge: str = "ch_1",
                  currency: str = "usd", status: str = "succeeded", created: int | None = None) -> dict:
    return {"id": refund_id, "object": "refund", "amount": amount, "currency": currency,
            "payment_intent": payment_intent, "charge": charge, "status": status,
            "created": created or now(), "reason": "requested_by_customer"}


def expect_refund_list(httpserver, charge: str, refunds: list[dict]) -> None:
    httpserver.expect_oneshot_request("/v1/refunds", method="GET",
                                      query_string={"charge": charge, "limit": "100"}
                                      ).respond_with_json({
        "object": "list", "has_more": False, "url": "/v1/refunds", "data": refunds,
    })


def expect_refund_create(httpserver, refund_id: str, amount: int, payment_intent: str) -> None:
    httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        refund_object(refund_id, amount, payment_intent))


# --- events --------------------------------------------------------------------------------

def event(event_type: str, obj: dict, event_id: str | None = None, created: int | None = None) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}", "object": "event",
        "api_version": stripe.api_version, "created": created or now(), "livemode": False,
        "pending_webhooks": 1, "type": event_type, "data": {"object": obj},
    }


def post_event(client, payload: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return client.post("/stripe/webhook", data=body, headers={"Stripe-Signature": header},
                       content_type="application/json")


#: The metadata each Checkout Session was created with, by session id: Stripe copies it onto
#: the session, its payment intent or subscription, and the subscription's invoices.
_sent_metadata: dict[str, dict[str, str]] = {}


def sent_metadata(request) -> dict[str, str]:
    """The session metadata in a checkout request the app made ({"armslength_install": ...})."""
    return {key[len("metadata["):-1]: value for key, value in form(request).items()
            if key.startswith("metadata[")}


def metadata(donation: OnlineDonation) -> dict:
    """What Stripe puts in the metadata of this donation's objects: what the app sent."""
    return dict(_sent_metadata[donation.checkout_session_id])


def session_completed(donation: OnlineDonation, payment_intent: str = "pi_1", *,
                      event_type: str = "checkout.session.completed",
                      payment_status: str = "paid") -> dict:
    return event(event_type, {
        "id": donation.checkout_session_id, "object": "checkout.session", "mode": "payment",
        "payment_status": payment_status, "status": "complete", "payment_intent": payment_intent,
        "amount_total": donation.amount_minor, "currency": donation.currency.lower(),
        "customer": None, "subscription": None, "metadata": metadata(donation),
        "client_reference_id": str(donation.id),
    })


def subscription_started(donation: OnlineDonation, subscription: str = "sub_1") -> dict:
    return event("checkout.session.completed", {
        "id": donation.checkout_session_id, "object": "checkout.session", "mode": "subscription",
        "payment_status": "paid", "status": "complete", "payment_intent": None,
        "amount_total": donation.amount_minor, "currency": donation.currency.lower(),
        "customer": "cus_1", "subscription": subscription, "metadata": metadata(donation),
    })


def intent_succeeded(donation: OnlineDonation, payment_intent: str = "pi_1") -> dict:
    return event("payment_intent.succeeded", {
        "id": payment_intent, "object": "payment_intent", "amount": donation.amount_minor,
        "amount_received": donation.amount_minor, "currency": donation.currency.lower(),
        "status": "succeeded", "metadata": metadata(donation), "latest_charge": "ch_1",
    })


def invoice(event_type: str, donation: OnlineDonation, invoice_id: str, *,
            subscription: str = "sub_1", amount: int | None = None) -> dict:
    paid = event_type == "invoice.paid"
    amount = donation.amount_minor if amount is None else amount
    return event(event_type, {
        "id": invoice_id, "object": "invoice", "customer": "cus_1",
        "currency": donation.currency.lower(), "amount_due": amount,
        "amount_paid": amount if paid else 0, "status": "paid" if paid else "open",
        "attempt_count": 1,
        "status_transitions": {"paid_at": now() if paid else None},
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"subscription": subscription,
                                            "metadata": metadata(donation)}},
    })


def charge_refunded(payment_intent: str = "pi_1", charge: str = "ch_1", *, amount: int,
                    amount_refunded: int, currency: str = "usd",
                    metadata: dict | None = None) -> dict:
    """metadata: the charge's, which Stripe copies from its payment intent when confirmed."""
    return event("charge.refunded", {
        "id": charge, "object": "charge", "amount": amount, "amount_refunded": amount_refunded,
        "currency": currency, "payment_intent": payment_intent, "refunded": amount == amount_refunded,
        "status": "succeeded", "metadata": metadata or {},
    })


def dispute(event_type: str, dispute_id: str, *, amount: int, status: str,
            payment_intent: str = "pi_1", currency: str = "usd") -> dict:
    return event(event_type, {
        "id": dispute_id, "object": "dispute", "amount": amount, "currency": currency,
        "charge": "ch_1", "payment_intent": payment_intent, "reason": "fraudulent",
        "status": status, "created": now(),
    })


# --- the donate page -------------------------------------------------------------------------

def donate_form(**fields) -> dict:
    data = {"currency": "USD", "amount": "50", "other_amount": "", "frequency": "once",
            "name": "Ada Lovelace", "email": "ada@example.org", "employer": "", "lab": ""}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def post_donation(client, query: str = "", **fields):
    page = client.get("/donate" + query)
    assert page.status_code == 200, page.status_code
    return client.post("/donate" + query, data={**donate_form(**fields),
                                                 "csrf_token": csrf_token(page.get_data(as_text=True))})


def start_donation(client, httpserver, db, session_id: str | None = None, query: str = "",
                   **fields) -> OnlineDonation:
    """Through the donate page (its address + query) up to the redirect to Checkout; returns
    the pending donation."""
    session_id = session_id or f"cs_test_{next(_ids)}"
    url = expect_checkout(httpserver, session_id)
    response = post_donation(client, query, **fields)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == url
    [*_, request] = requests_to(httpserver, "/v1/checkout/sessions", "POST")
    _sent_metadata[session_id] = sent_metadata(request)
    db.rollback()
    donation = db.execute(
        select(OnlineDonation).where(OnlineDonation.checkout_session_id == session_id)
    ).scalar_one()
    db.rollback()  # leave no transaction open
    return donation


# --- subscriptions (monthly gifts) -------------------------------------------------------------

def subscription_object(subscription: str = "sub_1", amount: int = 2000, *, status: str = "active",
                        paused: bool = False, period_end: int | None = None,
                        currency: str = "usd", metadata: dict | None = None) -> dict:
    """A subscription as API 2026-10-28 shows it: the period on its one item."""
    return {
        "id": subscription, "object": "subscription", "status": status, "customer": "cus_1",
        "currency": currency, "cancel_at_period_end": False, "metadata": metadata or {},
        "pause_collection": {"behavior": "void", "resumes_at": None} if paused else None,
        "items": {"object": "list", "data": [{
            "id": f"si_{subscription}", "object": "subscription_item", "quantity": 1,
            "current_period_end": period_end or now() + 30 * 86400,
            "price": {"id": f"price_{amount}", "object": "price", "currency": currency,
                      "unit_amount": amount, "product": "prod_monthly",
                      "recurring": {"interval": "month"}}}]},
    }


def expect_subscription(httpserver, method: str, answer: dict, *, status: int = 200) -> None:
    """One answer of /v1/subscriptions/<id> (GET, POST to update, DELETE to cancel)."""
    httpserver.expect_oneshot_request(f"/v1/subscriptions/{answer['id']}", method=method
                                      ).respond_with_json(answer, status=status)


def stripe_error(message: str, code: str = "resource_missing") -> dict:
    return {"id": "sub_1", "error": {"type": "invalid_request_error", "code": code,
                                     "message": message}}


def subscription_event(event_type: str, donation: OnlineDonation, obj: dict,
                       created: int | None = None) -> dict:
    return event(event_type, {**obj, "metadata": metadata(donation)}, created=created)


def subscribed_monthly(client, httpserver, db, *, secret: str = WEBHOOK_SECRET,
                       subscription: str = "sub_1", **fields) -> OnlineDonation:
    """A monthly donation through the donate page, subscribed (its signed
    checkout.session.completed delivered): a recurring gift on the staff list."""
    donation = start_donation(client, httpserver, db, frequency="monthly", **fields)
    answer = post_event(client, subscription_started(donation, subscription), secret=secret)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    db.rollback()
    donation = db.get(OnlineDonation, donation.id)
    db.rollback()
    return donation
