"""Recording gifts through POST /gifts: every kind of source the policy distinguishes."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import select

from models import Gift
from models.money import convert
from tests.api.helpers import errors_of, fired, gift_body, reason, snapshot
from tests.builders import World, affiliate, gift, ok, org_donor, organization, person, summary

DAY = "2026-03-01"
RULES = {"lab_evaluation_payment", "senior_decision_maker", "lab_employee_cap",
         "lab_corporate_money", "lab_in_kind", "large_gift", "declaration_differs",
         "possible_senior_decision_maker",
         "possible_match", "household_of_senior_decision_maker"}


def test_plain_gift_is_accepted_with_its_screening_decision(api):
    w = World(api)
    response = api.post("/gifts", gift_body(w.donor["id"], "250.00", DAY, method="cheque",
                                            description="Spring appeal"))
    made = ok(response)
    assert made["id"] > 0
    assert (made["status"], made["amount"], made["currency"]) == ("accepted", "250.00", "USD")
    assert (made["reporting_amount"], made["reporting_currency"]) == ("250.00", "USD")
    assert (made["fx_rate"], made["fx_source"]) == ("1", "identity")
    assert (made["received_on"], made["method"], made["kind"], made["purpose"]) == (
        DAY, "cheque", "cash", "general")
    assert made["attributions"] == [{"donor_id": w.donor["id"], "fraction": "1", "basis": "donor"}]
    assert (made["lab_employee_amount"], made["disclose"], made["refund_status"]) == ("0.00", False,
                                                                                      "none")
    decision = made["decision"]
    assert (decision["outcome"], decision["kind"], decision["policy_version"]) == (
        "accept", "screening", "2026.4")
    assert decision["decided_by"] == api.user_id
    assert {r["rule"] for r in decision["reasons"]} == RULES
    assert fired(made) == []
    assert made["decisions"] == [decision]
    assert api.get(f"/gifts/{made['id']}").get_json() == made


def test_gift_in_a_foreign_currency_stores_its_conversion(api, db):
    w = World(api)
    made = gift(api, w.donor["id"], "5000", DAY, currency="JPY", fx_rate="0.0067",
                fx_source="ECB reference rate 2026-03-01")
    assert (made["amount"], made["currency"]) == ("5000", "JPY")
    assert (made["reporting_amount"], made["reporting_currency"]) == ("33.50", "USD")
    assert (made["fx_rate"], made["fx_source"]) == ("0.0067", "ECB reference rate 2026-03-01")
    stored = db.execute(select(Gift.amount_minor, Gift.reporting_amount_minor, Gift.fx_rate)
                        .where(Gift.id == made["id"])).one()
    db.rollback()
    assert tuple(stored) == (5000, 3350, "0.0067")  # integers and the rate's text, never floats
    assert summary(api, DAY)["total_funding"] == "33.50"


def test_conversion_rounds_half_to_even_once(api):
    w = World(api)
    # 1 JPY * 0.0125 = 1.25 cents -> 1 (half-even); 3 JPY * 0.0125 = 3.75 cents -> 4.
    assert gift(api, w.donor["id"], "1", DAY, currency="JPY", fx_rate="0.0125")["reporting_amount"] == "0.01"
    assert gift(api, w.donor["id"], "3", DAY, currency="JPY", fx_rate="0.0125")["reporting_amount"] == "0.04"


def test_conversion_of_a_long_rate_is_rounded_once_not_twice(api, db):
    w = World(api)
    amount, rate = 999_999_999_999_999_999, "0.02500000000000000002"
    cents = Fraction(amount) * Fraction(rate) * 100  # 2499999999999999999.4999... exactly
    assert math.floor(cents) == 2_499_999_999_999_999_999
    assert cents - math.floor(cents) < Fraction(1, 2)
    # Rounded once, half-even, from the exact product; rounding to 28 digits first would
    # give 2499999999999999999.5 and then 25000000000000000.00.
    assert convert(amount, "JPY", Decimal(rate), "USD") == 2_499_999_999_999_999_999
    # The door converts so, and names the converted amount when it refuses a gift this
    # far above the largest gift it records (MAX_GIFT_MINOR).
    before = snapshot(db)
    errors = errors_of(api.post("/gifts", gift_body(w.donor["id"], str(amount), DAY,
                                                    currency="JPY", fx_rate=rate)))
    assert list(errors) == ["amount"]
    assert "(24,999,999,999,999,999.99 USD at the rate given)" in errors["amount"][0]
    assert snapshot(db) == before


def test_foreign_currency_without_fx_rate_is_422_and_writes_nothing(api, db):
    w = World(api)
    before = snapshot(db)
    errors = errors_of(api.post("/gifts", gift_body(w.donor["id"], "5000", DAY, currency="JPY")))
    assert errors == {"fx_rate": ["required when the currency is not USD"]}
    assert snapshot(db) == before


def test_reporting_currency_with_a_rate_other_than_one_is_422(api, db):
    w = World(api)
    before = snapshot(db)
    errors = errors_of(api.post("/gifts", gift_body(w.donor["id"], "50.00", DAY, fx_rate="1.1")))
    assert list(errors) == ["fx_rate"]
    assert snapshot(db) == before


def test_daf_grant_is_attributed_to_its_advisor(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    daf = org_donor(api, "Community DAF", category="daf_sponsor")
    made = gift(api, daf["id"], "100.00", DAY,
                attributions=[{"donor_id": w.employee["id"], "fraction": "1"}])
    assert made["status"] == "accepted"
    assert made["attributions"] == [{"donor_id": w.employee["id"], "fraction": "1",
                                     "basis": "daf_advisor"}]
    assert made["lab_employee_amount"] == "100.00"  # the advisor works at the lab
    assert summary(api, DAY)["lab_employee_funding"] == "100.00"


def test_daf_grant_from_a_lab_employee_advisor_counts_against_the_cap(api):
    w = World(api)
    gift(api, w.donor["id"], "100.00", DAY)
    daf = org_donor(api, "Community DAF", category="daf_sponsor")
    made = gift(api, daf["id"], "100.00", DAY,
                attributions=[{"donor_id": w.employee["id"], "fraction": "1"}])
    assert (made["status"], fired(made)) == ("rejected", ["lab_employee_cap"])


def test_daf_grant_without_attributions_is_422_and_writes_nothing(api, db):
    daf = org_donor(api, "Community DAF", category="daf_sponsor")
    before = snapshot(db)
    errors = errors_of(api.post("/gifts", gift_body(daf["id"], "100.00", DAY)))
    assert errors == {"attributions": [
        "a grant from a donor-advised fund must be attributed to its advisor"]}
    assert snapshot(db) == before


def test_joint_gift_split_half_half_with_a_lab_employee_rounds_the_lab_part_up(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    made = gift(api, w.donor["id"], "100.01", DAY, attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.5"},
        {"donor_id": w.employee["id"], "fraction": "0.5"}])
    assert made["status"] == "accepted"
    assert made["attributions"] == [
        {"donor_id": w.donor["id"], "fraction": "0.5", "basis": "explicit"},
        {"donor_id": w.employee["id"], "fraction": "0.5", "basis": "explicit"}]
    assert made["lab_employee_amount"] == "50.01"  # ceil(10001 / 2) cents: never understated
    s = summary(api, DAY)
    assert (s["total_funding"], s["lab_employee_funding"]) == ("1100.01", "50.01")


def test_employer_matching_gift_from_the_lab_is_held(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    employee_gift = gift(api, w.employee["id"], "100.00", DAY)
    assert employee_gift["status"] == "accepted"
    match = gift(api, w.lab_donor["id"], "100.00", DAY, matching_gift_for=employee_gift["id"])
    assert (match["status"], match["decision"]["outcome"]) == ("held", "hold")
    assert match["matching_gift_for"] == employee_gift["id"]
    assert fired(match) == ["lab_corporate_money"]
    assert reason(match, "lab_corporate_money")["message"] == (
        "An employer matching gift from a covered lab (Frontier Lab) needs a reviewer's decision.")
    assert match["attributions"] == [{"donor_id": w.lab_donor["id"], "fraction": "1",
                                      "basis": "employer_match"}]
    assert match["lab_employee_amount"] == "0.00"


def test_general_corporate_gift_from_the_lab_is_held(api):
    w = World(api)
    made = gift(api, w.lab_donor["id"], "5000.00", DAY)
    assert (made["status"], fired(made)) == ("held", ["lab_corporate_money"])
    assert reason(made, "lab_corporate_money")["outcome"] == "hold"


def test_corporate_gift_from_a_lab_affiliate_is_held(api):
    w = World(api)
    foundation = organization(api, "Frontier Lab Foundation", parent_id=w.lab["id"])
    donor = org_donor(api, "Frontier Lab Foundation", foundation["id"], category="foundation")
    made = gift(api, donor["id"], "5000.00", DAY)
    assert (made["status"], fired(made)) == ("held", ["lab_corporate_money"])


def test_lab_payment_for_evaluation_services_is_rejected(api):
    w = World(api)
    made = gift(api, w.lab_donor["id"], "20000.00", DAY, purpose="evaluation_services")
    assert (made["status"], made["decision"]["outcome"]) == ("rejected", "reject")
    assert fired(made) == ["lab_evaluation_payment"]
    assert reason(made, "lab_evaluation_payment")["message"] == (
        "Payment for evaluation services from a covered lab (Frontier Lab).")
    assert summary(api, DAY)["total_funding"] == "0.00"


def test_evaluation_payment_from_a_lab_affiliate_is_rejected(api):
    w = World(api)
    subsidiary = organization(api, "Frontier Cloud", parent_id=w.lab["id"])
    grandchild = organization(api, "Frontier Cloud EU", parent_id=subsidiary["id"])
    for org in (subsidiary, grandchild):
        payer = org_donor(api, org["name"] + " (payer)", org["id"])
        made = gift(api, payer["id"], "20000.00", DAY, purpose="evaluation_services")
        assert (made["status"], fired(made)) == ("rejected", ["lab_evaluation_payment"]), org


def test_evaluation_payment_from_an_uncovered_company_is_accepted(api):
    w = World(api)
    payer = org_donor(api, "Plain Corp (payer)", w.other_org["id"])
    made = gift(api, payer["id"], "20000.00", DAY, purpose="evaluation_services")
    assert (made["status"], fired(made)) == ("accepted", [])


def test_gift_from_a_senior_decision_maker_is_rejected(api):
    w = World(api)
    gift(api, w.donor["id"], "100000.00", DAY)
    cto = person(api, "Casey CTO")
    affiliate(api, cto["id"], w.lab["id"], start="2019-01-01", senior=True, title="CTO")
    made = gift(api, cto["id"], "10.00", DAY)
    assert (made["status"], fired(made)) == ("rejected", ["senior_decision_maker"])
    assert "Casey CTO (CTO at Frontier Lab)" in reason(made, "senior_decision_maker")["message"]


def test_joint_gift_with_a_senior_decision_maker_is_rejected(api):
    w = World(api)
    gift(api, w.donor["id"], "100000.00", DAY)
    cto = person(api, "Casey CTO")
    affiliate(api, cto["id"], w.lab["id"], start="2019-01-01", senior=True, title="CTO")
    made = gift(api, w.donor["id"], "10.00", DAY, attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.9"}, {"donor_id": cto["id"], "fraction": "0.1"}])
    assert (made["status"], fired(made)) == ("rejected", ["senior_decision_maker"])


def test_in_kind_support_from_the_lab_is_accepted_disclosed_and_not_funding(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    made = gift(api, w.lab_donor["id"], "250000.00", DAY, kind="in_kind",
                description="Pre-release model access for evaluations")
    assert (made["status"], made["kind"], made["disclose"]) == ("accepted", "in_kind", True)
    assert fired(made) == ["lab_in_kind"]
    assert made["lab_employee_amount"] == "0.00"
    s = summary(api, DAY)
    assert (s["total_funding"], s["lab_employee_funding"], s["headroom"]) == ("1000.00", "0.00",
                                                                              "999.99")


def test_in_kind_gift_from_a_lab_employee_is_not_lab_funding(api):
    w = World(api)
    made = gift(api, w.employee["id"], "300.00", DAY, kind="in_kind", description="Laptop")
    assert (made["status"], made["lab_employee_amount"], made["disclose"]) == ("accepted", "0.00",
                                                                               False)
    assert summary(api, DAY)["total_funding"] == "0.00"


def test_held_gifts_count_nowhere_in_the_summary(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    before = summary(api, DAY)
    held = gift(api, w.lab_donor["id"], "5000.00", DAY)
    assert held["status"] == "held"
    assert summary(api, DAY) == before
    assert (before["total_funding"], before["lab_employee_funding"]) == ("1000.00", "0.00")
    listed = api.get("/gifts?status=held").get_json()["items"]
    assert [g["id"] for g in listed] == [held["id"]]


def test_rejected_gifts_count_nowhere_in_the_summary(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    before = summary(api, DAY)
    assert gift(api, w.employee["id"], "1000.00", DAY)["status"] == "rejected"
    assert summary(api, DAY) == before


def test_duplicate_external_ref_is_409_with_the_existing_id(api, db):
    w = World(api)
    first = gift(api, w.donor["id"], "100.00", DAY, external_ref="bank-2026-03-01-17")
    before = snapshot(db)
    response = api.post("/gifts", gift_body(w.donor["id"], "999.00", DAY,
                                            external_ref="bank-2026-03-01-17"))
    assert response.status_code == 409
    body = response.get_json()
    assert (body["field"], body["existing_id"]) == ("external_ref", first["id"])
    assert snapshot(db) == before


def test_get_gift_lists_every_decision_oldest_first(api, api_as):
    w = World(api)
    held = gift(api, w.lab_donor["id"], "5000.00", DAY)
    reviewer = api_as("reviewer")
    review = ok(reviewer.post(f"/gifts/{held['id']}/review",
                              {"outcome": "accept", "reason": "Unrestricted, no conditions"}))
    shown = api.get(f"/gifts/{held['id']}").get_json()
    assert [(d["kind"], d["outcome"]) for d in shown["decisions"]] == [("screening", "hold"),
                                                                      ("review", "accept")]
    assert [d["id"] for d in shown["decisions"]] == sorted(d["id"] for d in shown["decisions"])
    assert shown["decisions"][0] == held["decision"]
    assert shown["decisions"][1] == review
    assert shown["decision"] == review
    assert shown["status"] == "accepted"


def test_gift_list_shows_only_the_latest_decision(api):
    w = World(api)
    made = gift(api, w.donor["id"], "100.00", DAY)
    items = api.get(f"/gifts?donor_id={w.donor['id']}").get_json()["items"]
    assert [g["id"] for g in items] == [made["id"]]
    assert "decisions" not in items[0] and items[0]["decision"] == made["decision"]


def test_preview_returns_the_decision_and_writes_nothing(api, db):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    before = snapshot(db)
    response = api.post("/gifts/preview", gift_body(w.employee["id"], "1000.00", DAY))
    assert response.status_code == 200
    preview = response.get_json()
    assert preview["status"] == "rejected"
    assert preview["decision"]["outcome"] == "reject"
    assert preview["decision"]["policy_version"] == "2026.4"
    assert preview["decision"]["figures"]["breaking_share"] == "0.500000"
    assert preview["decision"]["figures"]["headroom"] == "999.99"
    assert [r["rule"] for r in preview["decision"]["reasons"] if r["fired"]] == ["lab_employee_cap"]
    fine = api.post("/gifts/preview", gift_body(w.employee["id"], "999.99", DAY)).get_json()
    assert fine["status"] == "accepted"
    assert snapshot(db) == before


def test_preview_gives_the_same_decision_the_gift_then_gets(api):
    w = World(api)
    gift(api, w.donor["id"], "1000.00", DAY)
    body = gift_body(w.employee["id"], "400.00", DAY)
    preview = api.post("/gifts/preview", body).get_json()
    made = ok(api.post("/gifts", body))
    assert preview["status"] == made["status"] == "accepted"
    assert preview["decision"]["reasons"] == made["decision"]["reasons"]
    assert preview["decision"]["figures"] == made["decision"]["figures"]


def test_preview_validates_like_create(api, db):
    w = World(api)
    before = snapshot(db)
    assert list(errors_of(api.post("/gifts/preview", gift_body(w.donor["id"], "1.001")))) == ["amount"]
    assert errors_of(api.post("/gifts/preview", gift_body(987_654))) == {"donor_id": ["no such donor"]}
    assert snapshot(db) == before


def test_gift_list_reads_each_table_once_per_page_and_matches_each_gift(app, api):
    """A list page costs the same statements for 3 gifts as for 12 (no query per gift), and
    each item is the gift as GET /gifts/{id} shows it, less `decisions` and `correction`."""
    from tests.api.test_gift_statements import statements_of

    w = World(api)
    made = [gift(api, w.donor["id"], f"{n}.00", DAY) for n in range(1, 13)]
    ok(api.post(f"/gifts/{made[0]['id']}/refund", {"amount": "0.50", "refunded_on": DAY,
                                                    "reason": "asked"}))
    counts = []
    for limit in (3, 12):
        with statements_of(app) as seen:
            items = ok(api.get(f"/gifts?donor_id={w.donor['id']}&limit={limit}"), 200)["items"]
        counts.append(len(seen))
        assert len(items) == limit
    assert counts[0] == counts[1]
    for item in items:
        whole = ok(api.get(f"/gifts/{item['id']}"), 200)
        del whole["decisions"], whole["correction"]
        assert item == whole
    assert items[0]["refunded_amount"] == "0.50"
