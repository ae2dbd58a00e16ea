"""Budget, runway and goals: exact arithmetic on known numbers, the screens, and who may write."""

from __future__ import annotations

import html
import re
from datetime import date
from fractions import Fraction

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.ledger import finance
from app.ledger.audit import Actor
from app.ledger.pledges import add_months
from models import CashSnapshot, FiscalBudget, FundraisingGoal, MonthlySpend
from models.finance import CashSnapshotCreate, FundraisingGoalCreate, MonthlySpendCreate
from tests import builders as b
from tests.web.ledger_reads import audit, objects
from tests.webtools import session_token, submit

ACTOR = Actor("test", role="admin")
FINANCE = "/staff/finance/"


@pytest.fixture
def today(app) -> date:
    return app.extensions["armslength"].today()


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def cash(db, on, amount):
    return finance.record_cash(db, CashSnapshotCreate(as_of=on, amount=amount, currency="USD"),
                               ACTOR, "USD")


def spend(db, month, amount):
    return finance.record_spend(db, MonthlySpendCreate(month=month, amount=amount, currency="USD"),
                                ACTOR, "USD")


def pledge(api, donor_id, amount, pledged_on, instalments, currency="USD"):
    return b.ok(api.post("/pledges", {
        "donor_id": donor_id, "amount": amount, "currency": currency, "pledged_on": pledged_on,
        "instalments": [{"due_on": d, "amount": a} for d, a in instalments]}))


# --- runway ---------------------------------------------------------------------------------------

def test_runway_is_cash_over_the_average_of_the_last_three_recorded_months(api, db):
    today = date(2026, 11, 15)
    cash(db, date(2026, 10, 1), "999.00")
    cash(db, date(2026, 11, 1), "1300000.00")          # the latest on or before today
    cash(db, date(2026, 12, 1), "1.00")                 # after today: not yet
    spend(db, date(2026, 7, 1), "500000.00")            # the fourth most recent: not averaged
    spend(db, date(2026, 8, 20), "100000.00")           # any day names its month
    spend(db, date(2026, 9, 1), "110000.00")
    spend(db, date(2026, 10, 1), "90000.00")
    spend(db, date(2026, 11, 1), "1000000.00")          # this month is not complete: left out

    donor = b.person(api, "Paula Pledger")
    made = pledge(api, donor["id"], "600000.00", "2026-01-01", [
        ("2026-06-01", "100000.00"),                     # paid by the payment below
        ("2026-12-01", "150000.00"),                     # 50000.00 paid, 100000.00 unpaid
        ("2027-06-01", "150000.00"),                     # unpaid, inside twelve months
        ("2027-11-15", "200000.00"),                     # twelve months ahead: outside
    ])
    b.gift(api, donor["id"], "150000.00", "2026-07-01", pledge_id=made["id"])
    pledge(api, donor["id"], "5000.00", "2026-01-01", [("2027-01-01", "5000.00")], currency="EUR")

    try:
        result = finance.runway(db, today, "USD")
    finally:
        db.rollback()
    assert result.cash.amount_minor == 130000000 and result.cash.as_of == date(2026, 11, 1)
    assert [m.month for m in result.spend] == [date(2026, 10, 1), date(2026, 9, 1), date(2026, 8, 1)]
    assert result.average_spend == Fraction(10000000)
    assert result.months == Fraction(13)
    assert result.pledged_minor == 25000000
    assert result.pledge_horizon == date(2027, 11, 15)
    assert result.months_with_pledges == Fraction(31, 2)
    assert result.pledged_elsewhere == {"EUR": 500000}
    assert (finance.months_text(result.months), finance.months_text(result.months_with_pledges)) == (
        "13.0", "15.5")


def test_runway_rounds_down_and_needs_both_figures(db):
    today = date(2026, 5, 10)
    try:
        assert finance.runway(db, today, "USD").months is None
    finally:
        db.rollback()
    cash(db, date(2026, 5, 1), "1000.00")
    spend(db, date(2026, 3, 1), "300.00")
    spend(db, date(2026, 4, 1), "301.00")
    try:
        result = finance.runway(db, today, "USD")
    finally:
        db.rollback()
    assert result.months == Fraction(100000, 30050)  # 3.3277...
    assert finance.months_text(result.months) == "3.3"
    assert result.average_spend_minor == 30050


# --- goals ----------------------------------------------------------------------------------------

