"""Gaps in how the donate form's declarations are kept and answered (issue 11 part B).

Through the real donate page (its own form and CSRF token), signed Stripe webhooks and the
reviewer's own pages: every held gift of a donor whose declaration waits offers the one
answer, and the answer counts for all of them.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from models import Attribution, Decision, Donor, Gift, OnlineDonation, RefusedDeclaration
from tests.builders import gift, organization, person
from tests.stripe.stripe_stubs import (
    expect_invoice_payment,
    expect_settlement,
    invoice,
    post_donation,
    post_event,
    session_completed,
    start_donation,
    subscription_started,
)
from tests.stripe.test_stripe_declarations import (
    VICTIM,
    affiliations,
    audit_targets,
    fresh,
    pay,
    victim_with_a_gift_today,
)
from tests.webtools import post_refused, submit

ANSWER_FORM = "A declaration that differs from the record"


def ok(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def monthly_held_twice(client, httpserver, db, api):
    """A monthly donation under a known donor's e-mail with a lab declared; two payments."""
    lab, victim, _ = victim_with_a_gift_today(api)
    donation = start_donation(client, httpserver, db, email=VICTIM, lab=str(lab["id"]),
                              frequency="monthly")
    ok(post_event(client, subscription_started(donation)))
    for number in (1, 2):
        expect_invoice_payment(httpserver, f"in_{number}", f"pi_inv_{number}")
        expect_settlement(httpserver, f"pi_inv_{number}", donation.amount_minor,
                          charge=f"ch_inv_{number}")
        ok(post_event(client, invoice("invoice.paid", donation, f"in_{number}")))
    held = list(fresh(db).execute(select(Gift).where(Gift.stripe_invoice_id.is_not(None))
                                  .order_by(Gift.id)).scalars())
    assert [g.status for g in held] == ["held", "held"]
    donation = fresh(db).get(OnlineDonation, donation.id)
    assert (donation.declaration_state, donation.declaration_gift_id) == ("to_review", held[0].id)
    return lab, victim, donation, held


def decisions(db, gift_id: int) -> int:
    return len(fresh(db).execute(select(Decision.id).where(Decision.gift_id == gift_id)).all())


def test_every_held_monthly_gift_offers_the_one_answer_and_dismissing_it_counts_for_all(
        client, httpserver, db, api, api_as, web_as):
    _, victim, donation, (first, second) = monthly_held_twice(client, httpserver, db, api)
    reviewer = web_as("reviewer")
    for held in (first, second):
        html = reviewer.get(f"/staff/review/gifts/{held.id}/decide").get_data(as_text=True)
        assert ANSWER_FORM in html, held.id
        assert f'action="/staff/review/gifts/{held.id}/declaration"' in html
        # Each page names the other gift waiting on the same answer.
        other = second if held is first else first
        assert f'href="/staff/review/gifts/{other.id}/decide">gift #{other.id}</a>' in html
    # Neither gift can be accepted before the answer, the later one included.
    refused = api_as("reviewer").post(f"/gifts/{second.id}/review",
                                      {"outcome": "accept", "reason": "looks fine to me"})
    assert refused.status_code == 409 and "declaration" in refused.get_json()["error"]

    page = f"/staff/review/gifts/{second.id}/decide"
    response = submit(reviewer, page, {"answer": "dismiss", "reason": "Not the same person"},
                      action=f"/staff/review/gifts/{second.id}/declaration", follow_redirects=True)
    assert f"Gifts #{first.id}, #{second.id} are still yours to decide" in \
        response.get_data(as_text=True)
    assert fresh(db).get(OnlineDonation, donation.id).declaration_state == "dismissed"
    assert affiliations(db, victim["id"]) == []
    for held in (first, second):
        html = reviewer.get(f"/staff/review/gifts/{held.id}/decide").get_data(as_text=True)
        assert ANSWER_FORM not in html and "Your decision" in html
        accepted = api_as("reviewer").post(f"/gifts/{held.id}/review",
                                           {"outcome": "accept", "reason": "dismissed"})
        assert accepted.status_code == 201, accepted.get_json()


