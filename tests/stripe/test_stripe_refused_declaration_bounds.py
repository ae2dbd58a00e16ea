"""Declarations refused before payment (refused_declaration), issue 11 review: they follow a
person through a merge of donor records, anonymous visitors cannot grow them without bound,
and they only ever hold an existing donor's gifts, never refuse them.

Through the real donate page (its own form and CSRF token), signed Stripe webhooks, the API
and the reviewer's pages; SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from models import AuditEntry, Decision, Gift, RefusedDeclaration, utcnow
from tests.builders import gift, ok, organization, person
from tests.stripe.stripe_stubs import (
    expect_settlement,
    post_donation,
    post_event,
    session_completed,
    start_donation,
)
from tests.stripe.test_stripe_declarations import (
    VICTIM,
    affiliations,
    fresh,
    pay,
    victim_with_a_gift_today,
)
from tests.webtools import submit

REFUSED_TEXT = "senior decision-makers at frontier AI labs"
OTHER_ADDRESS = "g.hopper@example.net"


def refusals(db) -> list[RefusedDeclaration]:
    return list(fresh(db).execute(select(RefusedDeclaration).order_by(RefusedDeclaration.id))
                .scalars())


def last_note(db, gift_id: int) -> str:
    return fresh(db).execute(select(Decision.note).where(Decision.gift_id == gift_id)
                             .order_by(Decision.id.desc()).limit(1)).scalar_one()


def audit_data(db, action: str) -> list[dict]:
    return list(fresh(db).execute(select(AuditEntry.data).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.id)).scalars())


def test_a_merged_records_refused_declarations_show_on_the_survivor_and_only_hold(
        client, httpserver, db, api, api_as, web_as):
    lab, victim, earlier = victim_with_a_gift_today(api)
    duplicate = person(api, "G. Hopper", email=OTHER_ADDRESS)
    # Someone types the second address with a senior role: refused, kept by that address.
    refused = post_donation(client, email=OTHER_ADDRESS, lab=str(lab["id"]), senior="y")
    assert REFUSED_TEXT in refused.get_data(as_text=True)
    [kept] = refusals(db)
    ok(api_as("reviewer").post(f"/donors/{victim['id']}/merge",
                               {"duplicate_id": duplicate["id"]}), 200)
    [merged] = audit_data(db, "donor.merged")
    assert merged["refused_declaration_ids"] == [kept.id]

    # Shown on the survivor's page, where a reviewer can dismiss it.
    reviewer = web_as("reviewer")
    page = f"/staff/donors/{victim['id']}"
    html = reviewer.get(page).get_data(as_text=True)
    assert 'id="refused-declarations"' in html
    assert "senior decision-maker at Frontier Lab" in html

    # It never refuses the survivor's gifts and never touches the record: staff gifts are
    # accepted; online gifts under either address are held for a reviewer.
    assert gift(api, victim["id"], "60.00", date.today())["status"] == "accepted"
    assert fresh(db).get(Gift, earlier["id"]).status == "accepted"
    for address, pi in ((VICTIM, "pi_own"), (OTHER_ADDRESS, "pi_other_address")):
        donation = start_donation(client, httpserver, db, email=address, name="Grace Hopper")
        assert (donation.donor_id, donation.preview_outcome) == (victim["id"], "hold"), address
        expect_settlement(httpserver, pi, donation.amount_minor, charge=f"ch_{pi}")
        assert post_event(client, session_completed(donation, pi)).status_code == 200
        held = fresh(db).execute(select(Gift).where(Gift.stripe_payment_intent_id == pi)
                                 ).scalar_one()
        assert held.status == "held", address
        assert f"refused declaration #{kept.id}" in last_note(db, held.id)
    assert affiliations(db, victim["id"]) == []

    action = f"/staff/donors/{victim['id']}/refused-declarations/{kept.id}/dismiss"
    assert submit(reviewer, page, {"reason": "Grace confirmed by phone"},
                  action=action).status_code == 302
    assert refusals(db)[0].state == "dismissed"
    assert start_donation(client, httpserver, db, email=VICTIM).preview_outcome == "accept"


def test_a_refusal_typed_before_the_donor_was_recorded_only_holds_them(
        client, httpserver, db, api):
    """The address had no donor when the form refused it; a donor recorded with it later is
    a real donor: staff gifts are accepted and online gifts held, never refused."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    post_donation(client, email="later@example.org", lab=str(lab["id"]), senior="y")
    [kept] = refusals(db)
    later = person(api, "Lee Later", email="later@example.org")
    assert gift(api, later["id"], "100.00", date.today())["status"] == "accepted"
    donation = start_donation(client, httpserver, db, email="later@example.org")
    assert (donation.donor_id, donation.preview_outcome) == (later["id"], "hold")
    held = pay(client, httpserver, db, donation, "pi_later")
    assert held.status == "held"
    assert f"refused declaration #{kept.id}" in last_note(db, held.id)
    assert affiliations(db, later["id"]) == []


