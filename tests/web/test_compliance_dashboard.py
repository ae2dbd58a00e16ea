"""The compliance dashboard: charts with tables, figures that match the ledger, breaches dated,
the forecast, the counts, its JSON twin and the /api/v1/compliance/series endpoint."""

from __future__ import annotations

import calendar
import html
import re
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from app.ledger.series import funding_mix
from app.ledger.windows import daily_windows
from app.web import charts
from models import Attribution, Donor, Gift, OnlineDonation, Refund
from models.money import display_amount
from policies import percent_text, share_text
from tests import builders as b
from tests.web.ledger_reads import read

DASHBOARD = "/staff/compliance"


@pytest.fixture
def today(app) -> date:
    return app.extensions["armslength"].today()


@pytest.fixture
def world(api):
    return b.World(api)


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def section(text: str, element_id: str) -> str:
    start = text.index(f'id="{element_id}"')
    return text[start:text.index("</table>", start)] if "<table" in text[start:start + 200] \
        else text[start:start + 2000]


def refund(api, gift_id, amount, on):
    return b.ok(api.post(f"/gifts/{gift_id}/refund", {"amount": amount,
                                                      "refunded_on": on.isoformat()}))


# --- the page -------------------------------------------------------------------------------------

def test_dashboard_draws_the_share_with_its_table_and_matches_the_summary(api, web_as, world, today):
    b.gift(api, world.donor["id"], "6000.00", today - timedelta(days=40))
    assert b.gift(api, world.employee["id"], "1500.00", today - timedelta(days=20))["status"] == "accepted"
    summary = b.summary(api, today)

    text = page(web_as("viewer").get(DASHBOARD))
    assert '<svg' in text and 'id="chart-share"' in text and 'id="chart-mix"' in text
    assert 'id="chart-forecast"' in text
    assert 'role="img"' in text and 'aria-label="Lab-employee share of funding' in text
    # Each chart is followed by the same figures as a table.
    for chart_id, table_id in (("share-chart", "share-table"), ("forecast-chart", "forecast-table"),
                               ("mix-chart", "mix-table")):
        assert text.index(f'id="{chart_id}"') < text.index(f'id="{table_id}"')

    # The numbers are the API summary's.
    share_now = section(text, "share-now")
    assert summary["lab_employee_share"] == "0.200000"
    assert percent_text(Fraction(summary["lab_employee_share"]), 1) in share_now  # 20%
    assert "cap 50%" in share_now and "warning at 40%" in share_now
    headroom = section(text, "headroom")
    headroom_minor = int(summary["headroom"].replace(".", ""))
    assert f"up to {display_amount(headroom_minor, 'USD')} more from lab employees today" in headroom
    assert headroom_minor == 449999  # (1500 + x) / (7500 + x) < 0.5  ->  x < 4500.00

    # Today's row of the daily table carries the same figures.
    row = re.search(rf"<td>{today.isoformat()}</td>(.*?)</tr>", text, re.S).group(1)
    assert "7,500.00 USD" in row and "1,500.00 USD" in row and "20%" in row