def test_applying_from_a_later_gift_puts_the_role_on_record_and_rescreens_every_held_gift(
        client, httpserver, db, api, web_as):
    lab, victim, donation, (first, second) = monthly_held_twice(client, httpserver, db, api)
    before = {g.id: decisions(db, g.id) for g in (first, second)}
    reviewer = web_as("reviewer")
    page = f"/staff/review/gifts/{second.id}/decide"
    response = submit(reviewer, page, {"answer": "apply", "reason": "Confirmed by e-mail"},
                      action=f"/staff/review/gifts/{second.id}/declaration")
    assert response.status_code == 302
    [aff] = affiliations(db, victim["id"])
    assert aff.organization_id == lab["id"]
    assert fresh(db).get(OnlineDonation, donation.id).declaration_state == "applied"
    for held in (first, second):
        # Screened again with the role on record, and still held for the reviewer.
        assert decisions(db, held.id) == before[held.id] + 1
        assert fresh(db).get(Gift, held.id).status == "held"
        html = reviewer.get(f"/staff/review/gifts/{held.id}/decide").get_data(as_text=True)
        assert ANSWER_FORM not in html


# --- declarations refused before payment are kept by e-mail (a) -----------------------------

def refusals(db) -> list[RefusedDeclaration]:
    return list(fresh(db).execute(select(RefusedDeclaration).order_by(RefusedDeclaration.id))
                .scalars())


def donor_count(db) -> int:
    return fresh(db).execute(select(func.count()).select_from(Donor)).scalar_one()