def test_a_repeated_claim_is_one_row_and_the_database_refuses_a_second(client, db, api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    for email, employer in (("exec@example.org", ""), ("EXEC@Example.org", "Frontier Lab"),
                            ("exec@example.org", "frontier lab, inc.")):
        response = post_donation(client, email=email, lab=str(lab["id"]), senior="y",
                                 employer=employer)
        assert REFUSED_TEXT in response.get_data(as_text=True)
    [kept] = refusals(db)
    # Another claim from the same address is its own row (at most two per covered lab).
    post_donation(client, email="exec@example.org", lab=str(lab["id"]), senior=None)
    assert [(r.declared_lab_id, r.declared_senior) for r in refusals(db)] == [
        (lab["id"], True), (lab["id"], False)]
    # The database itself keeps one waiting row per e-mail and claim.
    db.add(RefusedDeclaration(email_key=kept.email_key, declared_lab_id=lab["id"],
                              declared_senior=True, rules=["senior_decision_maker"],
                              policy_version=kept.policy_version))
    with pytest.raises(IntegrityError):
        db.flush()
    db.rollback()


def test_refusals_age_out_after_a_year_and_a_flood_is_capped(client, httpserver, db, api,
                                                             monkeypatch):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Plain Donor")["id"], "10000.00", date.today())
    post_donation(client, email="old@example.org", lab=str(lab["id"]), senior="y")
    [old] = refusals(db)
    old_id = old.id
    db.execute(update(RefusedDeclaration).values(created_at=utcnow() - timedelta(days=366)))
    db.commit()
    # A year on it screens nothing: the address gives without the old claim held against it.
    assert start_donation(client, httpserver, db, email="old@example.org").preview_outcome \
        == "accept"
    # The next refusal kept deletes it (audited by count, no address).
    post_donation(client, email="new@example.org", lab=str(lab["id"]), senior="y")
    assert [r.email_key for r in refusals(db)] == ["new@example.org"]
    [aged] = audit_data(db, "donation.refused_declarations_aged_out")
    assert (aged["count"], aged["first_id"], aged["last_id"]) == (1, old_id, old_id)
    assert "old@example.org" not in str(aged)

    # At the most waiting rows, a refusal still refuses its gift but is not kept.
    monkeypatch.setattr("app.ledger.declarations.MAX_WAITING_REFUSALS", 2)
    post_donation(client, email="second@example.org", lab=str(lab["id"]), senior="y")
    flood = post_donation(client, email="third@example.org", lab=str(lab["id"]), senior="y")
    assert REFUSED_TEXT in flood.get_data(as_text=True)
    assert [r.email_key for r in refusals(db)] == ["new@example.org", "second@example.org"]
    last = audit_data(db, "donation.refused_before_payment")[-1]
    assert last["declaration_not_kept"] == "the most refused declarations are waiting already"
    assert httpserver.log[-1][0].method == "POST"  # only the one accepted donation's checkout