def test_dashboard_needs_sign_in_and_is_open_to_every_reader(client, web_as):
    for path in (DASHBOARD, DASHBOARD + ".json", DASHBOARD + "/charts.css", DASHBOARD + "/what-if"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    for role in ("viewer", "fundraiser", "reviewer", "finance", "admin"):
        assert web_as(role).get(DASHBOARD).status_code == 200, role


def test_compliance_is_in_the_navigation(web_as):
    text = page(web_as("viewer").get("/staff/"))
    assert f'href="{DASHBOARD}"' in text


def test_charts_carry_no_inline_style_or_script_and_their_css_is_served(app, api, web_as, world,
                                                                         today):
    b.gift(api, world.donor["id"], "100.00", today)
    client = web_as("viewer")
    text = client.get(DASHBOARD).get_data(as_text=True)
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        assert "style=" not in svg and "<style" not in svg and "<script" not in svg
    assert 'rel="stylesheet" href="/staff/compliance/charts.css"' in text
    css = client.get(DASHBOARD + "/charts.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    stylesheet = css.get_data(as_text=True)
    for chart_id in ("share", "forecast", "mix", "whatif"):
        assert f"#chart-{chart_id} " in stylesheet
    # The served CSS is exactly what the charts on the page were drawn with.
    points = [charts.SharePoint(today - timedelta(days=i), Fraction(i, 400), i > 200)
              for i in range(365, -1, -1)]
    _, drawn = charts.share_chart("share", "x", points, "0.5", "0.4", "In breach: a; b")
    assert drawn in stylesheet
    # Readable without colour: the legend draws each line's dash pattern.
    assert 'stroke-dasharray="10,5"' in svgs[0] and 'stroke-dasharray="2,5"' in svgs[0]
    assert "Cap 50% (must stay below)" in svgs[0]


# --- breaches -------------------------------------------------------------------------------------

def test_breach_after_a_refund_of_non_lab_money_is_marked_with_its_dates(api, web_as, world, today):
    normal = b.gift(api, world.donor["id"], "1000.00", today - timedelta(days=30))
    assert b.gift(api, world.employee["id"], "900.00", today - timedelta(days=30))["status"] == "accepted"
    refund(api, normal["id"], "200.00", today - timedelta(days=10))  # 900 / 1700 = 52.9%
    summary = b.summary(api, today)
    assert (summary["in_breach"], summary["breach_since"]) == (True, (today - timedelta(days=10)).isoformat())

    client = web_as("viewer")
    text = page(client.get(DASHBOARD))
    assert f"In breach since {summary['breach_since']}" in section(text, "share-now")
    periods = section(text, "breach-periods")
    assert f"<td>{summary['breach_since']}</td><td>{today.isoformat()}</td>" in periods
    assert "ongoing" in periods
    # The chart's breach series is labelled with the dates and drawn with markers.
    share_svg = re.search(r'<svg[^>]*id="chart-share".*?</svg>', text, re.S).group(0)
    assert f"In breach: {summary['breach_since']} to {today.isoformat()} (ongoing)" in share_svg
    assert share_svg.count('class="dot reactive tooltip-trigger"') == 11

    data = client.get(DASHBOARD + ".json").get_json()
    assert data["series"]["breach_periods"] == [
        {"from": summary["breach_since"], "to": today.isoformat(), "days": 11, "ongoing": True}]
    assert data["summary"] == summary


def test_a_breach_that_began_before_the_range_is_dated_from_its_real_start(api, web_as, world, today):
    normal = b.gift(api, world.donor["id"], "1000.00", today - timedelta(days=60))
    b.gift(api, world.employee["id"], "900.00", today - timedelta(days=60))
    refund(api, normal["id"], "200.00", today - timedelta(days=40))
    b.gift(api, world.donor["id"], "1000.00", today - timedelta(days=20))  # ends the breach
    start, end = today - timedelta(days=30), today
    data = web_as("viewer").get(f"{DASHBOARD}.json?from={start}&to={end}").get_json()
    assert data["series"]["breach_periods"] == [{
        "from": (today - timedelta(days=40)).isoformat(),
        "to": (today - timedelta(days=21)).isoformat(), "days": 20, "ongoing": False}]
    assert data["series"]["from"] == start.isoformat() and len(data["series"]["days"]) == 31


# --- the JSON equals an independent recomputation from the gifts themselves ---------------------

def _recompute(db, ends: list[date], window_days: int) -> dict[date, tuple[int, int]]:
    """Window sums straight from gifts and refunds (not from funding_day, no prefix sums)."""
    gifts = read(db, select(Gift.id, Gift.received_on, Gift.reporting_amount_minor, Gift.lab_minor)
                 .where(Gift.status == "accepted", Gift.kind == "cash"))
    refunds = read(db, select(Refund.gift_id, Refund.refunded_on, Refund.reporting_amount_minor))
    by_gift = {g.id: g for g in gifts}
    result = {}
    for end in ends:
        start = end - timedelta(days=window_days - 1)
        total = lab = 0
        for g in gifts:
            if start <= g.received_on <= end:
                total += g.reporting_amount_minor
                lab += g.lab_minor
        refunded: dict[int, int] = {}
        for r in refunds:
            g = by_gift.get(r.gift_id)
            if g and start <= g.received_on <= end and r.refunded_on <= end:
                refunded[g.id] = refunded.get(g.id, 0) + r.reporting_amount_minor
        for gift_id, amount in refunded.items():
            g = by_gift[gift_id]
            # The lab part of a gift's refunds so far: pro rata, rounded down.
            total -= amount
            lab -= amount * g.lab_minor // g.reporting_amount_minor
        result[end] = (total, lab)
    return result


def _mix_recompute(db, start: date, end: date) -> dict[str, dict[str, int]]:
    gifts = read(db, select(Gift.id, Gift.received_on, Gift.reporting_amount_minor, Gift.lab_minor)
                 .where(Gift.status == "accepted", Gift.kind == "cash",
                        Gift.received_on >= start, Gift.received_on <= end))
    parts = read(db, select(Attribution.gift_id, Attribution.fraction_ppm, Donor.category)
                 .join(Donor, Donor.id == Attribution.donor_id))
    refunds = read(db, select(Refund.gift_id, Refund.refunded_on, Refund.reporting_amount_minor))
    months: dict[str, dict[str, int]] = {}
    for g in gifts:
        refunded = sum(r.reporting_amount_minor for r in refunds
                       if r.gift_id == g.id and r.refunded_on <= end)
        net = g.reporting_amount_minor - refunded
        lab = g.lab_minor - refunded * g.lab_minor // g.reporting_amount_minor
        m = months.setdefault(g.received_on.strftime("%Y-%m"),
                              {"total": 0, "lab": 0, "foundation_ppm": 0, "other_ppm": 0})
        m["total"] += net
        m["lab"] += lab
        for p in parts:
            if p.gift_id == g.id and p.category != "individual":
                key = "foundation_ppm" if p.category == "foundation" else "other_ppm"
                m[key] += net * p.fraction_ppm
    return months


def _minor(text: str) -> int:
    return int(text.replace(".", ""))


def test_json_and_api_series_equal_a_recomputation_from_the_ledger(app, api, api_as, web_as, db,
                                                                    world, today):
    foundation = b.org_donor(api, "Open Science Foundation", category="foundation")
    company = b.org_donor(api, "Sable Robotics Giving", b.organization(api, "Sable Robotics Inc")["id"])
    t = lambda n: today - timedelta(days=n)  # noqa: E731
    old = b.gift(api, world.donor["id"], "5000.00", t(400))  # ages out during the range
    b.gift(api, foundation["id"], "12000.00", t(300))
    b.gift(api, world.employee["id"], "2500.00", t(290))
    joint = b.gift(api, world.donor["id"], "1000.01", t(200), attributions=[
        {"donor_id": world.donor["id"], "fraction": "0.5"},
        {"donor_id": world.employee["id"], "fraction": "0.5"}])
    b.gift(api, company["id"], "777.77", t(150))
    b.gift(api, world.lab_donor["id"], "999.00", t(100))  # lab corporate money: held, not funding
    late = b.gift(api, world.employee["id"], "300.00", t(40))
    refund(api, old["id"], "1000.00", t(380))
    refund(api, joint["id"], "400.00", t(120))
    refund(api, joint["id"], "123.45", t(60))  # the lab part is taken back per gift, not per refund
    refund(api, late["id"], "300.00", t(5))
    b.gift(api, world.donor["id"], "250.00", today)

    data = web_as("viewer").get(DASHBOARD + ".json").get_json()
    series = data["series"]
    assert series == api_as("viewer").get("/compliance/series").get_json()
    days = [date.fromisoformat(d["date"]) for d in series["days"]]
    assert days[0] == t(364) and days[-1] == today and len(days) == 365
    expected = _recompute(db, days, 365)
    for point in series["days"]:
        total, lab = expected[date.fromisoformat(point["date"])]
        assert (_minor(point["total_funding"]), _minor(point["lab_employee_funding"])) == (total, lab), point
        assert point["lab_employee_share"] == share_text(Fraction(lab, total) if total else Fraction(0))
    # The last point is the summary's.
    assert series["days"][-1]["lab_employee_share"] == data["summary"]["lab_employee_share"]
    assert series["days"][-1]["total_funding"] == data["summary"]["total_funding"]

    months = _mix_recompute(db, date.fromisoformat(series["months"][0]["from"]), today)
    assert [m["month"] for m in series["months"]][-1] == today.strftime("%Y-%m")
    for month in series["months"]:
        want = months.get(month["month"], {"total": 0, "lab": 0, "foundation_ppm": 0, "other_ppm": 0})
        foundations, other = want["foundation_ppm"] // 10**6, want["other_ppm"] // 10**6
        assert _minor(month["total_funding"]) == want["total"], month
        assert _minor(month["lab_employees"]) == want["lab"], month
        assert _minor(month["foundations"]) == foundations, month
        assert _minor(month["other"]) == other, month
        assert _minor(month["individuals"]) == want["total"] - want["lab"] - foundations - other
    assert any(_minor(m["foundations"]) == 1200000 for m in series["months"])
    assert any(_minor(m["other"]) == 77777 for m in series["months"])

    # An arbitrary range through the API matches too, and so does the one-pass computation.
    start, end = t(500), t(250)
    ranged = api_as("viewer").get(f"/compliance/series?from={start}&to={end}").get_json()
    assert len(ranged["days"]) == 251
    expected = _recompute(db, [start + timedelta(days=i) for i in range(251)], 365)
    assert [(_minor(p["total_funding"]), _minor(p["lab_employee_funding"])) for p in ranged["days"]] == [
        expected[start + timedelta(days=i)] for i in range(251)]
    try:
        windows = daily_windows(db, start, end, 30)
        assert [(w.total_minor, w.lab_minor) for w in windows] == [
            _recompute(db, [w.end], 30)[w.end] for w in windows]
        assert sum(m.total_minor for m in funding_mix(db, start, end)) == sum(
            m["total"] for m in _mix_recompute(db, start, end).values())
    finally:
        db.rollback()


def test_mix_credits_organisations_named_on_anyone_s_gift_and_takes_back_their_refunds(
        api, api_as, db, world, today):
    """Organisations are credited through attributions, whoever gave the gift: an
    individual's gift with an explicit share for a foundation, a foundation's gift split
    with a company, a DAF grant (an organisation's gift credited to its advisor)."""
    foundation = b.org_donor(api, "Mix Foundation", category="foundation")
    company = b.org_donor(api, "Mix Corp Giving", b.organization(api, "Mix Corp")["id"])
    daf = b.org_donor(api, "Mix Giving Fund", category="daf_sponsor")
    t = lambda n: today - timedelta(days=n)  # noqa: E731
    shares = lambda *pairs: [{"donor_id": d["id"], "fraction": f} for d, f in pairs]  # noqa: E731
    b.gift(api, world.donor["id"], "900.00", t(600),  # before the range
           attributions=shares((world.donor, "0.5"), (foundation, "0.5")))
    joint = b.gift(api, world.donor["id"], "1000.03", t(200),
                   attributions=shares((world.donor, "0.666667"), (foundation, "0.333333")))
    split = b.gift(api, foundation["id"], "4000.00", t(150),
                   attributions=shares((foundation, "0.6"), (company, "0.4")))
    b.gift(api, foundation["id"], "300.00", t(90), attributions=shares((world.donor, "1")))
    b.gift(api, daf["id"], "750.00", t(60), attributions=shares((world.donor, "1")))
    b.gift(api, company["id"], "123.45", t(30))
    refund(api, joint["id"], "100.01", t(100))
    refund(api, split["id"], "999.99", t(10))

    start = t(364)
    series = api_as("viewer").get("/compliance/series").get_json()
    months = _mix_recompute(db, date.fromisoformat(series["months"][0]["from"]), today)
    for month in series["months"]:
        want = months.get(month["month"], {"total": 0, "lab": 0, "foundation_ppm": 0, "other_ppm": 0})
        foundations, other = want["foundation_ppm"] // 10**6, want["other_ppm"] // 10**6
        assert (_minor(month["total_funding"]), _minor(month["foundations"]),
                _minor(month["other"])) == (want["total"], foundations, other), month
        assert _minor(month["individuals"]) == want["total"] - want["lab"] - foundations - other
    assert sum(_minor(m["foundations"]) for m in series["months"]) == (
        (100003 - 10001) * 333333 // 10**6 + (400000 - 99999) * 6 // 10)
    assert sum(_minor(m["other"]) for m in series["months"]) == (
        (400000 - 99999) * 4 // 10 + 12345)
    try:
        for first, last in ((t(700), today), (t(650), t(120)), (start, t(95))):
            mix = {m.label: m for m in funding_mix(db, first, last)}
            want = _mix_recompute(db, first.replace(day=1), last)
            for label, m in mix.items():
                w = want.get(label, {"total": 0, "lab": 0, "foundation_ppm": 0, "other_ppm": 0})
                assert (m.total_minor, m.foundations_minor, m.other_minor) == (
                    w["total"], w["foundation_ppm"] // 10**6, w["other_ppm"] // 10**6), label
    finally:
        db.rollback()


def test_series_api_validates_its_range(api_as):
    viewer = api_as("viewer")
    response = viewer.get("/compliance/series?from=2026-05-01&to=2026-04-01")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"from": ["must not be after `to`"]}
    assert viewer.get("/compliance/series?from=01/05/2026").status_code == 422
    too_long = viewer.get("/compliance/series?from=2000-01-01&to=2026-01-01")
    assert too_long.status_code == 422 and "from" in too_long.get_json()["errors"]
    assert viewer.get("/compliance/series?to=9999-12-31").status_code == 422
    body = viewer.get("/compliance/series?from=2026-01-01&to=2026-01-03").get_json()
    assert [d["date"] for d in body["days"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert body["days"][0] == {"date": "2026-01-01", "total_funding": "0.00",
                               "lab_employee_funding": "0.00", "lab_employee_share": "0.000000",
                               "in_breach": False}
    assert (body["cap"], body["warning"], body["window_days"], body["currency"]) == (
        "0.50", "0.40", 365, "USD")
    assert body["months"] == [{"month": "2026-01", "from": "2026-01-01", "to": "2026-01-03",
                               "total_funding": "0.00", "lab_employees": "0.00",
                               "individuals": "0.00", "foundations": "0.00", "other": "0.00"}]


# --- forecast -------------------------------------------------------------------------------------

def test_forecast_counts_pledge_instalments_and_monthly_donations_and_warns_of_a_breach(
        app, api, web_as, world, today):
    # Non-lab money that ages out in about two months, lab money that stays.
    b.gift(api, world.donor["id"], "3000.00", today - timedelta(days=300))
    b.gift(api, world.employee["id"], "1000.00", today - timedelta(days=10))
    first_due = today + timedelta(days=1)
    b.ok(api.post("/pledges", {
        "donor_id": world.employee["id"], "amount": "600.00", "currency": "USD",
        "pledged_on": today.isoformat(),
        "instalments": [{"due_on": first_due.isoformat(), "amount": "200.00"},
                        {"due_on": (today + timedelta(days=400)).isoformat(), "amount": "400.00"}]}))
    with app.extensions["armslength"].sessions() as session:
        session.add(OnlineDonation(
            donor_id=world.donor["id"], payer_donor_id=world.donor["id"], amount_minor=5000,
            currency="USD", frequency="monthly", state="active", policy_version="2026.1",
            created_at=datetime(2026, 1, 28, 12, 0, tzinfo=UTC)))
        session.commit()

    data = web_as("viewer").get(DASHBOARD + ".json").get_json()["forecast"]
    months = data["months"]
    assert len(months) == 12
    month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    first = months[0]
    assert first["window_end"] == month_end.isoformat()
    assert _minor(first["recorded_funding"]) == 400000
    # The pledge's first instalment (a lab employee's) and this month's monthly payment,
    # when they fall in this month.
    pledged = 20000 if first_due <= month_end else 0
    monthly = 5000 if today.day < 28 else 0
    assert _minor(first["expected_lab_employee_funding"]) == pledged
    assert _minor(first["expected_funding"]) == pledged + monthly
    # Once the 3000.00 ages out, lab money dominates: a breach is forecast.
    breach = next(m for m in months if m["in_breach"])
    assert date.fromisoformat(breach["window_end"]) >= today + timedelta(days=65)
    assert all(not m["in_breach"] for m in months[:months.index(breach)])
    lab = _minor(breach["recorded_lab_employee_funding"]) + _minor(breach["expected_lab_employee_funding"])
    total = _minor(breach["recorded_funding"]) + _minor(breach["expected_funding"])
    assert lab == 120000
    assert breach["lab_employee_share"] == share_text(Fraction(lab, total))
    needed = _minor(breach["non_lab_funding_needed"])
    assert Fraction(lab, total + needed) < Fraction(1, 2) <= Fraction(lab, total + needed - 1)

    text = page(web_as("viewer").get(DASHBOARD))
    assert "A breach is coming" in text
    assert f"in the window ending {breach['window_end']}" in text


# --- counts ---------------------------------------------------------------------------------------

def test_counts_show_held_rescreened_overrides_lab_payments_and_in_kind(api, api_as, web_as, world,
                                                                         today):
    reviewer, second = api_as("reviewer"), api_as("reviewer", "second-reviewer")
    held = b.gift(api, world.lab_donor["id"], "500.00", today)  # lab corporate money
    assert held["status"] == "held"
    text = page(web_as("viewer").get(DASHBOARD))
    assert re.search(r'id="lab-evaluation-payments".*?<p class="big">0</p>.*?None, as the policy promises',
                     text, re.S)

    # A later affiliation re-screens an accepted gift: held again, flagged.
    newcomer = b.person(api, "Nia Newcomer")
    b.gift(api, newcomer["id"], "100.00", today - timedelta(days=3))
    b.affiliate(api, newcomer["id"], world.lab["id"], start="2020-01-01", senior=True,
                title="Chief Scientist")
    # A lab's payment for evaluations, rejected, then accepted by an approved override.
    payment = b.gift(api, world.lab_donor["id"], "2500.00", today, purpose="evaluation_services")
    assert payment["status"] == "rejected"
    request = b.ok(reviewer.post(f"/gifts/{payment['id']}/override",
                                 {"outcome": "accept", "reason": "contract signed before the policy"}))
    b.ok(second.post(f"/overrides/{request['id']}/approve", {}))
    b.ok(api.post("/in-kind", {"organization_id": world.lab["id"], "description": "API credits",
                               "purpose": "research", "start_date": "2025-01-01"}))
    b.ok(api.post("/in-kind", {"organization_id": world.other_org["id"], "description": "Office space",
                               "purpose": "other", "start_date": "2025-01-01",
                               "end_date": (today - timedelta(days=1)).isoformat()}))

    counts = web_as("viewer").get(DASHBOARD + ".json").get_json()["counts"]
    assert counts == {
        "period_from": (today - timedelta(days=364)).isoformat(), "period_to": today.isoformat(),
        "held_gifts": 2, "rescreen_flags": 1, "overrides_in_period": 1,
        "lab_evaluation_payments_accepted": 1, "lab_evaluation_payments_amount": "2500.00",
        "in_kind_active": 1, "in_kind_active_with_labs": 1,
    }
    text = page(web_as("viewer").get(DASHBOARD))
    assert re.search(r'id="lab-evaluation-payments".*?<p class="big">1</p>.*?The policy promises none:\s+'
                     r'2,500.00 USD accepted', text, re.S)
    assert re.search(r'id="held".*?<p class="big">2</p>.*?<strong>1</strong> flagged by a re-screen',
                     text, re.S)


def test_dashboard_range_form_and_bad_ranges(web_as, today):
    client = web_as("viewer")
    bad = client.get(f"{DASHBOARD}?from={today}&to={today - timedelta(days=1)}")
    assert bad.status_code == 422
    assert "must not be after" in html.unescape(bad.get_data(as_text=True))
    assert client.get(f"{DASHBOARD}.json?from=nonsense").status_code == 422
    short = page(client.get(f"{DASHBOARD}?from={today - timedelta(days=9)}&to={today}"))
    assert "day by day (10 days)" in short
