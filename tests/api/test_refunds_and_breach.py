"""Refunds are dated: they change windows ending on or after their date, never the past.
Refunds and the window moving on can put the ledger in breach; the summary shows since when."""

from __future__ import annotations

from datetime import date

import pytest

from tests.api.helpers import errors_of, fired, snapshot
from tests.builders import World, gift, ok, summary

D = date(2026, 3, 1)


@pytest.fixture
def w(api):
    return World(api)


def _refund(api, gift_id, amount=None, on=None, expect=201, **extra):
    body = {**({"amount": amount} if amount is not None else {}),
            **({"refunded_on": on.isoformat() if isinstance(on, date) else on} if on else {}), **extra}
    return ok(api.post(f"/gifts/{gift_id}/refund", body), expect)


def test_partial_then_full_refund(api, w):
    made = gift(api, w.donor["id"], "100.00", D)
    first = _refund(api, made["id"], "30.00", "2026-03-05", reason="donor asked")
    assert (first["amount"], first["currency"], first["reporting_amount"]) == ("30.00", "USD", "30.00")
    assert (first["refunded_on"], first["reason"], first["gift_id"]) == ("2026-03-05", "donor asked",
                                                                         made["id"])
    assert (first["gift"]["refund_status"], first["gift"]["refunded_amount"]) == ("partial", "30.00")
    rest = _refund(api, made["id"], on="2026-03-10")  # no amount: the remainder
    assert rest["amount"] == "70.00"
    shown = api.get(f"/gifts/{made['id']}").get_json()
    assert (shown["refund_status"], shown["refunded_amount"]) == ("full", "100.00")
    assert [(r["amount"], r["refunded_on"]) for r in shown["refunds"]] == [
        ("30.00", "2026-03-05"), ("70.00", "2026-03-10")]
    assert shown["status"] == "accepted"  # a refund is not a decision
    assert summary(api, "2026-03-04")["total_funding"] == "100.00"
    assert summary(api, "2026-03-05")["total_funding"] == "70.00"
    assert summary(api, "2026-03-10")["total_funding"] == "0.00"


def test_refund_of_a_fully_refunded_gift_is_409(api, db, w):
    made = gift(api, w.donor["id"], "100.00", D)
    _refund(api, made["id"], on=D)
    before = snapshot(db)
    response = api.post(f"/gifts/{made['id']}/refund", {"amount": "1.00", "refunded_on": "2026-03-02"})
    assert response.status_code == 409
    assert response.get_json() == {"error": "the gift is already fully refunded"}
    assert snapshot(db) == before


def test_refund_larger_than_what_remains_is_422_and_writes_nothing(api, db, w):
    made = gift(api, w.donor["id"], "100.00", D)
    _refund(api, made["id"], "60.00", D)
    before = snapshot(db)
    errors = errors_of(api.post(f"/gifts/{made['id']}/refund",
                                {"amount": "40.01", "refunded_on": "2026-03-02"}))
    assert errors == {"amount": ["must be between 0.01 and 40.00 USD"]}
    assert snapshot(db) == before
    assert api.get(f"/gifts/{made['id']}").get_json()["refunded_amount"] == "60.00"


def test_refund_dated_before_the_gift_is_422(api, db, w):
    made = gift(api, w.donor["id"], "100.00", D)
    before = snapshot(db)
    errors = errors_of(api.post(f"/gifts/{made['id']}/refund",
                                {"amount": "10.00", "refunded_on": "2026-02-28"}))
    assert errors == {"refunded_on": ["must not be before the gift was received"]}
    assert snapshot(db) == before


def test_refund_on_the_gift_date_is_allowed(api, w):
    made = gift(api, w.donor["id"], "100.00", D)
    assert _refund(api, made["id"], "10.00", D)["refunded_on"] == D.isoformat()


def test_bad_refund_amounts_are_422(api, db, w):
    made = gift(api, w.donor["id"], "100.00", D)
    before = snapshot(db)
    for amount in ["10.001", "0", "-5.00", "1e1", 10, "ten"]:
        response = api.post(f"/gifts/{made['id']}/refund", {"amount": amount, "refunded_on": "2026-03-02"})
        assert list(errors_of(response)) == ["amount"], amount
    assert list(errors_of(api.post(f"/gifts/{made['id']}/refund",
                                   {"refunded_on": "2026-02-30"}))) == ["refunded_on"]
    assert list(errors_of(api.post(f"/gifts/{made['id']}/refund", {"why": "x"}))) == ["why"]
    assert snapshot(db) == before


