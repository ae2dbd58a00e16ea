"""An online donation's declaration is what the policy screens when the money arrives: the
chain seals it when the donate form stores it and at each change of its state
(app.ledger.row_hashes). Through the real donate page and signed webhooks; an edit made
behind the app's back is named by verification."""

from __future__ import annotations

from datetime import date

from tests.builders import gift, organization, person
from tests.stripe.stripe_stubs import start_donation
from tests.stripe.test_stripe_declarations import _held_for_declaration, pay
from tests.tampering import tamper_apart
from tests.webtools import submit


def _verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def _findings(report: dict) -> set[tuple[str, int, str]]:
    return {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]}


def test_a_declaration_dropped_before_the_payment_is_named(client, httpserver, db, api,
                                                          database_url):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    donation = start_donation(client, httpserver, db, email="new@example.org",
                              lab=str(lab["id"]))
    assert _verify(api)["ok"] is True
    # The declared lab role makes the payment lab money (cap rule): drop it.
    tamper_apart(database_url, "UPDATE online_donation SET declared_lab_id = NULL, "
                               f"declaration_state = NULL WHERE id = {donation.id}")
    assert _findings(_verify(api)) == {("online_donation", donation.id, "content differs")}


def test_a_new_donors_declaration_recorded_at_the_payment_verifies(client, httpserver, db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    donation = start_donation(client, httpserver, db, email="new@example.org",
                              lab=str(lab["id"]))
    pay(client, httpserver, db, donation)
    report = _verify(api)
    assert report["ok"] is True, (report["row_findings"], report["derived_findings"])


def test_a_declaration_held_then_answered_verifies(client, httpserver, db, api, web_as,
                                                   database_url):
    _lab, _victim, donation, held = _held_for_declaration(client, httpserver, db, api)
    assert _verify(api)["ok"] is True
    page = f"/staff/review/gifts/{held.id}/decide"
    assert submit(web_as("reviewer"), page, {"answer": "dismiss", "reason": "Not them"},
                  action=f"/staff/review/gifts/{held.id}/declaration").status_code == 302
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]
    # Answered "dismissed"; an insider turns it back so that the next payment is held again
    # or, the other way, marks a pending one answered.
    tamper_apart(database_url, "UPDATE online_donation SET declaration_state = 'applied' "
                               f"WHERE id = {donation.id}")
    assert _findings(_verify(api)) == {("online_donation", donation.id, "content differs")}
