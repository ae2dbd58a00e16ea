"""The public donate page: screening before payment, and the Checkout Session it asks for."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from models import Affiliation, AuditEntry, Donor, OnlineDonation, StripeInstall
from tests.builders import affiliate, gift, organization, person
from tests.stripe.stripe_stubs import (
    form,
    post_donation,
    requests_to,
    start_donation,
)


def _funding(api, amount="10000.00") -> None:
    """Other money today, so a lab employee's gift stays under the cap."""
    gift(api, person(api, "Other Donor")["id"], amount, date.today())


def _count(db, model) -> int:
    db.rollback()  # a fresh read, and no transaction (SQLite lock) left open
    try:
        return db.execute(select(func.count()).select_from(model)).scalar_one()
    finally:
        db.rollback()


@pytest.mark.parametrize("stripe_settings", [{"STRIPE_SECRET_KEY": None}])
def test_without_a_stripe_key_the_page_says_online_giving_is_off(client, httpserver, db):
    page = client.get("/donate")
    assert page.status_code == 200
    assert "Online giving is not configured" in page.get_data(as_text=True)
    # The page has no form to post; a forged post meets the CSRF check and changes nothing.
    posted = client.post("/donate", data={"amount": "50", "email": "x@example.org"})
    assert posted.status_code == 400
    assert httpserver.log == []
    assert _count(db, Donor) == 0