def test_only_finance_and_admin_may_refund(api, api_as, w):
    made = gift(api, w.donor["id"], "100.00", D)
    for role in ("viewer", "fundraiser", "reviewer"):
        assert api_as(role).post(f"/gifts/{made['id']}/refund",
                                 {"amount": "1.00", "refunded_on": "2026-03-02"}).status_code == 403
    assert api_as("finance").post(f"/gifts/{made['id']}/refund",
                                  {"amount": "1.00", "refunded_on": "2026-03-02"}).status_code == 201


def test_refunds_of_a_foreign_gift_add_up_to_its_reporting_amount(api, w):
    made = gift(api, w.donor["id"], "1000", D, currency="JPY", fx_rate="0.0067")
    assert made["reporting_amount"] == "6.70"
    first = _refund(api, made["id"], "333", D)
    second = _refund(api, made["id"], "333", D)
    last = _refund(api, made["id"], on=D)
    assert [first["reporting_amount"], second["reporting_amount"], last["reporting_amount"]] == [
        "2.23", "2.23", "2.24"]
    assert (last["amount"], last["currency"]) == ("334", "JPY")
    assert summary(api, D)["total_funding"] == "0.00"


# --- history is never rewritten ---------------------------------------------------------

def test_refund_changes_only_windows_ending_on_or_after_its_date(api, w):
    gift(api, w.donor["id"], "1000.00", D)
    lab = gift(api, w.employee["id"], "400.00", D)
    before = summary(api, "2026-03-31")
    _refund(api, lab["id"], "100.00", "2026-04-01")
    assert summary(api, "2026-03-31") == before
    after = summary(api, "2026-04-01")
    assert (before["total_funding"], before["lab_employee_funding"]) == ("1400.00", "400.00")
    assert (after["total_funding"], after["lab_employee_funding"]) == ("1300.00", "300.00")
    assert after["lab_employee_share"] == "0.230769"


