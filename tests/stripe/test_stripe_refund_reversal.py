"""A Stripe refund that fails after it was recorded: the money came back, so the refund is
reversed from the failure day on (never before), once, and every figure agrees."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app.db.locking import ledger_write
from app.ledger import audit
from app.payments.recording import STRIPE
from models import AuditEntry, FundingDay, Gift, Refund
from tests.builders import affiliate, gift, organization, person, summary
from tests.stripe.stripe_stubs import (
    charge_refunded,
    event,
    expect_refund_list,
    expect_settlement,
    post_event,
    refund_object,
    session_completed,
    start_donation,
)
from tests.webtools import csrf_token, session_token, submit

TODAY = date.today()


def day(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


def at(days_ago: int) -> int:
    """Noon UTC (the tests' ORG_TIMEZONE) of that day, as a Stripe timestamp."""
    return int(datetime.combine(day(days_ago), time(12), UTC).timestamp())


def ok(response) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    return response.get_json()["outcome"]


def paid(client, httpserver, donation, amount: int, days_ago: int) -> None:
    """The donation's payment, made (and so dated) days_ago."""
    expect_settlement(httpserver, "pi_1", amount, created=at(days_ago))
    payment = session_completed(donation)
    payment["created"] = at(days_ago)
    ok(post_event(client, payment))


def refunded(client, httpserver, *refunds: tuple[str, int, int], amount: int) -> None:
    """charge.refunded listing (refund id, amount, days ago) for the charge ch_1."""
    expect_refund_list(httpserver, "ch_1", [refund_object(rid, minor, "pi_1", created=at(ago))
                                            for rid, minor, ago in refunds])
    ok(post_event(client, charge_refunded(amount=amount,
                                          amount_refunded=sum(r[1] for r in refunds))))


def failed(refund_id: str, amount: int, days_ago: int, event_type: str = "refund.failed") -> dict:
    obj = refund_object(refund_id, amount, "pi_1", status="failed", created=at(days_ago + 3))
    obj["failure_reason"] = "expired_or_canceled_card"
    return event(event_type, obj, created=at(days_ago))


def online_gift(db) -> Gift:
    db.rollback()
    return db.execute(select(Gift).where(Gift.stripe_payment_intent_id == "pi_1")).scalar_one()


def refund_rows(db) -> list[tuple]:
    db.rollback()
    return [tuple(r) for r in db.execute(
        select(Refund.id, Refund.amount_minor, Refund.refunded_on, Refund.reverses_refund_id,
               Refund.stripe_refund_id).order_by(Refund.id))]


def funding_day(db, on: date) -> tuple[int, int, int, int]:
    db.rollback()
    row = db.execute(select(FundingDay.total_minor, FundingDay.lab_minor, FundingDay.refunded_minor,
                            FundingDay.refunded_lab_minor).where(FundingDay.day == on)).one()
    return tuple(row)


def audit_data(db, action: str) -> list[dict]:
    db.rollback()
    return [e.data for e in db.execute(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars()]


def figures(api, days_ago: int) -> tuple[str, str, bool, str | None]:
    s = summary(api, day(days_ago))
    return s["total_funding"], s["lab_employee_funding"], s["in_breach"], s["breach_since"]


@pytest.fixture
def lab_world(api, client, httpserver, db):
    """A plain donor's 1,000.00 dated 10 days ago, and a lab employee (known by her e-mail)
    who gives 900.00 online that day: 900 / 1,900 = 47.4%, below the cap."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    assert gift(api, person(api, "Plain Donor")["id"], "1000.00", day(10))["status"] == "accepted"
    employee = person(api, "Ada Lovelace", email="ada@example.org")
    affiliate(api, employee["id"], lab["id"], start="2015-01-01")
    donation = start_donation(client, httpserver, db, session_id="cs_test_lab", amount="other",
                              other_amount="900")
    paid(client, httpserver, donation, 90000, 10)
    made = online_gift(db)
    assert (made.status, made.received_on, made.lab_minor) == ("accepted", day(10), 90000)
    return lab


def test_a_full_refund_failed_later_counts_again_from_the_failure_day(
        api, client, httpserver, db, web_as, lab_world):
    # The lab employee's gift is refunded 8 days ago. Relying on that, a colleague's 600.00
    # is accepted 7 days ago: 600 / 1,600 = 37.5%.
    refunded(client, httpserver, ("re_1", 90000, 8), amount=90000)
    colleague = person(api, "Lee Colleague")
    affiliate(api, colleague["id"], lab_world["id"], start="2015-01-01")
    assert gift(api, colleague["id"], "600.00", day(7))["status"] == "accepted"
    assert online_gift(db).refund_status == "full"
    assert figures(api, 6) == ("1600.00", "600.00", False, None)

    # The refund fails 5 days ago: the 900.00 came back.
    outcome = ok(post_event(client, failed("re_1", 90000, 5)))
    assert f"reversed from {day(5).isoformat()}" in outcome
    assert "at or above the cap" in outcome

    g = online_gift(db)
    assert (g.status, g.refunded_minor, g.refund_status) == ("accepted", 0, "none")
    [(refund_id, *refund), (reversal_id, *reversal)] = refund_rows(db)
    assert refund == [90000, day(8), None, "re_1"]  # the refund stays in history
    assert reversal == [-90000, day(5), refund_id, None]
    # funding_day holds the gift whole again (what it has had refunded so far: nothing).
    assert funding_day(db, day(10)) == (190000, 90000, 0, 0)

    # The windows: the past keeps the refund; from the failure day the money counts again,
    # and the share (1,500 / 2,500 = 60%) is at the cap: a breach since that day.
    assert figures(api, 9) == ("1900.00", "900.00", False, None)
    assert figures(api, 8) == ("1000.00", "0.00", False, None)
    assert figures(api, 6) == ("1600.00", "600.00", False, None)
    assert figures(api, 5) == ("2500.00", "1500.00", True, day(5).isoformat())
    assert figures(api, 0) == ("2500.00", "1500.00", True, day(5).isoformat())
    assert summary(api, TODAY)["headroom"] == "0.00"
    series = api.get(f"/compliance/series?from={day(10).isoformat()}&to={TODAY.isoformat()}")
    series = series.get_json()
    shares = {d["date"]: (d["total_funding"], d["in_breach"]) for d in series["days"]}
    assert shares[day(6).isoformat()] == ("1600.00", False)
    assert shares[day(5).isoformat()] == ("2500.00", True)
    assert series["breach_periods"] == [{"from": day(5).isoformat(), "to": TODAY.isoformat(),
                                         "days": 6, "ongoing": True}]
    assert sum(float(m["total_funding"]) for m in series["months"]) == 2500.0

    # A later lab-employee gift is screened against the true share: rejected.
    assert gift(api, colleague["id"], "10.00", TODAY)["status"] == "rejected"

    # The API: the refund is still listed, with the day it was reversed; the reversal too.
    shown = api.get(f"/gifts/{g.id}").get_json()
    assert (shown["refund_status"], shown["refunded_amount"]) == ("none", "0.00")
    assert [(r["id"], r["amount"], r["refunded_on"], r["reversed_on"])
            for r in shown["refunds"]] == [(refund_id, "900.00", day(8).isoformat(),
                                            day(5).isoformat())]
    assert [(r["id"], r["refund_id"], r["amount"], r["reversed_on"])
            for r in shown["refund_reversals"]] == [(reversal_id, refund_id, "900.00",
                                                     day(5).isoformat())]

    # Audited: the reversal with the share it moved, and the Stripe failure naming it.
    [entry] = audit_data(db, "gift.refund_reversed")
    assert (entry["refund_id"], entry["reversal_id"], entry["reversed_on"]) == (
        refund_id, reversal_id, day(5).isoformat())
    assert entry["lab_employee_share"][0] == {"end": day(5).isoformat(), "before": "37.5%",
                                              "after": "60%", "at_cap_after": True}
    [flag] = audit_data(db, "stripe.refund_failed_later")
    assert (flag["reversal_id"], flag["failure_reason"]) == (reversal_id, "expired_or_canceled_card")

    # Staff see it reversed, and the breach.
    page = web_as("finance").get("/staff/online/").get_data(as_text=True)
    assert f"Refund reversed on {day(5).isoformat()}" in page
    assert "at or above the cap" in page and "finance must resolve it" not in page
    detail = web_as("finance").get(f"/staff/gifts/{g.id}").get_data(as_text=True)
    assert f"refund\n        {refund_id} reversed" in detail
    assert f"(reversed on {day(5).isoformat()})" in detail


def test_the_same_failure_reported_again_reverses_once(api, client, httpserver, db, lab_world):
    refunded(client, httpserver, ("re_1", 90000, 8), amount=90000)
    failure = failed("re_1", 90000, 5)
    ok(post_event(client, failure))
    before = (refund_rows(db), funding_day(db, day(10)), figures(api, 0))
    # Redelivered, and the same failure as refund.updated and charge.refund.updated.
    assert ok(post_event(client, failure)) == "duplicate: already processed"
    for event_type in ("refund.updated", "charge.refund.updated"):
        assert "already recorded" in ok(post_event(client, failed("re_1", 90000, 4, event_type)))
    # And the charge.refunded event once more: the refund is known, nothing is added.
    refunded(client, httpserver, ("re_1", 90000, 8), amount=90000)
    assert (refund_rows(db), funding_day(db, day(10)), figures(api, 0)) == before
    assert len(audit_data(db, "gift.refund_reversed")) == 1
    assert len(audit_data(db, "stripe.refund_failed_later")) == 1


def test_a_partial_refund_failed_later(api, client, httpserver, db, web_as):
    donation = start_donation(client, httpserver, db, session_id="cs_test_part", amount="50")
    paid(client, httpserver, donation, 5000, 10)
    refunded(client, httpserver, ("re_1", 2000, 8), amount=5000)
    refunded(client, httpserver, ("re_2", 1000, 7), ("re_1", 2000, 8), amount=5000)
    assert online_gift(db).refunded_minor == 3000

    ok(post_event(client, failed("re_1", 2000, 5)))
    g = online_gift(db)
    assert (g.status, g.refunded_minor, g.refund_status) == ("accepted", 1000, "partial")
    assert funding_day(db, day(10)) == (5000, 0, 1000, 0)
    assert [figures(api, n)[0] for n in (9, 8, 7, 6, 5, 0)] == [
        "50.00", "30.00", "20.00", "20.00", "40.00", "40.00"]

    # A Stripe refund made before the reversal but reported after it is dated on the
    # reversal's day, not refused (a refusal would fail the event at every delivery).
    refunded(client, httpserver, ("re_3", 500, 7), ("re_2", 1000, 7), ("re_1", 2000, 8),
             amount=5000)
    [late] = [row for row in refund_rows(db) if row[4] == "re_3"]
    assert (late[1], late[2]) == (500, day(5))
    assert [figures(api, n)[0] for n in (6, 5)] == ["20.00", "35.00"]

    # A later refund may not be dated before the reversal (it would count twice with the
    # reversed one in the windows between); on or after it, it is recorded.
    finance = api
    response = finance.post(f"/gifts/{g.id}/refund", {"amount": "5.00",
                                                      "refunded_on": day(6).isoformat()})
    assert response.status_code == 422 and "refunded_on" in response.get_json()["errors"]
    response = finance.post(f"/gifts/{g.id}/refund", {"amount": "5.00",
                                                      "refunded_on": day(5).isoformat()})
    assert response.status_code == 201, response.get_json()
    assert [figures(api, n)[0] for n in (6, 5)] == ["20.00", "30.00"]

    # The second refund fails too: the gift has the late Stripe and the staff refund left.
    ok(post_event(client, failed("re_2", 1000, 2)))
    g = online_gift(db)
    assert (g.refunded_minor, g.refund_status) == (1000, "partial")
    assert [figures(api, n)[0] for n in (3, 2)] == ["30.00", "40.00"]
    assert funding_day(db, day(10)) == (5000, 0, 1000, 0)


def test_a_refund_failed_before_its_payment_was_recorded_is_dropped(client, httpserver, db):
    donation = start_donation(client, httpserver, db, session_id="cs_test_early", amount="50")
    refunded(client, httpserver, ("re_early", 1500, 1), amount=5000)
    assert "dropped" in ok(post_event(client, failed("re_early", 1500, 0)))
    paid(client, httpserver, donation, 5000, 1)
    g = online_gift(db)
    assert g.refunded_minor == 0 and refund_rows(db) == []
    assert audit_data(db, "gift.refund_reversed") == []


@pytest.mark.parametrize("stripe_settings", [{"STRIPE_AUTO_REFUND": True}])
def test_a_rejected_gifts_failed_refund_is_money_to_return_again(api, client, httpserver, db,
                                                                  web_as):
    """The policy rejects a payment and its money goes straight back; the refund fails: the
    money is ours again, the gift stays rejected and staff can return it with a new request
    (the first idempotency key would only replay the refund that failed)."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    senior = person(api, "Ada Lovelace", email="ada@example.org")
    donation = start_donation(client, httpserver, db, session_id="cs_test_rej", amount="50")
    affiliate(api, senior["id"], lab["id"], start="2015-01-01", senior=True)
    httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        refund_object("re_auto", 5000, "pi_1", created=at(0)))
    paid(client, httpserver, donation, 5000, 0)
    g = online_gift(db)
    assert (g.status, g.refund_status) == ("rejected", "full")

    ok(post_event(client, failed("re_auto", 5000, 0)))
    g = online_gift(db)
    assert (g.status, g.refunded_minor) == ("rejected", 0)
    finance = web_as("finance")
    page = finance.get("/staff/online/").get_data(as_text=True)
    assert "The gift is rejected: return its money again." in page
    assert f'id="return-{g.id}"' in page

    [(reversal_id,)] = db.execute(select(Refund.id).where(Refund.reverses_refund_id.is_not(None)))
    httpserver.expect_oneshot_request("/v1/refunds", method="POST").respond_with_json(
        refund_object("re_again", 5000, "pi_1"))
    response = finance.post(f"/staff/online/gifts/{g.id}/return-money",
                            data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302
    keys = [req.headers["Idempotency-Key"] for req, _ in httpserver.log
            if req.path == "/v1/refunds" and req.method == "POST"]
    assert keys == ["reject-pi_1", f"reject-pi_1-after-reversal-{reversal_id}"]
    assert online_gift(db).refund_status == "full"


def test_a_failure_flagged_before_reversals_existed_can_be_reversed_by_finance(
        client, httpserver, db, web_as):
    """Databases upgraded with a refund failure only flagged (the earlier behaviour: an
    audit entry, no reversal) offer finance a button that records the reversal."""
    donation = start_donation(client, httpserver, db, session_id="cs_test_old", amount="50")
    paid(client, httpserver, donation, 5000, 10)
    refunded(client, httpserver, ("re_old", 5000, 8), amount=5000)
    [(refund_id, *_)] = refund_rows(db)
    g = online_gift(db)
    with ledger_write(db):  # what the webhook wrote before reversals existed
        audit.append(db, STRIPE, "stripe.refund_failed_later", "gift", g.id, {
            "stripe_refund_id": "re_old", "refund_id": refund_id, "amount_minor": 5000,
            "currency": "USD", "refunded_on": day(8), "failed_on": day(6),
            "failure_reason": "expired_or_canceled_card",
            "ledger": "refund still recorded: finance must resolve it"})

    viewer_page = web_as("viewer").get("/staff/online/").get_data(as_text=True)
    assert "Not reversed" in viewer_page and 'id="reverse-' not in viewer_page
    finance = web_as("finance")
    page = finance.get("/staff/online/").get_data(as_text=True)
    [entry_id] = re.findall(r'id="reverse-(\d+)"', page)
    response = submit(finance, "/staff/online/", {},
                      action=f"/staff/online/failed-refunds/{entry_id}/reverse")
    assert response.status_code == 302
    assert [row[1:4] for row in refund_rows(db)] == [(5000, day(8), None),
                                                     (-5000, day(6), refund_id)]
    assert online_gift(db).refund_status == "none"
    page = finance.get("/staff/online/").get_data(as_text=True)
    assert f"Refund reversed on {day(6).isoformat()}" in page and 'id="reverse-' not in page
    # A second post (a double click) changes nothing.
    response = finance.post(f"/staff/online/failed-refunds/{entry_id}/reverse",
                            data={"csrf_token": session_token(page)})
    assert response.status_code == 302 and len(refund_rows(db)) == 2