def test_goal_progress_counts_gifts_and_pledges_of_the_period_once(api, db):
    world = b.World(api)
    b.gift(api, world.donor["id"], "3000.00", "2025-02-01")
    refunded = b.gift(api, world.donor["id"], "500.00", "2025-03-01")
    b.ok(api.post(f"/gifts/{refunded['id']}/refund", {"amount": "200.00", "refunded_on": "2025-03-05"}))
    b.gift(api, world.donor["id"], "800.00", "2024-12-31")             # before the start
    assert b.gift(api, world.lab_donor["id"], "999.00", "2025-04-01")["status"] == "held"
    in_period = pledge(api, world.donor["id"], "4000.00", "2025-04-01", [("2025-05-01", "4000.00")])
    b.gift(api, world.donor["id"], "1000.00", "2025-05-01", pledge_id=in_period["id"])  # not twice
    earlier = pledge(api, world.donor["id"], "2000.00", "2024-06-01", [("2025-06-01", "2000.00")])
    b.gift(api, world.donor["id"], "700.00", "2025-06-01", pledge_id=earlier["id"])  # a gift now
    b.gift(api, world.donor["id"], "100.00", "2026-01-05")             # after the deadline
    goal = finance.create_goal(db, FundraisingGoalCreate(
        name="Year-end campaign", amount="10000.00", currency="USD", starts_on="2025-01-01",
        deadline="2025-12-31"), ACTOR, "USD")

    try:
        progress = finance.goal_progress(db, goal, date(2025, 10, 15))
        after = finance.goal_progress(db, goal, date(2026, 1, 10))
        before = finance.goal_progress(db, goal, date(2024, 11, 20))
    finally:
        db.rollback()
    assert (progress.gifts_minor, progress.pledges_minor, progress.pledge_count) == (400000, 400000, 1)
    assert (progress.raised_minor, progress.remaining_minor) == (800000, 200000)
    assert progress.fraction == Fraction(4, 5)
    assert progress.months_left == 3                       # October, November, December
    assert progress.per_month_minor == 66667               # 2000.00 / 3, rounded up
    assert (after.months_left, after.per_month_minor) == (0, None)
    assert (before.months_left, before.per_month_minor) == (12, 16667)  # from the goal's start


# --- the screens and who may use them -----------------------------------------------------------

def test_finance_staff_record_figures_and_see_runway_and_goals(app, api, web_as, db, today):
    client = web_as("finance")
    this_month = today.replace(day=1)
    response = submit(client, FINANCE + "cash", {"as_of": today.isoformat(), "amount": "1200000.00"})
    assert response.status_code == 302 and response.headers["Location"].endswith(FINANCE)
    for back, amount in ((1, "80000.00"), (2, "100000.00"), (3, "120000.00")):
        month = add_months(this_month, -back).strftime("%Y-%m")
        assert submit(client, FINANCE + "spend", {"month": month, "amount": amount}).status_code == 302
    assert submit(client, FINANCE + "budget", {"fiscal_year": str(today.year),
                                               "amount": "1300000.00"}).status_code == 302
    assert submit(client, FINANCE + "goals/new", {
        "name": "Year-end campaign", "amount": "10000000.00",
        "starts_on": today.replace(month=1, day=1).isoformat(),
        "deadline": today.replace(month=12, day=31).isoformat()}).status_code == 302

    page = text(client.get(FINANCE))
    assert "runway (months) = latest cash on hand ÷ average monthly spend over the last 3 months" in page
    runway = page[page.index('id="runway-months"'):]
    assert "12.0 months" in runway  # 1,200,000 / 100,000
    assert "100,000.00 USD" in page[page.index('id="runway-figures"'):]
    assert "Year-end campaign" in page[page.index('id="goals"'):]
    assert "1,300,000.00 USD" in page[page.index('id="budget-figures"'):]

    dashboard = text(web_as("viewer").get("/staff/compliance"))
    assert re.search(r'id="runway".*?12\.0 months', dashboard, re.S)
    assert "Goal: Year-end campaign" in dashboard
    json = web_as("viewer").get("/staff/compliance.json").get_json()
    assert json["runway"]["runway_months"] == "12.0"
    assert json["runway"]["average_monthly_spend"] == "100000.00"
    assert json["goals"][0]["amount"] == "10000000.00"

    assert [e.data["amount"] for e in audit(db, "cash.recorded")] == ["1200000.00"]
    assert len(audit(db, "spend.recorded")) == 3
    assert audit(db, "budget.set")[0].data["fiscal_year"] == today.year
    assert audit(db, "goal.created")[0].data["name"] == "Year-end campaign"


def test_a_second_figure_for_a_month_replaces_the_first_and_the_audit_keeps_both(web_as, db):
    client = web_as("finance")
    assert submit(client, FINANCE + "spend", {"month": "2026-03", "amount": "100.00"}).status_code == 302
    assert submit(client, FINANCE + "spend", {"month": "2026-03", "amount": "150.00"}).status_code == 302
    rows = objects(db, select(MonthlySpend))
    assert [(r.month, r.amount_minor) for r in rows] == [(date(2026, 3, 1), 15000)]
    assert [(e.data["amount"], e.data["previous_amount"]) for e in audit(db, "spend.recorded")] == [
        ("100.00", None), ("150.00", "100.00")]