def test_the_form_has_stable_ids_and_works_without_javascript(client):
    html = client.get("/donate").get_data(as_text=True)
    for element_id in ("amount-25", "amount-other", "other_amount", "currency", "frequency-once",
                       "frequency-monthly", "name", "email", "employer", "lab", "senior", "daf",
                       "daf_sponsor", "daf_advisor", "anonymous", "donate-submit"):
        assert f'id="{element_id}"' in html, element_id
    assert '<label class="choice" for="amount-25">' in html
    assert "<script" not in html
    jpy = client.get("/donate?currency=JPY").get_data(as_text=True)
    assert 'id="amount-3000"' in jpy and "¥3,000" in jpy


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": "", "email": ""}, "name", "Tell us your name."),
    ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    ({"amount": None}, "amount", "Choose an amount."),
    ({"amount": "other", "other_amount": ""}, "other_amount", "Enter the amount you would like"),
    ({"amount": "other", "other_amount": "0.50"}, "other_amount",
     "Online gifts in USD are between 1.00 USD and 25,000.00 USD"),
    ({"amount": "other", "other_amount": "30000"}, "other_amount", "For a larger gift"),
    ({"amount": "other", "other_amount": "12.345"}, "other_amount", "decimal places USD has"),
    ({"amount": "other", "other_amount": "12,5e3"}, "other_amount", "plain number"),
    ({"amount": "other", "other_amount": "12,5"}, "other_amount", "plain number"),  # not 125
    ({"currency": "JPY", "amount": "other", "other_amount": "1000.5"}, "other_amount",
     "JPY amounts are whole numbers."),
    ({"currency": "JPY", "amount": "50"}, "amount", "Choose one of the amounts shown for JPY"),
    ({"senior": "y"}, "lab", "Tell us which lab"),
    ({"daf": "y"}, "daf_sponsor", "give the fund&#39;s sponsor"),
])
def test_invalid_answers_are_explained_and_nothing_is_stored(client, httpserver, db, fields, field,
                                                             message):
    response = post_donation(client, **fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'class="field has-error"' in html or "has-error" in html
    assert httpserver.log == []  # no Checkout Session asked for
    assert _count(db, Donor) == 0
    assert _count(db, OnlineDonation) == 0


def test_an_accepted_gift_goes_to_checkout_with_exact_parameters(client, httpserver, db):
    donation = start_donation(client, httpserver, db, session_id="cs_test_once", amount="50")
    [request] = requests_to(httpserver, "/v1/checkout/sessions", "POST")
    sent = form(request)
    # Keyed by the donation's random reference: form numbers repeat across installations
    # sharing a Stripe account and after a restore, and a repeated key gets the other's session.
    assert len(donation.reference) == 32
    assert request.headers["Idempotency-Key"] == f"donation-{donation.reference}-checkout"
    assert request.headers["Authorization"] == "Bearer sk_test_armslength_offline"
    assert sent["mode"] == "payment"
    assert sent["submit_type"] == "donate"
    assert sent["line_items[0][quantity]"] == "1"
    assert sent["line_items[0][price_data][unit_amount]"] == "5000"
    assert sent["line_items[0][price_data][currency]"] == "usd"
    assert sent["line_items[0][price_data][product_data][name]"].startswith("Donation to ")
    assert "line_items[0][price_data][recurring][interval]" not in sent
    install = db.execute(select(StripeInstall.install_id)).scalar_one()
    for prefix in ("metadata", "payment_intent_data[metadata]"):
        assert sent[f"{prefix}[armslength_install]"] == install
        assert sent[f"{prefix}[armslength_donation]"] == donation.reference
        assert sent[f"{prefix}[pending_gift_id]"] == str(donation.id)
        # No donor record before the payment (it is made by the webhook): none to name.
        assert f"{prefix}[donor_id]" not in sent
    assert sent["client_reference_id"] == donation.reference
    assert sent["customer_email"] == "ada@example.org"
    assert sent["success_url"].endswith("/donate/thanks?session_id={CHECKOUT_SESSION_ID}")
    assert sent["cancel_url"].endswith("/donate/cancelled")
    assert (donation.state, donation.amount_minor, donation.currency) == ("open", 5000, "USD")
    assert (donation.donor_id, donation.donor_name, donation.donor_email) == (
        None, "Ada Lovelace", "ada@example.org")
    assert _count(db, Donor) == 0


def test_a_monthly_gift_asks_for_a_subscription(client, httpserver, db):
    donation = start_donation(client, httpserver, db, amount="other", other_amount="20",
                              frequency="monthly")
    sent = form(requests_to(httpserver, "/v1/checkout/sessions")[0])
    assert sent["mode"] == "subscription"
    assert "submit_type" not in sent
    assert sent["line_items[0][price_data][unit_amount]"] == "2000"
    assert sent["line_items[0][price_data][recurring][interval]"] == "month"
    assert sent["subscription_data[metadata][armslength_donation]"] == donation.reference
    assert sent["subscription_data[metadata][armslength_install]"] == sent[
        "metadata[armslength_install]"]
    assert sent["subscription_data[metadata][pending_gift_id]"] == str(donation.id)
    assert "subscription_data[metadata][donor_id]" not in sent  # no record before payment
    assert "payment_intent_data[metadata][pending_gift_id]" not in sent
    assert donation.frequency == "monthly"


def test_a_yen_amount_is_sent_in_yen_not_in_hundredths(client, httpserver, db):
    donation = start_donation(client, httpserver, db, currency="JPY", amount="other",
                              other_amount="12,345")
    sent = form(requests_to(httpserver, "/v1/checkout/sessions")[0])
    assert sent["line_items[0][price_data][unit_amount]"] == "12345"
    assert sent["line_items[0][price_data][currency]"] == "jpy"
    assert (donation.amount_minor, donation.currency) == (12345, "JPY")


def test_a_senior_decision_maker_is_told_politely_and_no_session_is_created(client, httpserver,
                                                                           db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    response = post_donation(client, employer="Frontier Lab", lab=str(lab["id"]), senior="y")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Thank you for thinking of us" in html
    assert "senior decision-makers at frontier AI labs" in html
    assert "No payment has been taken" in html
    assert httpserver.log == []  # Stripe was never asked
    assert _count(db, OnlineDonation) == 0
    # The declaration is a claim: screened as if true, written to no record (nothing was
    # paid); the refusal is audited.
    assert _count(db, Affiliation) == 0
    actions = db.execute(select(AuditEntry.action)).scalars().all()
    assert "donation.refused_before_payment" in actions


def test_a_declared_lab_employee_is_recorded_and_may_give(client, httpserver, db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    organization(api, "Frontier Lab Foundation", parent_id=lab["id"])
    _funding(api)
    page = client.get("/donate").get_data(as_text=True)
    assert "Frontier Lab Foundation" in page  # affiliates of a lab are listed too
    donation = start_donation(client, httpserver, db, lab=str(lab["id"]), employer="Frontier Lab")
    # Kept with the donation until the payment arrives (tests/stripe/test_stripe_declarations).
    assert (donation.declared_lab_id, donation.declaration_state, donation.donor_id) == (
        lab["id"], "declared", None)
    assert _count(db, Affiliation) == 0


def test_a_lab_employee_gift_that_would_break_the_cap_is_refused_before_payment(client, httpserver,
                                                                                db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    _funding(api, "100.00")
    response = post_donation(client, lab=str(lab["id"]), amount="250")
    html = response.get_data(as_text=True)
    assert "must stay below 50% of our funding" in html
    assert httpserver.log == []
    assert _count(db, OnlineDonation) == 0


def test_an_employer_typed_as_a_labs_name_counts_as_that_lab(client, httpserver, db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    _funding(api)
    donation = start_donation(client, httpserver, db, employer="frontier lab")
    assert donation.declared_lab_id == lab["id"]


def test_an_existing_donor_is_found_by_email(client, httpserver, db, api):
    known = person(api, "Ada King", email="Ada@Example.org")
    donation = start_donation(client, httpserver, db, email="ada@example.org")
    assert donation.donor_id == known["id"]
    assert _count(db, Donor) == 1


def test_a_known_senior_role_on_file_stops_the_gift_even_if_not_declared(client, httpserver, db,
                                                                         api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    known = person(api, "Ada King", email="ada@example.org")
    affiliate(api, known["id"], lab["id"], start="2020-01-01", senior=True)
    response = post_donation(client)
    assert "Thank you for thinking of us" in response.get_data(as_text=True)
    assert httpserver.log == []


def test_a_gift_through_a_donor_advised_fund_is_attributed_to_the_advisor(client, httpserver, db):
    donation = start_donation(client, httpserver, db, daf="y", daf_sponsor="Good Fund",
                              daf_advisor="Ada Lovelace")
    # Neither the advisor nor the fund's sponsor is a record before the payment arrives
    # (tests/stripe/test_stripe_declaration_gaps pays one and sees both made).
    assert (donation.via_daf, donation.daf_sponsor, donation.donor_id,
            donation.payer_donor_id) == (True, "Good Fund", None, None)
    assert _count(db, Donor) == 0
    sent = form(requests_to(httpserver, "/v1/checkout/sessions")[0])
    assert "metadata[donor_id]" not in sent


@pytest.mark.parametrize("stripe_settings", [{"DONATE_RATE_LIMIT": "2/60"}])
def test_too_many_attempts_from_one_client_are_refused(client, httpserver):
    for _ in range(2):
        assert post_donation(client, name="").status_code == 400
    limited = post_donation(client, name="")
    assert limited.status_code == 429
    assert "Too many attempts" in limited.get_data(as_text=True)


def test_a_stripe_error_leaves_no_money_taken_and_says_so(client, httpserver, db):
    httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json(
        {"error": {"type": "api_error", "message": "boom"}}, status=500)
    response = post_donation(client)
    assert response.status_code == 502
    assert "No money was taken" in response.get_data(as_text=True)
    [donation] = db.execute(select(OnlineDonation)).scalars()
    assert donation.state == "error"


def test_thanks_and_cancelled_pages(client, httpserver, db):
    donation = start_donation(client, httpserver, db, session_id="cs_test_thanks")
    thanks = client.get("/donate/thanks?session_id=cs_test_thanks")
    assert thanks.status_code == 200 and "50.00 USD" in thanks.get_data(as_text=True)
    assert client.get("/donate/thanks").status_code == 200
    cancelled = client.get("/donate/cancelled")
    assert cancelled.status_code == 200 and "No money was taken" in cancelled.get_data(as_text=True)
    assert donation.checkout_session_id == "cs_test_thanks"