def test_refund_of_lab_money_takes_back_the_lab_part_pro_rata(api, w):
    gift(api, w.donor["id"], "1000.00", D)
    joint = gift(api, w.donor["id"], "100.01", D, attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.5"}, {"donor_id": w.employee["id"], "fraction": "0.5"}])
    assert joint["lab_employee_amount"] == "50.01"
    _refund(api, joint["id"], "50.00", D)
    s = summary(api, D)
    # 5000 * 5001 // 10001 = 2500 cents of lab money refunded (rounded down: share not understated)
    assert (s["total_funding"], s["lab_employee_funding"]) == ("1050.01", "25.01")


def test_fully_refunded_split_gift_leaves_no_lab_money_behind(api, w):
    gift(api, w.donor["id"], "1000.00", D)
    joint = gift(api, w.donor["id"], "100.01", D, attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.5"}, {"donor_id": w.employee["id"], "fraction": "0.5"}])
    _refund(api, joint["id"], "33.33", D)
    _refund(api, joint["id"], "33.33", D)
    assert _refund(api, joint["id"], on=D)["amount"] == "33.35"
    s = summary(api, D)
    assert (s["total_funding"], s["lab_employee_funding"], s["lab_employee_share"]) == (
        "1000.00", "0.00", "0.000000")


def test_fully_refunded_split_gift_alone_is_no_breach(api, w):
    joint = gift(api, w.donor["id"], "100.01", D, attributions=[
        {"donor_id": w.donor["id"], "fraction": "0.6"}, {"donor_id": w.employee["id"], "fraction": "0.4"}])
    assert (joint["status"], joint["lab_employee_amount"]) == ("accepted", "40.01")
    _refund(api, joint["id"], "50.00", D)
    _refund(api, joint["id"], on="2026-03-02")
    s = summary(api, "2026-03-02")
    assert (s["total_funding"], s["lab_employee_funding"], s["in_breach"]) == ("0.00", "0.00", False)


def test_refund_that_pushes_the_share_to_the_cap_is_a_breach_since_its_date(api, w):
    normal = gift(api, w.donor["id"], "1000.00", D)
    assert gift(api, w.employee["id"], "900.00", D)["status"] == "accepted"  # 47.4%
    _refund(api, normal["id"], "200.00", "2026-04-10")  # 900 / 1700 = 52.9%
    before = summary(api, "2026-04-09")
    assert (before["in_breach"], before["breach_since"], before["lab_employee_share"]) == (
        False, None, "0.473684")
    during = summary(api, "2026-05-01")
    assert (during["in_breach"], during["breach_since"]) == (True, "2026-04-10")
    assert (during["lab_employee_share"], during["headroom"]) == ("0.529411", "0.00")
    assert (during["total_funding"], during["lab_employee_funding"]) == ("1700.00", "900.00")


def test_refund_to_exactly_the_cap_is_a_breach(api, w):
    normal = gift(api, w.donor["id"], "1000.00", D)
    gift(api, w.employee["id"], "900.00", D)
    _refund(api, normal["id"], "100.00", "2026-04-10")  # 900 / 1800 = 50%: not below the cap
    s = summary(api, "2026-04-10")
    assert (s["in_breach"], s["breach_since"], s["lab_employee_share"]) == (True, "2026-04-10",
                                                                           "0.500000")


def test_in_breach_lab_gifts_are_rejected_and_other_gifts_still_accepted(api, w):
    normal = gift(api, w.donor["id"], "1000.00", D)
    gift(api, w.employee["id"], "900.00", D)
    _refund(api, normal["id"], "200.00", "2026-04-10")
    lab = gift(api, w.employee["id"], "1.00", "2026-05-01")
    assert (lab["status"], fired(lab)) == ("rejected", ["lab_employee_cap"])
    other = gift(api, w.donor["id"], "50.00", "2026-05-01")
    assert (other["status"], fired(other)) == ("accepted", [])
    s = summary(api, "2026-05-01")
    assert (s["total_funding"], s["in_breach"], s["breach_since"]) == ("1750.00", True, "2026-04-10")


def test_new_funding_ends_the_breach(api, w):
    normal = gift(api, w.donor["id"], "1000.00", D)
    gift(api, w.employee["id"], "900.00", D)
    _refund(api, normal["id"], "200.00", "2026-04-10")
    gift(api, w.donor["id"], "500.00", "2026-05-01")  # 900 / 2200
    assert summary(api, "2026-04-30")["in_breach"] is True
    s = summary(api, "2026-05-01")
    assert (s["in_breach"], s["breach_since"], s["lab_employee_share"]) == (False, None, "0.409090")


def test_window_moving_on_puts_the_ledger_in_breach_without_any_new_gift(api, w):
    gift(api, w.donor["id"], "1000.00", "2025-01-01")
    assert gift(api, w.employee["id"], "900.00", "2025-06-01")["status"] == "accepted"
    assert summary(api, "2025-12-31")["in_breach"] is False  # 900 / 1900
    s = summary(api, "2026-03-01")
    # The 2025-01-01 gift leaves the windows ending from 2026-01-01 on.
    assert (s["in_breach"], s["breach_since"]) == (True, "2026-01-01")
    assert (s["total_funding"], s["lab_employee_funding"], s["lab_employee_share"]) == (
        "900.00", "900.00", "1.000000")
    assert summary(api, "2026-06-01")["in_breach"] is False  # the lab gift aged out too
    assert summary(api, "2026-06-01")["total_funding"] == "0.00"


def test_breach_since_reaches_back_more_than_a_year(api, w):
    """A breach that began 880 days before the summary date is dated from its first day."""
    normal = []
    for day in ("2024-01-01", "2024-12-01", "2025-11-01"):
        normal.append(gift(api, w.donor["id"], "1000.00", day))
        assert gift(api, w.employee["id"], "900.00", day)["status"] == "accepted"
    for made, refunded_on in zip(normal, ("2024-01-02", "2024-12-01", "2025-11-01"), strict=True):
        _refund(api, made["id"], on=refunded_on)
    # From 2024-01-02 every window holds lab money and no other funding.
    assert summary(api, "2024-01-01")["in_breach"] is False
    s = summary(api, "2026-06-01")
    assert (s["in_breach"], s["breach_since"], s["lab_employee_share"]) == (True, "2024-01-02",
                                                                           "1.000000")
    assert summary(api, "2026-11-01")["in_breach"] is False  # all of it has aged out
