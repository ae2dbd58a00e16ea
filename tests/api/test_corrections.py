"""Corrections without editing history, through the JSON API: a mistaken gift is voided
(reversed on its own date, so it counts in no window) or corrected (voided, and the right
one recorded through the one door); the reason stays on the correction row, out of the
audit entries; later lab-employee gifts whose windows the voided money left are screened
again and held if the policy would no longer accept them."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, Gift, GiftCorrection
from tests.builders import World, gift, ok, summary

REASON = "Typed 5000 for 50: the donor's cheque says fifty dollars."


def test_voiding_takes_the_gift_out_of_every_window_and_keeps_it_in_history(api_as, db):
    finance, admin = api_as("finance"), api_as("admin")
    w = World(admin)
    made = gift(admin, w.donor["id"], "5000.00", "2026-03-01")
    assert ok(finance.get(f"/donors/{w.donor['id']}/giving"), 200)["lifetime"] == "5000.00"
    body = ok(finance.post(f"/gifts/{made['id']}/void", {"reason": REASON}), 200)
    assert body["correction"]["kind"] == "void" and body["correction"]["reason"] == REASON
    assert body["gift"]["status"] == "accepted" and body["gift"]["refund_status"] == "full"
    assert ok(finance.get(f"/donors/{w.donor['id']}/giving"), 200)["lifetime"] == "0.00"
    # Not even in the window ending on its own date: it never counted.
    assert summary(finance, "2026-03-01")["total_funding"] == "0.00"
    # The gift and its decision stay; the reversal is a refund dated on the gift's date.
    shown = ok(finance.get(f"/gifts/{made['id']}"), 200)
    assert [r["refunded_on"] for r in shown["refunds"]] == ["2026-03-01"]
    # A gift says it was voided (a full refund alone could be real money going back).
    assert shown["correction"] == body["correction"]
    assert made["correction"] is None
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "gift.voided")).scalar_one()
    assert REASON not in str(entry.data) and entry.data["correction_id"] == \
        body["correction"]["id"]
    again = finance.post(f"/gifts/{made['id']}/void", {"reason": REASON})
    assert again.status_code == 409
    assert ok(finance.get("/audit/verify"), 200)["ok"] is True


def test_a_correction_records_the_right_gift_through_the_door(api_as, db):
    finance, admin = api_as("finance"), api_as("admin")
    w = World(admin)
    made = gift(admin, w.donor["id"], "5000.00", "2026-03-01", external_ref="cheque-17")
    body = ok(finance.post(f"/gifts/{made['id']}/correct",
                           {"reason": REASON, "amount": "50.00", "received_on": "2026-03-02"}))
    new = body["replacement"]
    assert (new["amount"], new["received_on"], new["status"], new["donor_id"]) == (
        "50.00", "2026-03-02", "accepted", w.donor["id"])
    assert new["decision"]["kind"] == "screening"
    assert body["correction"]["replacement_gift_id"] == new["id"]
    assert new["correction"] is None
    assert ok(finance.get(f"/gifts/{made['id']}"), 200)["correction"]["kind"] == "correction"
    stored = db.get(GiftCorrection, body["correction"]["id"])
    assert (stored.kind, stored.reason, stored.replacement_gift_id) == (
        "correction", REASON, new["id"])
    actions = [a for (a,) in db.execute(select(AuditEntry.action).where(
        AuditEntry.action.in_(("gift.voided", "gift.recorded", "gift.corrected")))
        .order_by(AuditEntry.id))]
    assert actions[-3:] == ["gift.voided", "gift.recorded", "gift.corrected"]
    assert ok(finance.get("/audit/verify"), 200)["ok"] is True


def test_a_correction_to_a_lab_employee_is_screened_as_any_new_gift(api_as):
    finance, admin = api_as("finance"), api_as("admin")
    w = World(admin)
    made = gift(admin, w.donor["id"], "100.00", "2026-03-01")
    body = ok(finance.post(f"/gifts/{made['id']}/correct",
                           {"reason": "Wrong donor: it was Lee's card", "donor_id":
                            w.employee["id"]}))
    # Lee works at a lab, and with the mistaken gift gone the lab share is 100%: refused.
    assert body["replacement"]["status"] == "rejected"
    assert body["replacement"]["decision"]["reasons"][0]["rule"] == "lab_employee_cap"


def test_voiding_rescreens_later_lab_gifts_whose_windows_lose_the_money(api_as):
    finance, admin = api_as("finance"), api_as("admin")
    w = World(admin)
    big = gift(admin, w.donor["id"], "1000.00", "2026-01-10")
    lab = gift(admin, w.employee["id"], "400.00", "2026-02-01")
    assert lab["status"] == "accepted"  # 400 / 1400: below half
    body = ok(finance.post(f"/gifts/{big['id']}/void", {"reason": "Never received: bounced"}),
              200)
    assert body["rescreened_gift_ids"] == [lab["id"]]
    held = ok(finance.get(f"/gifts/{lab['id']}"), 200)
    assert held["status"] == "held" and held["decision"]["kind"] == "rescreen"
    assert f"Gift {big['id']}" in held["decision"]["note"]


def test_a_later_lab_gift_still_within_the_cap_is_left_alone(api_as):
    finance, admin = api_as("finance"), api_as("admin")
    w = World(admin)
    gift(admin, w.donor["id"], "1000.00", "2026-01-10")
    typo = gift(admin, w.donor["id"], "10.00", "2026-01-11")
    lab = gift(admin, w.employee["id"], "400.00", "2026-02-01")
    body = ok(finance.post(f"/gifts/{typo['id']}/void", {"reason": "Recorded twice"}), 200)
    assert body["rescreened_gift_ids"] == []
    still = ok(finance.get(f"/gifts/{lab['id']}"), 200)
    assert still["status"] == "accepted" and len(still["decisions"]) == 1


def test_who_may_correct_and_what_cannot_be_voided(api_as):
    admin, fundraiser, finance = api_as("admin"), api_as("fundraiser"), api_as("finance")
    w = World(admin)
    made = gift(admin, w.donor["id"], "20.00", "2026-03-01")
    assert fundraiser.post(f"/gifts/{made['id']}/void", {"reason": REASON}).status_code == 403
    assert finance.post(f"/gifts/{made['id']}/void", {"reason": ""}).status_code == 422
    assert finance.post(f"/gifts/{made['id']}/correct", {"reason": REASON}).status_code == 422
    ok(finance.post(f"/gifts/{made['id']}/refund", {"amount": "5.00"}))
    refused = finance.post(f"/gifts/{made['id']}/void", {"reason": REASON})
    assert refused.status_code == 409 and "refunds" in str(refused.get_json())
    held = gift(admin, w.lab_donor["id"], "20.00", "2026-03-01")
    assert held["status"] == "held"
    assert finance.post(f"/gifts/{held['id']}/void", {"reason": REASON}).status_code == 409
    assert finance.post("/gifts/999999/void", {"reason": REASON}).status_code == 404


def test_a_correction_keeps_the_gifts_campaign_appeal_and_fund(api_as):
    admin, finance = api_as("admin"), api_as("finance")
    w = World(admin)
    campaign = ok(admin.post("/campaigns", {"code": "spring", "name": "Spring",
                                            "starts_on": "2026-01-01"}))
    fund = ok(admin.post("/funds", {"code": "evals", "name": "Evaluations fund",
                                    "restricted": True, "purpose": "Open evaluations"}))
    made = gift(admin, w.donor["id"], "300.00", "2026-03-01", purpose="restricted",
                campaign_id=campaign["id"], fund_id=fund["id"])
    corrected = ok(finance.post(f"/gifts/{made['id']}/correct",
                                {"reason": REASON, "amount": "30.00"}))
    replacement = ok(admin.get(f"/gifts/{corrected['replacement']['id']}"), 200)
    assert (replacement["campaign_id"], replacement["fund_id"], replacement["purpose"]) == (
        campaign["id"], fund["id"], "restricted")
    assert replacement["amount"] == "30.00"


def test_a_rejected_gift_may_be_voided_but_not_corrected_into_a_new_screening(api_as):
    admin, finance = api_as("admin"), api_as("finance")
    w = World(admin)
    rejected = gift(admin, w.lab_donor["id"], "20.00", "2026-03-01",
                    purpose="evaluation_services")
    assert rejected["status"] == "rejected"
    refused = finance.post(f"/gifts/{rejected['id']}/correct",
                           {"reason": REASON, "received_on": "2026-03-02"})
    assert refused.status_code == 409 and "override" in str(refused.get_json())
    ok(finance.post(f"/gifts/{rejected['id']}/void", {"reason": REASON}), 200)


def test_a_stripe_payment_is_refunded_in_stripe_not_voided_here(api_as, db):
    admin, finance = api_as("admin"), api_as("finance")
    w = World(admin)
    made = gift(admin, w.donor["id"], "20.00", "2026-03-01")
    row = db.get(Gift, made["id"])
    row.stripe_payment_intent_id = "pi_test_123"  # as the webhook records it
    db.commit()
    for action in ("void", "correct"):
        refused = finance.post(f"/gifts/{made['id']}/{action}",
                               {"reason": REASON, "amount": "10.00"} if action == "correct"
                               else {"reason": REASON})
        assert refused.status_code == 409 and "Stripe" in str(refused.get_json()), action