def test_forms_refuse_bad_input_and_write_nothing(web_as, db):
    client = web_as("finance")
    response = submit(client, FINANCE + "cash", {"as_of": "2026-01-01", "amount": "12.345"})
    assert response.status_code == 422 and "would need rounding" in text(response)
    response = submit(client, FINANCE + "goals/new", {
        "name": "Backwards", "amount": "100.00", "starts_on": "2026-06-01", "deadline": "2026-01-01"})
    assert response.status_code == 422
    assert "deadline must not be before the start date" in text(response)
    response = submit(client, FINANCE + "budget", {"fiscal_year": "1999", "amount": "1.00"})
    assert response.status_code == 422
    assert submit(client, FINANCE + "cash", {"as_of": "2026-01-01", "amount": "0"}).status_code == 302
    assert objects(db, select(FundraisingGoal)) == [] and objects(db, select(FiscalBudget)) == []
    assert [c.amount_minor for c in objects(db, select(CashSnapshot))] == [0]


def test_readers_may_look_but_only_finance_and_admins_may_record(client, web_as):
    viewer = web_as("viewer")
    assert viewer.get(FINANCE).status_code == 200
    assert "Record cash on hand" not in text(viewer.get(FINANCE))
    token = session_token(viewer.get(FINANCE).get_data(as_text=True))
    for path in ("cash", "spend", "budget", "goals/new"):
        assert viewer.get(FINANCE + path).status_code == 403
        assert viewer.post(FINANCE + path, data={"csrf_token": token, "amount": "1.00",
                                                 "as_of": "2026-01-01"}).status_code == 403
    fundraiser = web_as("fundraiser")
    token = session_token(fundraiser.get(FINANCE).get_data(as_text=True))
    assert fundraiser.post(FINANCE + "cash", data={"csrf_token": token}).status_code == 403
    for path in ("", "cash", "goals/new"):
        response = client.get(FINANCE + path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    response = client.post(FINANCE + "cash", data={"amount": "1.00"})
    assert response.status_code in (302, 400)  # never written: sign-in (or the CSRF check) first
    assert web_as("admin").get(FINANCE + "cash").status_code == 200
    assert 'href="/staff/finance/"' in text(viewer.get("/staff/"))


def test_multi_year_pledges_show_paid_due_and_overdue_by_year(api, web_as, today):
    donor = b.person(api, "Mae Multiyear")
    last_year, next_year = today.year - 1, today.year + 1
    made = pledge(api, donor["id"], "16000000.00", f"{last_year}-01-01", [
        (f"{last_year}-06-01", "5000000.00"),
        (f"{last_year}-12-01", "1000000.00"),
        (f"{next_year}-06-01", "5000000.00"),
        (f"{next_year + 1}-06-01", "5000000.00"),
    ])
    b.accepted_gift(api, donor["id"], "5500000.00", f"{last_year}-06-15", pledge_id=made["id"])
    single = pledge(api, donor["id"], "100.00", today.isoformat(), [(today.isoformat(), "100.00")])

    page = text(web_as("viewer").get(FINANCE))
    section = page[page.index(f'id="pledge-{made["id"]}"'):]
    section = section[:section.index("</table>")]
    rows = re.findall(r"<tr><td>(\d{4})</td>(.*?)</tr>", section, re.S)
    figures = {int(year): re.findall(r"([\d,]+\.\d\d) USD", cells) for year, cells in rows}
    assert figures == {
        last_year: ["6,000,000.00", "5,500,000.00", "0.00", "500,000.00"],
        next_year: ["5,000,000.00", "0.00", "5,000,000.00", "0.00"],
        next_year + 1: ["5,000,000.00", "0.00", "5,000,000.00", "0.00"],
    }
    assert f'id="pledge-{single["id"]}"' not in page  # one year only


def test_finance_tables_check_their_numbers(db):
    for row in (FiscalBudget(fiscal_year=2026, amount_minor=0, currency="USD"),
                FiscalBudget(fiscal_year=1800, amount_minor=1, currency="USD"),
                CashSnapshot(as_of=date(2026, 1, 1), amount_minor=-1, currency="USD"),
                MonthlySpend(month=date(2026, 1, 1), amount_minor=-5, currency="USD"),
                FundraisingGoal(name="x", amount_minor=100, currency="USD",
                                starts_on=date(2026, 2, 1), deadline=date(2026, 1, 1))):
        db.add(row)
        with pytest.raises(IntegrityError):
            db.flush()
        db.rollback()


def test_finance_figures_are_kept_in_the_reporting_currency(db):
    from app.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as error:
        finance.record_cash(db, CashSnapshotCreate(as_of=date(2026, 1, 1), amount="1.00",
                                                   currency="EUR"), ACTOR, "USD")
    assert "reporting currency USD" in error.value.errors["currency"][0]
    assert objects(db, select(CashSnapshot)) == []
