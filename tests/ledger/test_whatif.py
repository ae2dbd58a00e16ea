"""The what-if replay: other policy numbers, the same ledger, nothing written.

Each scenario is a recorded ledger whose answer is known by hand.
"""

from __future__ import annotations

import html
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from app.ledger import whatif
from app.ledger.summary import compliance_summary
from policies import PolicyError
from tests import builders as b
from tests.api.helpers import snapshot
from tests.webtools import csrf_token, page_form, submit

START, END = date(2025, 1, 1), date(2025, 12, 31)
PAGE = "/staff/compliance/what-if"


@pytest.fixture
def world(api):
    return b.World(api)


def run(db, policy, start=START, end=END, **numbers) -> whatif.WhatIfResult:
    try:
        return whatif.replay(db, policy, whatif.what_if_policy(policy, **numbers), start, end)
    finally:
        db.rollback()


def summary_at(db, policy, day):
    try:
        return compliance_summary(db, day, policy, "USD")
    finally:
        db.rollback()


def test_a_lower_cap_turns_an_accepted_lab_employee_gift_into_a_reject(api, db, policy, world):
    b.gift(api, world.donor["id"], "1000.00", "2025-03-01")
    target = b.gift(api, world.employee["id"], "450.00", "2025-03-10")  # 450 / 1450 = 31%
    b.gift(api, world.employee["id"], "100.00", "2025-03-20")
    b.gift(api, world.employee["id"], "300.00", "2025-04-01")
    assert target["status"] == "accepted"

    result = run(db, policy, end=date(2025, 4, 30), cap=Decimal("0.3"))
    assert result.replayed == 4
    assert [(d.gift_id, d.actual_status, d.current_outcome, d.whatif_outcome)
            for d in result.differences] == [(target["id"], "accepted", "accept", "reject")]
    difference = result.differences[0]
    assert difference.reasons == [
        "Lab-employee money would reach 31% of funding on the gift date; it must stay below 30%."]
    assert (difference.share_before, difference.share_after) == (Fraction(0), Fraction(450, 1450))
    assert (result.whatif_policy.cap, result.whatif_policy.warning) == (Decimal("0.3"), Decimal("0.3"))
    # Without the 450.00 the later gifts still pass; the share ends lower.
    assert (result.whatif.total_minor, result.whatif.lab_minor) == (140000, 40000)
    assert (result.current.total_minor, result.current.lab_minor) == (185000, 85000)
    actual = summary_at(db, policy, date(2025, 4, 30))
    assert (result.current.total_minor, result.current.lab_minor) == (actual.total_minor, actual.lab_minor)
    assert result.whatif.share == Fraction(2, 7)


def test_a_shorter_cooling_off_turns_a_rejected_ex_seniors_gift_into_an_accept(api, db, policy, world):
    former = b.person(api, "Frances Former")
    b.affiliate(api, former["id"], world.lab["id"], start="2019-01-01", end="2025-06-30",
                senior=True, title="VP Research")
    b.gift(api, world.donor["id"], "5000.00", "2025-02-01")
    target = b.gift(api, former["id"], "200.00", "2025-09-01")  # 63 days after she left
    assert target["status"] == "rejected"
    b.gift(api, world.employee["id"], "100.00", "2025-10-01")

    result = run(db, policy, cooling_off_days=30)
    assert [(d.gift_id, d.actual_status, d.current_outcome, d.whatif_outcome)
            for d in result.differences] == [(target["id"], "rejected", "reject", "accept")]
    assert result.differences[0].reasons == [
        "No longer applies: No senior decision-maker at a covered lab."]
    # Accepted in the what-if, and no longer lab-employee money: 100 / 5300.
    assert (result.whatif.total_minor, result.whatif.lab_minor) == (530000, 10000)
    assert (result.current.total_minor, result.current.lab_minor) == (510000, 10000)

    # A cooling-off period long enough keeps her gift rejected.
    assert run(db, policy, cooling_off_days=90).differences == []


def test_a_stricter_cap_can_free_room_for_a_later_gift(api, db, policy, world):
    """Rejecting an early gift leaves room in the window for one the policy actually rejected."""
    b.gift(api, world.donor["id"], "1000.00", "2025-05-01")
    first = b.gift(api, world.employee["id"], "600.00", "2025-05-02")   # 37.5%: accepted
    second = b.gift(api, world.employee["id"], "500.00", "2025-05-03")  # 1100 / 2100: rejected
    assert (first["status"], second["status"]) == ("accepted", "rejected")

    result = run(db, policy, cap=Decimal("0.35"))
    assert [(d.gift_id, d.current_outcome, d.whatif_outcome) for d in result.differences] == [
        (first["id"], "accept", "reject"), (second["id"], "reject", "accept")]
    assert result.differences[1].share_after == Fraction(500, 1500)
    assert (result.whatif.total_minor, result.whatif.lab_minor) == (150000, 50000)
    assert result.current.share == Fraction(600, 1600)


