"""What the public types on the donate form is a declaration, not a fact (issue 11 part B).

Through the real donate page (its own form and CSRF token) and signed Stripe webhooks: a
declaration never edits an existing donor's record; it screens as if true, holds a paid gift
whose declaration differs from the record (rule declaration_differs) until a reviewer
applies or dismisses it, and becomes the record of a donor the donation itself created.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from models import Affiliation, AuditEntry, Decision, Donor, Gift, OnlineDonation
from tests.builders import gift, organization, person
from tests.stripe.stripe_stubs import (
    expect_settlement,
    post_donation,
    post_event,
    session_completed,
    start_donation,
)
from tests.webtools import make_user, post_refused, sign_in, submit

VICTIM = "grace@example.org"


def fresh(db):
    db.rollback()
    return db


def affiliations(db, donor_id: int) -> list[Affiliation]:
    return list(fresh(db).execute(select(Affiliation).where(Affiliation.donor_id == donor_id))
                .scalars())


def decisions_of(db, donor_id: int) -> list[tuple[int, str, str]]:
    return list(fresh(db).execute(
        select(Decision.id, Decision.outcome, Gift.status).join(Gift, Gift.id == Decision.gift_id)
        .where(Gift.donor_id == donor_id).order_by(Decision.id)).all())


def audit_targets(db, target_type: str, target_id: int) -> list[str]:
    return list(fresh(db).execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == target_type, AuditEntry.entity_id == target_id)
        .order_by(AuditEntry.id)).scalars())


def pay(client, httpserver, db, donation: OnlineDonation, pi: str = "pi_1") -> Gift:
    expect_settlement(httpserver, pi, donation.amount_minor)
    response = post_event(client, session_completed(donation, pi))
    assert response.status_code == 200, response.get_data(as_text=True)
    return fresh(db).execute(select(Gift).where(Gift.stripe_payment_intent_id == pi)).scalar_one()


def victim_with_a_gift_today(api):
    """A known donor, no lab affiliation, whose gift today was accepted; other funding too."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    victim = person(api, "Grace Hopper", email=VICTIM)
    earlier = gift(api, victim["id"], "100.00", date.today())
    assert earlier["status"] == "accepted"
    return lab, victim, earlier


def test_a_senior_role_typed_with_a_known_email_changes_nothing_about_that_donor(
        client, httpserver, db, api):
    lab, victim, earlier = victim_with_a_gift_today(api)
    before = decisions_of(db, victim["id"])
    response = post_donation(client, email=VICTIM, name="Anyone", lab=str(lab["id"]), senior="y")
    # Screened as if true: a declared senior role is refused before any payment...
    assert "senior decision-makers at frontier AI labs" in response.get_data(as_text=True)
    assert httpserver.log == []
    # ...but the donor's record, past decisions and ability to give are untouched.
    assert affiliations(db, victim["id"]) == []
    assert decisions_of(db, victim["id"]) == before
    assert "affiliation.added" not in audit_targets(db, "donor", victim["id"])
    assert fresh(db).get(Gift, earlier["id"]).status == "accepted"
    assert gift(api, victim["id"], "50.00", date.today())["status"] == "accepted"


def test_a_paid_gift_whose_declaration_differs_from_the_record_is_held(client, httpserver, db,
                                                                        api):
    lab, victim, earlier = victim_with_a_gift_today(api)
    before = decisions_of(db, victim["id"])
    donation = start_donation(client, httpserver, db, email=VICTIM, lab=str(lab["id"]))
    assert (donation.donor_id, donation.donor_created, donation.declaration_state) == (
        victim["id"], False, "declared")
    held = pay(client, httpserver, db, donation)
    assert held.status == "held"
    decision = fresh(db).execute(select(Decision).where(Decision.gift_id == held.id)).scalar_one()
    [reason] = [r for r in decision.reasons if r["fired"]]
    assert (reason["rule"], reason["outcome"]) == ("declaration_differs", "hold")
    assert "Grace Hopper (employee at Frontier Lab)" in reason["message"]
    donation = fresh(db).get(OnlineDonation, donation.id)
    assert (donation.declaration_state, donation.declaration_gift_id) == ("to_review", held.id)
    assert "donation.declaration_to_review" in audit_targets(db, "online_donation", donation.id)
    # Nothing was written to the donor: same affiliations, same decisions on earlier gifts.
    assert affiliations(db, victim["id"]) == []
    assert [d for d in decisions_of(db, victim["id"]) if d[0] <= before[-1][0]] == before
    assert fresh(db).get(Gift, earlier["id"]).status == "accepted"


