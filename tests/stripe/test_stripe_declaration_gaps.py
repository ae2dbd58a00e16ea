"""Gaps in how the donate form's declarations are kept and answered (issue 11 part B).

Through the real donate page (its own form and CSRF token), signed Stripe webhooks and the
reviewer's own pages: every held gift of a donor whose declaration waits offers the one
answer, and the answer counts for all of them.
"""

from __future__ import annotations

from sqlalchemy import select

from models import Decision, Gift, OnlineDonation
from tests.stripe.stripe_stubs import (
    expect_invoice_payment,
    expect_settlement,
    invoice,
    post_event,
    start_donation,
    subscription_started,
)
from tests.stripe.test_stripe_declarations import (
    VICTIM,
    affiliations,
    fresh,
    victim_with_a_gift_today,
)
from tests.webtools import submit

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