def test_a_shorter_window_lets_old_funding_age_out(api, db, policy, world):
    b.gift(api, world.donor["id"], "1000.00", "2025-01-10")
    target = b.gift(api, world.employee["id"], "400.00", "2025-03-01")
    assert target["status"] == "accepted"
    result = run(db, policy, window_days=30)
    assert [(d.gift_id, d.whatif_outcome) for d in result.differences] == [(target["id"], "reject")]
    assert result.whatif.window_days == 30
    assert (result.whatif.total_minor, result.whatif.lab_minor) == (0, 0)  # at year end


def test_unchanged_numbers_change_nothing_and_match_the_ledger(api, api_as, db, policy, world):
    """Refunds, held and overridden gifts, funding before the range: the current replay's
    totals are the ledger's own, and the same numbers decide every gift the same way."""
    reviewer, second = api_as("reviewer"), api_as("reviewer", "second-reviewer")
    b.gift(api, world.donor["id"], "3000.00", "2024-11-15")  # before the range
    old = b.gift(api, world.employee["id"], "1000.00", "2024-12-01")
    b.ok(api.post(f"/gifts/{old['id']}/refund", {"amount": "250.00", "refunded_on": "2025-02-01"}))
    joint = b.gift(api, world.donor["id"], "1000.01", "2025-03-01", attributions=[
        {"donor_id": world.donor["id"], "fraction": "0.5"},
        {"donor_id": world.employee["id"], "fraction": "0.5"}])
    b.ok(api.post(f"/gifts/{joint['id']}/refund", {"amount": "333.33", "refunded_on": "2025-04-01"}))
    b.ok(api.post(f"/gifts/{joint['id']}/refund", {"amount": "0.03", "refunded_on": "2025-05-01"}))
    held = b.gift(api, world.lab_donor["id"], "700.00", "2025-06-01")
    b.ok(reviewer.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "vetted"}))
    big = b.gift(api, world.employee["id"], "9000.00", "2025-07-01")
    assert big["status"] == "rejected"
    request = b.ok(reviewer.post(f"/gifts/{big['id']}/override",
                                 {"outcome": "accept", "reason": "board approved"}))
    b.ok(second.post(f"/overrides/{request['id']}/approve", {}))
    b.gift(api, world.employee["id"], "10.00", "2025-08-01")  # rejected: the window is in breach
    before = snapshot(db)

    result = run(db, policy, cap=policy.cap, window_days=policy.window_days,
                 cooling_off_days=policy.cooling_off_days)
    assert result.differences == []
    assert result.replayed == 4
    for day in (date(2025, 1, 1), date(2025, 3, 1), date(2025, 4, 1), date(2025, 7, 1), END):
        actual = summary_at(db, policy, day)
        replayed = next(d for d in result.days if d.day == day)
        assert replayed.current == replayed.whatif == actual.lab_employee_share, day
    actual = summary_at(db, policy, END)
    assert (result.current.total_minor, result.current.lab_minor) == (actual.total_minor, actual.lab_minor)
    assert (result.whatif.total_minor, result.whatif.lab_minor) == (actual.total_minor, actual.lab_minor)
    assert result.current_breach_days == result.whatif_breach_days > 0
    assert snapshot(db) == before  # a replay writes nothing


def test_what_if_numbers_are_checked_like_a_policy_document(policy):
    with pytest.raises(PolicyError, match="cap must lie strictly between 0 and 1"):
        whatif.what_if_policy(policy, cap=Decimal("1.5"))
    with pytest.raises(PolicyError, match="window_days"):
        whatif.what_if_policy(policy, window_days=0)
    with pytest.raises(PolicyError, match="cooling_off_days"):
        whatif.what_if_policy(policy, cooling_off_days=10**6)
    lowered = whatif.what_if_policy(policy, cap=Decimal("0.2"))
    assert (lowered.cap, lowered.warning, lowered.window_days) == (Decimal("0.2"), Decimal("0.2"), 365)
    assert lowered.outcomes == policy.outcomes and lowered.version == f"{policy.version} (what-if)"


