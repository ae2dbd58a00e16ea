"""Pledges with instalment schedules paid by gifts, and in-kind arrangements."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry
from tests.api.helpers import errors_of, snapshot
from tests.builders import World, gift, ok, summary

PAST = ("2020-01-01", "2020-06-01")  # due dates before today, whatever today is
FUTURE = ("2099-01-01", "2099-06-01")


@pytest.fixture
def w(api):
    return World(api)


def _pledge(api, donor_id, amount, instalments=(), currency="USD", pledged_on="2019-12-01",
            expect=201):
    body = {"donor_id": donor_id, "amount": amount, "currency": currency, "pledged_on": pledged_on,
            "description": "Three-year general support",
            "instalments": [{"due_on": d, "amount": a} for d, a in instalments]}
    return ok(api.post("/pledges", body), expect)


def _states(api, pledge_id):
    shown = api.get(f"/pledges/{pledge_id}").get_json()
    return [(i["due_on"], i["paid"], i["state"]) for i in shown["instalments"]]


def test_pledge_with_instalments_is_created(api, w):
    pledge = _pledge(api, w.donor["id"], "300.00",
                     [(FUTURE[1], "100.00"), (PAST[0], "100.00"), (FUTURE[0], "100.00")])
    assert pledge["id"] > 0
    assert (pledge["amount"], pledge["currency"], pledge["state"]) == ("300.00", "USD", "active")
    assert [(i["due_on"], i["amount"], i["state"]) for i in pledge["instalments"]] == [
        (PAST[0], "100.00", "overdue"), (FUTURE[0], "100.00", "due"), (FUTURE[1], "100.00", "due")]
    assert api.get(f"/pledges/{pledge['id']}").get_json() == pledge


def test_pledge_without_instalments_is_one_instalment_on_the_pledge_date(api, w):
    pledge = _pledge(api, w.donor["id"], "5000", currency="JPY", pledged_on=FUTURE[0])
    assert [(i["due_on"], i["amount"], i["paid"], i["state"]) for i in pledge["instalments"]] == [
        (FUTURE[0], "5000", "0", "due")]


def test_instalments_not_adding_up_to_the_total_are_422(api, db, w):
    before = snapshot(db)
    body = {"donor_id": w.donor["id"], "amount": "300.00", "currency": "USD", "pledged_on": PAST[0],
            "instalments": [{"due_on": PAST[0], "amount": "100.00"},
                            {"due_on": PAST[1], "amount": "199.99"}]}
    assert errors_of(api.post("/pledges", body)) == {
        "instalments": ["instalments must add up to the pledged amount"]}
    assert snapshot(db) == before


def test_pledge_validation_names_the_field(api, db, w):
    before = snapshot(db)
    base = {"donor_id": w.donor["id"], "amount": "300.00", "currency": "USD", "pledged_on": PAST[0]}
    assert list(errors_of(api.post("/pledges", {**base, "amount": "300.001"}))) == ["amount"]
    assert list(errors_of(api.post("/pledges", {**base, "amount": 300}))) == ["amount"]
    assert list(errors_of(api.post("/pledges", {**base, "currency": "XYZ"}))) == ["currency"]
    assert list(errors_of(api.post("/pledges", {**base, "pledged_on": "2020-02-30"}))) == ["pledged_on"]
    assert list(errors_of(api.post("/pledges", {**base, "instalments": [
        {"due_on": PAST[0], "amount": "300.001"}]}))) == ["instalments.0.amount"]
    assert errors_of(api.post("/pledges", {**base, "donor_id": 987_654})) == {
        "donor_id": ["no such donor"]}
    assert snapshot(db) == before


def test_payments_apply_to_instalments_oldest_first(api, w):
    pledge = _pledge(api, w.donor["id"], "300.00",
                     [(PAST[0], "100.00"), (PAST[1], "100.00"), (FUTURE[0], "100.00")])
    paid = gift(api, w.donor["id"], "150.00", "2020-01-05", pledge_id=pledge["id"])
    assert (paid["status"], paid["pledge_id"]) == ("accepted", pledge["id"])
    assert _states(api, pledge["id"]) == [(PAST[0], "100.00", "paid"), (PAST[1], "50.00", "overdue"),
                                          (FUTURE[0], "0.00", "due")]
    gift(api, w.donor["id"], "100.00", "2020-06-01", pledge_id=pledge["id"])
    assert _states(api, pledge["id"]) == [(PAST[0], "100.00", "paid"), (PAST[1], "100.00", "paid"),
                                          (FUTURE[0], "50.00", "part_paid")]
    gift(api, w.donor["id"], "50.00", "2020-07-01", pledge_id=pledge["id"])
    assert [s for _, _, s in _states(api, pledge["id"])] == ["paid", "paid", "paid"]


def test_refunded_payment_no_longer_pays_its_instalment(api, w):
    pledge = _pledge(api, w.donor["id"], "200.00", [(PAST[0], "100.00"), (FUTURE[0], "100.00")])
    payment = gift(api, w.donor["id"], "200.00", "2020-01-01", pledge_id=pledge["id"])
    api.post(f"/gifts/{payment['id']}/refund", {"amount": "150.00", "refunded_on": "2020-01-10"})
    assert _states(api, pledge["id"]) == [(PAST[0], "50.00", "overdue"), (FUTURE[0], "0.00", "due")]


def test_held_or_rejected_payments_do_not_pay_a_pledge(api, w):
    pledge = _pledge(api, w.lab_donor["id"], "100.00", [(FUTURE[0], "100.00")])
    held = gift(api, w.lab_donor["id"], "100.00", "2026-03-01", pledge_id=pledge["id"])
    assert held["status"] == "held"
    assert _states(api, pledge["id"]) == [(FUTURE[0], "0.00", "due")]


def test_pledge_payments_are_funding(api, w):
    pledge = _pledge(api, w.donor["id"], "100.00", [(FUTURE[0], "100.00")])
    gift(api, w.donor["id"], "100.00", "2026-03-01", pledge_id=pledge["id"])
    assert summary(api, "2026-03-01")["total_funding"] == "100.00"


def test_pledge_payment_in_another_currency_is_422(api, db, w):
    pledge = _pledge(api, w.donor["id"], "100.00", [(FUTURE[0], "100.00")])
    before = snapshot(db)
    response = api.post("/gifts", {"donor_id": w.donor["id"], "amount": "90.00", "currency": "EUR",
                                   "fx_rate": "1.1", "received_on": "2026-03-01",
                                   "pledge_id": pledge["id"]})
    assert errors_of(response) == {"currency": ["pledge payments are in the pledge currency USD"]}
    assert snapshot(db) == before


def test_pledge_payment_by_another_donor_is_422(api, db, w):
    pledge = _pledge(api, w.donor["id"], "100.00")
    before = snapshot(db)
    response = api.post("/gifts", {"donor_id": w.employee["id"], "amount": "10.00", "currency": "USD",
                                   "received_on": "2026-03-01", "pledge_id": pledge["id"]})
    assert errors_of(response) == {"pledge_id": ["the pledge belongs to another donor"]}
    assert snapshot(db) == before


def test_unknown_pledge_is_404(api):
    assert api.get("/pledges/987654").status_code == 404


# --- in-kind arrangements -----------------------------------------------------------------

def test_in_kind_arrangement_is_recorded_and_listed(api, w):
    item = ok(api.post("/in-kind", {"organization_id": w.lab["id"],
                                    "description": "Pre-release API access to frontier models",
                                    "purpose": "evaluation", "start_date": "2026-01-01",
                                    "estimated_value": "120000.00", "currency": "usd"}))
    assert (item["organization_id"], item["purpose"], item["start_date"], item["end_date"]) == (
        w.lab["id"], "evaluation", "2026-01-01", None)
    assert (item["estimated_value"], item["currency"]) == ("120000.00", "USD")
    assert api.get("/in-kind").get_json()["items"] == [item]
    assert summary(api, "2026-03-01")["total_funding"] == "0.00"


def test_in_kind_arrangement_without_a_value_is_fine(api, w):
    item = ok(api.post("/in-kind", {"organization_id": w.lab["id"], "description": "Compute credits",
                                    "purpose": "research", "start_date": "2026-01-01",
                                    "end_date": "2026-12-31"}))
    assert (item["estimated_value"], item["currency"], item["end_date"]) == (None, None, "2026-12-31")


def test_in_kind_validation(api, db, w):
    before = snapshot(db)
    base = {"organization_id": w.lab["id"], "description": "Credits", "purpose": "research",
            "start_date": "2026-01-01"}
    assert list(errors_of(api.post("/in-kind", {**base, "organization_id": 987_654}))) == [
        "organization_id"]
    assert list(errors_of(api.post("/in-kind", {**base, "purpose": "marketing"}))) == ["purpose"]
    assert list(errors_of(api.post("/in-kind", {**base, "estimated_value": "10.00"}))) != []
    assert list(errors_of(api.post("/in-kind", {**base, "estimated_value": "10.001",
                                                "currency": "USD"}))) == ["estimated_value"]
    assert list(errors_of(api.post("/in-kind", {**base, "end_date": "2025-12-31"}))) != []
    assert snapshot(db) == before


# --- fulfilment and overpayment ---------------------------------------------------------------

def _pledge_state(api, pledge_id):
    shown = api.get(f"/pledges/{pledge_id}").get_json()
    return shown["state"], shown["paid"], shown["overpaid"]


def _audit_actions(db, pledge_id) -> list[str]:
    try:
        return list(db.execute(
            select(AuditEntry.action).where(AuditEntry.entity_type == "pledge",
                                            AuditEntry.entity_id == pledge_id)
            .order_by(AuditEntry.id)).scalars())
    finally:
        db.rollback()


def test_a_pledge_is_fulfilled_when_accepted_payments_reach_it_and_reopened_by_a_refund(api, db, w):
    pledge = _pledge(api, w.donor["id"], "200.00", [(PAST[0], "100.00"), (FUTURE[0], "100.00")])
    assert _pledge_state(api, pledge["id"]) == ("active", "0.00", "0.00")
    gift(api, w.donor["id"], "100.00", "2020-01-01", pledge_id=pledge["id"])
    assert _pledge_state(api, pledge["id"]) == ("active", "100.00", "0.00")
    second = gift(api, w.donor["id"], "100.00", "2020-02-01", pledge_id=pledge["id"])
    assert _pledge_state(api, pledge["id"]) == ("fulfilled", "200.00", "0.00")
    ok(api.post(f"/gifts/{second['id']}/refund", {"amount": "30.00", "refunded_on": "2020-03-01"}))
    assert _pledge_state(api, pledge["id"]) == ("active", "170.00", "0.00")
    gift(api, w.donor["id"], "30.00", "2020-04-01", pledge_id=pledge["id"])
    assert _pledge_state(api, pledge["id"]) == ("fulfilled", "200.00", "0.00")
    assert _audit_actions(db, pledge["id"]) == ["pledge.created", "pledge.fulfilled",
                                                "pledge.reopened", "pledge.fulfilled"]


def test_a_held_payment_does_not_fulfil_a_pledge_until_a_reviewer_accepts_it(api, w, api_as):
    pledge = _pledge(api, w.lab_donor["id"], "100.00", [(FUTURE[0], "100.00")])
    held = gift(api, w.lab_donor["id"], "100.00", "2026-03-01", pledge_id=pledge["id"])
    assert held["status"] == "held"
    assert _pledge_state(api, pledge["id"]) == ("active", "0.00", "0.00")
    ok(api_as("reviewer").post(f"/gifts/{held['id']}/review",
                               {"outcome": "accept", "reason": "Board approved the grant"}))
    assert _pledge_state(api, pledge["id"]) == ("fulfilled", "100.00", "0.00")


def test_an_overpayment_is_recorded_and_flagged_on_the_pledge(api, w):
    pledge = _pledge(api, w.donor["id"], "100.00", [(FUTURE[0], "100.00")])
    gift(api, w.donor["id"], "80.00", "2026-03-01", pledge_id=pledge["id"])
    extra = gift(api, w.donor["id"], "50.00", "2026-03-02", pledge_id=pledge["id"])
    assert extra["status"] == "accepted"  # the money arrived: recorded, never refused
    assert _pledge_state(api, pledge["id"]) == ("fulfilled", "130.00", "30.00")
    assert summary(api, "2026-03-02")["total_funding"] == "130.00"


# --- cancelling and rescheduling (issue 17) -------------------------------------------------

def _audit_actions(db, pledge_id) -> list[str]:
    return list(db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "pledge", AuditEntry.entity_id == pledge_id)
        .order_by(AuditEntry.id)).scalars())


def test_cancel_keeps_payments_and_stops_the_rest_being_due(api, db, w):
    pledge = _pledge(api, w.donor["id"], "300.00",
                     [(PAST[0], "100.00"), (PAST[1], "100.00"), (FUTURE[0], "100.00")])
    gift(api, w.donor["id"], "100.00", "2020-01-02", pledge_id=pledge["id"])
    cancelled = ok(api.post(f"/pledges/{pledge['id']}/cancel",
                            {"reason": "The donor's foundation closed."}), 200)
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancel_reason"] == "The donor's foundation closed."
    assert cancelled["cancelled_on"] is not None and cancelled["paid"] == "100.00"
    assert api.get(f"/pledges/{pledge['id']}").get_json() == cancelled
    assert _audit_actions(db, pledge["id"])[-1] == "pledge.cancelled"
    # The person's words stay on the pledge, out of the append-only trail.
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "pledge.cancelled")).scalar_one()
    assert "foundation" not in str(entry.data) and entry.data["outstanding"] == "200.00"
    # Once cancelled it is settled: no second cancel, no new schedule.
    again = api.post(f"/pledges/{pledge['id']}/cancel", {"reason": "again"})
    assert again.status_code == 409 and "cancelled" in again.get_json()["error"]
    moved = api.put(f"/pledges/{pledge['id']}/schedule",
                    {"instalments": [{"due_on": FUTURE[0], "amount": "300.00"}]})
    assert moved.status_code == 409
    assert api.get("/audit/verify").get_json()["ok"] is True


def test_cancel_needs_a_reason_and_the_pledges_role(api, api_as, db, w):
    pledge = _pledge(api, w.donor["id"], "300.00")
    viewer = api_as("viewer")
    before = snapshot(db)
    assert set(errors_of(api.post(f"/pledges/{pledge['id']}/cancel", {"reason": ""}))) == {"reason"}
    assert viewer.post(f"/pledges/{pledge['id']}/cancel",
                                 {"reason": "no longer"}).status_code == 403
    assert api.post("/pledges/999999/cancel", {"reason": "no such"}).status_code == 404
    assert snapshot(db) == before
    assert api.get(f"/pledges/{pledge['id']}").get_json()["state"] == "active"


def test_reschedule_replaces_the_schedule_and_keeps_what_is_paid(api, db, w):
    pledge = _pledge(api, w.donor["id"], "300.00",
                     [(PAST[0], "100.00"), (PAST[1], "100.00"), (FUTURE[0], "100.00")])
    gift(api, w.donor["id"], "100.00", "2020-01-02", pledge_id=pledge["id"])
    assert [s for _d, _p, s in _states(api, pledge["id"])] == ["paid", "overdue", "due"]
    new = [{"due_on": PAST[0], "amount": "100.00"}, {"due_on": FUTURE[0], "amount": "50.00"},
           {"due_on": FUTURE[1], "amount": "150.00"}]
    moved = ok(api.put(f"/pledges/{pledge['id']}/schedule", {"instalments": new}), 200)
    assert [(i["due_on"], i["amount"], i["paid"], i["state"]) for i in moved["instalments"]] == [
        (PAST[0], "100.00", "100.00", "paid"), (FUTURE[0], "50.00", "0.00", "due"),
        (FUTURE[1], "150.00", "0.00", "due")]
    assert moved["state"] == "active" and moved["paid"] == "100.00"
    assert _audit_actions(db, pledge["id"])[-1] == "pledge.rescheduled"
    # Fewer instalments, then more: the rows left over are sealed as removed, the others as
    # written, and verification stays clean each time.
    fewer = ok(api.put(f"/pledges/{pledge['id']}/schedule", {"instalments": [
        {"due_on": PAST[0], "amount": "100.00"}, {"due_on": FUTURE[1], "amount": "200.00"}]}), 200)
    assert [(i["amount"], i["state"]) for i in fewer["instalments"]] == [
        ("100.00", "paid"), ("200.00", "due")]
    assert api.get("/audit/verify").get_json()["ok"] is True
    more = ok(api.put(f"/pledges/{pledge['id']}/schedule", {"instalments": [
        {"due_on": d, "amount": "75.00"} for d in (PAST[0], PAST[1], FUTURE[0], FUTURE[1])]}),
        200)
    assert [(i["paid"], i["state"]) for i in more["instalments"]] == [
        ("75.00", "paid"), ("25.00", "overdue"), ("0.00", "due"), ("0.00", "due")]
    assert api.get("/audit/verify").get_json()["ok"] is True


def test_a_schedule_that_does_not_add_up_is_refused_and_changes_nothing(api, db, w):
    pledge = _pledge(api, w.donor["id"], "300.00", [(FUTURE[0], "300.00")])
    before = snapshot(db)
    short = api.put(f"/pledges/{pledge['id']}/schedule",
                    {"instalments": [{"due_on": FUTURE[0], "amount": "299.99"}]})
    assert errors_of(short) == {"instalments": [
        "instalments add up to 299.99, the pledge is 300.00"]}
    assert set(errors_of(api.put(f"/pledges/{pledge['id']}/schedule",
                                 {"instalments": [{"due_on": FUTURE[0], "amount": "abc"}]})))
    assert errors_of(api.put(f"/pledges/{pledge['id']}/schedule", {"instalments": []}))
    assert snapshot(db) == before
    assert api.get(f"/pledges/{pledge['id']}").get_json() == pledge
