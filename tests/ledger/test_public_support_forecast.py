"""The public-support forecast and what-if on the worked example (docs/public-support.md),
with a pledge from Cobalt Labs and a fixed "today" (2026-12-04), figures computed by hand
in the docs. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from app.db import get_session
from app.ledger.public_support_forecast import Expected, support_forecast
from app.presenters.public_support import rules
from tests.builders import ok
from tests.public_support_example import Example

TODAY = date(2026, 12, 4)


@pytest.fixture
def example(api):
    made = Example(api)
    ok(api.post("/pledges", {
        "donor_id": made.donors["labs"]["id"], "amount": "600000.00", "currency": "USD",
        "pledged_on": "2026-01-01", "instalments": [
            {"due_on": "2026-12-20", "amount": "300000.00"},
            {"due_on": "2027-06-01", "amount": "300000.00"}]}))
    return made


def _forecast(app, proposed=None):
    with app.app_context():
        return support_forecast(get_session(), TODAY, rules(), "USD", proposed)


def test_the_forecast_counts_recorded_and_promised_money(app, example):
    found = _forecast(app)
    assert [y.year for y in found.years] == [2026, 2027, 2028]
    got = {y.year: (y.result.total_support_minor, y.result.excess_minor,
                    y.result.percentage_text, y.expected_minor) for y in found.years}
    assert got == {
        2026: (395_000_000, 91_300_000, "76.88%", 30_000_000),
        2027: (417_000_000, 113_320_000, "72.82%", 30_000_000),
        2028: (277_000_000, 75_920_000, "72.59%", 0),
    }
    assert [(e.source, e.day, e.amount_minor) for e in found.expected] == [
        ("pledge", date(2026, 12, 20), 30_000_000), ("pledge", date(2027, 6, 1), 30_000_000)]
    assert found.warning_years == []


def test_a_proposed_large_gift_from_a_new_donor(app, example):
    found = _forecast(app, Expected(0, date(2027, 3, 1), 300_000_000, "proposed", None))
    got = {y.year: (y.without_proposed.percentage_text, y.result.percentage_text)
           for y in found.years}
    assert got == {2026: ("76.88%", "76.88%"), 2027: ("72.82%", "46.02%"),
                   2028: ("72.59%", "38.14%")}
    # 38.14% is below the rules file's warning level (40%).
    assert found.warning_years == [2028]


def test_the_api_answers_the_forecast_and_refuses_bad_input(api, example):
    body = ok(api.get("/public-support/forecast"), 200)
    assert len(body["years"]) == 3 and body["warning_below"] == "40.00%"
    body = ok(api.get("/public-support/forecast?proposed_amount=1000000.00"), 200)
    assert all(y["without_proposed"] is not None for y in body["years"])
    assert api.get("/public-support/forecast?proposed_amount=abc").status_code == 422
    assert api.get("/public-support/forecast?proposed_amount=5.00&proposed_on=2020-01-01"
                   ).status_code == 422
    assert api.get("/public-support/forecast?proposed_amount=5.00&proposed_donor_id=999999"
                   ).status_code == 422