def test_the_running_funding_answers_like_the_window_sums():
    from app.ledger.windows import RefundedGift

    run_ = whatif.RunningFunding(date(2025, 1, 1), date(2025, 3, 1), 10)
    run_.add_gift(date(2025, 1, 5), 1000, 400)
    run_.add_gift(date(2025, 1, 12), 500, 0)
    run_.add_refunds(RefundedGift(date(2025, 1, 5), 400, 1000, [(date(2025, 1, 8), 250),
                                                                 (date(2025, 1, 9), 1)]))
    totals = {d: (w.total_minor, w.lab_minor) for d in
              (date(2025, 1, 7), date(2025, 1, 8), date(2025, 1, 9), date(2025, 1, 14),
               date(2025, 1, 15)) for w in [run_.window(d)]}
    assert totals == {
        date(2025, 1, 7): (1000, 400), date(2025, 1, 8): (750, 300), date(2025, 1, 9): (749, 300),
        date(2025, 1, 14): (1249, 300), date(2025, 1, 15): (500, 0)}


# --- the page -------------------------------------------------------------------------------------

def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_what_if_page_by_get_and_by_post_writes_nothing(api, web_as, db, world):
    b.gift(api, world.donor["id"], "1000.00", "2025-03-01")
    target = b.gift(api, world.employee["id"], "450.00", "2025-03-10")
    client = web_as("viewer")
    before = snapshot(db)

    blank = client.get(PAGE)
    assert blank.status_code == 200
    assert 'value="0.50"' in _text(blank) and "Gifts decided differently" not in _text(blank)

    response = client.get(f"{PAGE}?cap=0.3&start=2025-01-01&end=2025-06-30")
    text = _text(response)
    assert response.status_code == 200
    assert "Result: 1 of 2 gift(s) decided differently" in text
    row = text[text.index('id="whatif-differences"'):]
    assert f">Gift {target['id']}</a>" in row and "2025-03-10" in row and "Lee Employee" in row
    assert "Accepted" in row and "Rejected" in row
    assert "it must stay below 30%" in row
    assert 'id="chart-whatif"' in text and 'id="whatif-days"' in text

    posted = submit(client, PAGE, {"cap": "30%", "window_days": "365", "cooling_off_days": "365",
                                   "start": "2025-01-01", "end": "2025-06-30"})
    assert posted.status_code == 200
    assert "Result: 1 of 2 gift(s) decided differently" in _text(posted)
    assert snapshot(db) == before


def test_what_if_page_refuses_bad_input_and_a_post_without_its_token(web_as):
    client = web_as("viewer")
    bad = client.get(f"{PAGE}?cap=1.5")
    assert bad.status_code == 422
    assert "cap must lie strictly between 0 and 1" in _text(bad)
    assert client.get(f"{PAGE}?cap=abc").status_code == 422
    assert client.get(f"{PAGE}?window_days=0").status_code == 422
    backwards = client.get(f"{PAGE}?start=2025-06-01&end=2025-01-01")
    assert backwards.status_code == 422 and "must not be after the end" in _text(backwards)
    assert client.post(PAGE, data={"cap": "0.3"}).status_code == 400
    page = client.get(PAGE)
    token = csrf_token(page.get_data(as_text=True), PAGE)  # the what-if form's own
    assert client.post(PAGE, data={"cap": "0.3", "csrf_token": token}).status_code == 200


@pytest.mark.parametrize("role", ["viewer", "fundraiser", "reviewer", "finance", "admin"])
def test_every_role_can_replay_with_the_form_exactly_as_the_page_gives_it(api, web_as, world, role):
    """The form as a browser submits it: its own action, hidden fields and prefilled inputs."""
    b.gift(api, world.donor["id"], "1000.00", "2025-03-01")
    client = web_as(role)
    form = page_form(client.get(PAGE).get_data(as_text=True), PAGE)
    assert form.action == PAGE and form.fields.get("csrf_token")
    assert {"cap", "window_days", "cooling_off_days", "start", "end"} <= set(form.fields)
    untouched = client.post(form.action, data=form.fields)
    assert untouched.status_code == 200, _text(untouched)
    assert "decided differently" in _text(untouched)

    typed = client.post(form.action, data={**form.fields, "cap": "0.2", "start": "2025-01-01",
                                           "end": "2025-06-30"})
    assert typed.status_code == 200
    assert "Result: 0 of 1 gift(s) decided differently" in _text(typed)


def test_what_if_needs_sign_in(client):
    response = client.get(PAGE + "?cap=0.3")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