def test_a_refused_senior_declaration_screens_the_next_attempt_from_that_email(
        client, httpserver, db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    donors = donor_count(db)
    first = post_donation(client, email="exec@example.org", lab=str(lab["id"]), senior="y")
    assert "senior decision-makers at frontier AI labs" in first.get_data(as_text=True)
    [kept] = refusals(db)
    assert (kept.email_key, kept.declared_lab_id, kept.declared_senior, kept.state,
            kept.rules) == ("exec@example.org", lab["id"], True, "waiting",
                            ["senior_decision_maker"])
    assert "donation.refused_before_payment" in audit_targets(db, "refused_declaration", kept.id)
    # The same address, typed differently, with nothing ticked: screened with the refused
    # declaration too, so refused again before any payment.
    second = post_donation(client, email="Exec@Example.ORG", lab="", employer="")
    assert "senior decision-makers at frontier AI labs" in second.get_data(as_text=True)
    assert httpserver.log == []
    assert fresh(db).execute(select(func.count()).select_from(OnlineDonation)).scalar_one() == 0
    assert donor_count(db) == donors  # and no record was made for either attempt
    # The same claim repeated is kept once (a visitor cannot grow the table by retrying it).
    post_donation(client, email="exec@example.org", lab=str(lab["id"]), senior="y")
    assert [r.id for r in refusals(db)] == [kept.id]
    # Another address is not touched by it.
    assert start_donation(client, httpserver, db, email="other@example.org").preview_outcome \
        == "accept"


def test_a_stranger_typing_a_donors_email_cannot_change_or_block_that_donor(
        client, httpserver, db, api, web_as):
    lab, victim, earlier = victim_with_a_gift_today(api)
    refused = post_donation(client, email=VICTIM, name="Anyone", lab=str(lab["id"]), senior="y")
    assert "senior decision-makers at frontier AI labs" in refused.get_data(as_text=True)
    [kept] = refusals(db)
    # The record is untouched and the donor's gifts by other channels are not held.
    assert affiliations(db, victim["id"]) == []
    assert fresh(db).get(Gift, earlier["id"]).status == "accepted"
    assert gift(api, victim["id"], "50.00", date.today())["status"] == "accepted"
    # The real donor gives online without ticking anything: not refused (the refused
    # declaration is a stranger's claim as much as theirs), but held for a reviewer.
    donation = start_donation(client, httpserver, db, email=VICTIM, name="Grace Hopper")
    assert (donation.donor_id, donation.preview_outcome) == (victim["id"], "hold")
    expect_settlement(httpserver, "pi_v", donation.amount_minor)
    ok(post_event(client, session_completed(donation, "pi_v")))
    held = fresh(db).execute(select(Gift).where(Gift.stripe_payment_intent_id == "pi_v")) \
        .scalar_one()
    assert held.status == "held"
    note = fresh(db).execute(select(Decision.note).where(Decision.gift_id == held.id)
                             .order_by(Decision.id.desc()).limit(1)).scalar_one()
    assert f"senior decision-maker at Frontier Lab (refused declaration #{kept.id}" in note
    assert "the donor's record is unchanged" in note
    assert affiliations(db, victim["id"]) == []

    # The reviewer sees it on the donor's page and dismisses it there.
    reviewer = web_as("reviewer")
    page = f"/staff/donors/{victim['id']}"
    html = reviewer.get(page).get_data(as_text=True)
    assert 'id="refused-declarations"' in html and "senior decision-maker at Frontier Lab" in html
    action = f"/staff/donors/{victim['id']}/refused-declarations/{kept.id}/dismiss"
    assert submit(reviewer, page, {"reason": "Grace confirmed by phone"},
                  action=action).status_code == 302
    [kept] = refusals(db)
    assert (kept.state, kept.dismissed_reason) == ("dismissed", "Grace confirmed by phone")
    assert "donation.refused_declaration_dismissed" in audit_targets(
        db, "refused_declaration", kept.id)
    assert "dismissed by" in reviewer.get(page).get_data(as_text=True)
    # Dismissed: the next online gift from the address is screened on the record alone.
    assert start_donation(client, httpserver, db, email=VICTIM).preview_outcome == "accept"
    # A viewer cannot dismiss (the page offers no form; a replayed POST is refused).
    viewer = web_as("viewer")
    assert "Dismiss" not in viewer.get(page).get_data(as_text=True)


def test_a_refused_declaration_of_another_donor_cannot_be_dismissed_from_this_page(
        client, httpserver, db, api, web_as):
    lab, victim, _ = victim_with_a_gift_today(api)
    other = person(api, "Other Person", email="other@example.org")
    post_donation(client, email=VICTIM, lab=str(lab["id"]), senior="y")
    [kept] = refusals(db)
    reviewer = web_as("reviewer")
    response = post_refused(reviewer, f"/staff/donors/{other['id']}",
                            f"/staff/donors/{other['id']}/refused-declarations/{kept.id}/dismiss",
                            {"reason": "not them"})
    assert response.status_code == 404
    assert refusals(db)[0].state == "waiting"


# --- no donor record before the payment (c) ----------------------------------------------------

def test_a_donor_advised_fund_gift_makes_the_advisor_and_the_sponsor_at_the_payment(
        client, httpserver, db, api):
    donation = start_donation(client, httpserver, db, daf="y", daf_sponsor="Good Fund",
                              daf_advisor="Ada Lovelace", email="ada@example.org")
    assert donor_count(db) == 0
    paid = pay(client, httpserver, db, donation)
    donation = fresh(db).get(OnlineDonation, donation.id)
    sponsor = fresh(db).get(Donor, donation.payer_donor_id)
    advisor = fresh(db).get(Donor, donation.donor_id)
    assert (sponsor.type, sponsor.category, sponsor.name) == ("organization", "daf_sponsor",
                                                              "Good Fund")
    assert (advisor.type, advisor.name, advisor.email) == ("person", "Ada Lovelace",
                                                           "ada@example.org")
    assert paid.donor_id == sponsor.id and paid.status == "accepted"
    attributed = fresh(db).execute(select(Attribution.donor_id).where(
        Attribution.gift_id == paid.id)).scalars().all()
    assert attributed == [advisor.id]
    # A second gift through the same fund finds both records again.
    again = start_donation(client, httpserver, db, daf="y", daf_sponsor="good fund",
                           daf_advisor="Ada Lovelace", email="ADA@example.org")
    assert (again.donor_id, again.payer_donor_id) == (advisor.id, sponsor.id)
    assert donor_count(db) == 2
    # Who the donation is for changed at the payment, sealed by the chain as it now stands.
    verified = api.get("/audit/verify")
    assert verified.status_code == 200 and verified.get_json()["ok"] is True, verified.get_json()


def test_an_email_recorded_between_the_form_and_the_payment_is_that_donors_and_the_declaration_a_claim(
        client, httpserver, db, api):
    """The form found no donor; by the payment one has the address: the payment goes to that
    record and the declaration is screened as a claim against it (held), not written."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    donation = start_donation(client, httpserver, db, email="late@example.org",
                              lab=str(lab["id"]))
    assert donation.donor_id is None
    recorded = person(api, "Late Comer", email="late@example.org")
    held = pay(client, httpserver, db, donation)
    donation = fresh(db).get(OnlineDonation, donation.id)
    assert (donation.donor_id, donation.donor_created, donation.declaration_state) == (
        recorded["id"], False, "to_review")
    assert held.status == "held" and affiliations(db, recorded["id"]) == []