def test_a_new_donor_gets_the_declared_role_when_the_payment_arrives_not_before(
        client, httpserver, db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    donors_before = donor_count(db)
    donation = start_donation(client, httpserver, db, email="new@example.org",
                              lab=str(lab["id"]))
    # Nothing before the money arrives: no record, so no affiliation either.
    assert (donation.donor_id, donation.payer_donor_id, donation.donor_created,
            donation.declaration_state) == (None, None, False, "declared")
    assert donor_count(db) == donors_before
    paid = pay(client, httpserver, db, donation)
    assert paid.status == "accepted" and paid.lab_minor == paid.amount_minor
    donation = fresh(db).get(OnlineDonation, donation.id)
    assert donation.donor_created and donation.donor_id == donation.payer_donor_id == paid.donor_id
    donor = fresh(db).get(Donor, donation.donor_id)
    assert (donor.name, donor.email) == ("Ada Lovelace", "new@example.org")
    [aff] = affiliations(db, donation.donor_id)
    assert (aff.organization_id, aff.senior_decision_maker, aff.start_date, aff.title) == (
        lab["id"], False, date.today(), "Declared on the donation form")
    assert donation.declaration_state == "recorded"
    assert audit_targets(db, "donor", donor.id)[0] == "donor.created"


def donor_count(db) -> int:
    return fresh(db).execute(select(func.count()).select_from(Donor)).scalar_one()


def test_a_donation_never_paid_leaves_no_donor_record(client, httpserver, db, api):
    """Anonymous visitors cannot fill the donor table: the form's name and e-mail stay on
    the pending donation until a payment arrives."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    before = donor_count(db)
    donation = start_donation(client, httpserver, db, email="never@example.org",
                              lab=str(lab["id"]))
    assert (donation.donor_id, donation.donor_name, donation.donor_email) == (
        None, "Ada Lovelace", "never@example.org")
    assert donor_count(db) == before
    assert fresh(db).execute(select(func.count()).select_from(Affiliation)).scalar_one() == 0
    assert fresh(db).execute(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "donor.created")).scalar_one() == before


def _held_for_declaration(client, httpserver, db, api, **fields):
    lab, victim, _ = victim_with_a_gift_today(api)
    donation = start_donation(client, httpserver, db, email=VICTIM, lab=str(lab["id"]), **fields)
    return lab, victim, donation, pay(client, httpserver, db, donation)


def test_the_reviewer_sees_the_hold_and_applies_the_declaration(client, httpserver, db, api,
                                                                web_as):
    lab, victim, donation, held = _held_for_declaration(client, httpserver, db, api)
    reviewer = web_as("reviewer")
    queue = reviewer.get("/staff/review/").get_data(as_text=True)
    assert f"/staff/review/gifts/{held.id}/decide" in queue
    assert "Declared on the donation form but not on the donor&#39;s record" in queue
    page = f"/staff/review/gifts/{held.id}/decide"
    assert "employee\n  at Frontier Lab" in reviewer.get(page).get_data(as_text=True)
    response = submit(reviewer, page, {"answer": "apply", "reason": "Confirmed by e-mail"},
                      action=f"/staff/review/gifts/{held.id}/declaration")
    assert response.status_code == 302
    [aff] = affiliations(db, victim["id"])
    assert (aff.organization_id, aff.senior_decision_maker, aff.start_date) == (
        lab["id"], False, date.today())
    assert fresh(db).get(OnlineDonation, donation.id).declaration_state == "applied"
    assert "donation.declaration_applied" in audit_targets(db, "online_donation", donation.id)
    assert "affiliation.added" in audit_targets(db, "donor", victim["id"])
    # Answered: the page no longer offers it; the gift itself is still to be decided.
    html = reviewer.get(page).get_data(as_text=True)
    assert "A declaration that differs" not in html and "Your decision" in html


def test_the_reviewer_dismisses_the_declaration_and_the_record_stays(client, httpserver, db,
                                                                    api, web_as):
    _, victim, donation, held = _held_for_declaration(client, httpserver, db, api)
    reviewer = web_as("reviewer")
    page = f"/staff/review/gifts/{held.id}/decide"
    action = f"/staff/review/gifts/{held.id}/declaration"
    refused = submit(reviewer, page, {"answer": "dismiss", "reason": ""}, action=action)
    assert refused.status_code == 422
    assert fresh(db).get(OnlineDonation, donation.id).declaration_state == "to_review"
    response = submit(reviewer, page, {"answer": "dismiss", "reason": "Not the same person"},
                      action=action)
    assert response.status_code == 302
    assert affiliations(db, victim["id"]) == []
    assert fresh(db).get(OnlineDonation, donation.id).declaration_state == "dismissed"
    entries = audit_targets(db, "online_donation", donation.id)
    assert "donation.declaration_dismissed" in entries
    # A second answer is refused: it was answered once.
    # The page no longer offers the form: a replayed POST (with the session's token) is refused.
    again = post_refused(reviewer, page, action, {"answer": "apply", "reason": "Changed my mind"})
    assert again.status_code == 409
    assert affiliations(db, victim["id"]) == []


def test_the_gift_cannot_be_accepted_until_its_declaration_is_answered(client, httpserver, db,
                                                                        api, api_as):
    """Accepting judges the gift on the record alone, so the declared role would count for
    nothing: the reviewer answers the declaration first (found by the independent review)."""
    _, victim, donation, held = _held_for_declaration(client, httpserver, db, api)
    reviewer = api_as("reviewer")
    refused = reviewer.post(f"/gifts/{held.id}/review",
                            {"outcome": "accept", "reason": "looks fine to me"})
    assert refused.status_code == 409, refused.get_json()
    assert "declaration" in refused.get_json()["error"]
    assert fresh(db).get(Gift, held.id).status == "held"
    # A reject needs no answer first; here the reviewer dismisses, then accepts.
    page = f"/staff/review/gifts/{held.id}/decide"
    make_user(client.application, "answers@example.org", "reviewer")
    web = client.application.test_client()
    assert sign_in(web, "answers@example.org").status_code == 302
    assert submit(web, page, {"answer": "dismiss", "reason": "Not the same person"},
                  action=f"/staff/review/gifts/{held.id}/declaration").status_code == 302
    accepted = reviewer.post(f"/gifts/{held.id}/review",
                             {"outcome": "accept", "reason": "declaration dismissed"})
    assert accepted.status_code == 201, accepted.get_json()
    assert fresh(db).get(Gift, held.id).status == "accepted"
    assert affiliations(db, victim["id"]) == []
