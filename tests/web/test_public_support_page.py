"""The staff page of the public-support test: sign-in and a role first, then the worked
example's figures (docs/public-support.md) with links to the gifts behind them."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from app.db import get_session
from models import AuditEntry
from tests.public_support_example import Example


@pytest.fixture
def example(api):
    return Example(api)


def test_the_page_needs_sign_in(client):
    response = client.get("/staff/public-support/?year=2025")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_the_page_shows_the_worked_example_with_gift_links(web_as, example):
    page = web_as("viewer").get("/staff/public-support/?year=2025")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert re.search(r"Public support: <strong>81\.00%</strong>\s*— meets the 33 1/3% support test",
                     html)
    for figure in ("5,000,000.00 USD", "950,000.00 USD", "4,050,000.00 USD", "100,000.00 USD"):
        assert figure in html, figure
    contributors = html[html.index('id="contributors"'):]
    for gift in ("dana_2021", "dana_2023", "alice_2022", "bob_2024", "holdings_2023",
                 "labs_2025", "council_2024"):
        gift_id = example.gifts[gift]["id"]
        assert f'href="/staff/gifts/{gift_id}"' in contributors, gift
    assert "Alice Aster</a> + <a" in contributors
    assert "(governmental unit, not limited)" in contributors
    unusual = example.gifts["foundation_2025"]["id"]
    assert f'href="/staff/gifts/{unusual}">gift {unusual}</a>' in html
    assert "Public support</a>" in html  # in the staff navigation


def test_a_year_that_is_not_one_is_refused(web_as):
    assert web_as("viewer").get("/staff/public-support/?year=20x5").status_code == 400
    assert web_as("viewer").get("/staff/public-support/?year=3000").status_code == 400


def test_schedule_b_pages_and_csv(web_as, example):
    viewer, finance = web_as("viewer"), web_as("finance")
    staff = finance.get("/staff/public-support/schedule-b?year=2025").get_data(as_text=True)
    assert "Beacon Foundation" in staff and "Donated GPU servers" in staff
    assert "64,400.00 USD" in staff
    # Names and addresses are an export's: a viewer is shown the public copy by default,
    # and refused the staff copy.
    default = viewer.get("/staff/public-support/schedule-b?year=2025")
    assert default.status_code == 200
    assert "Beacon" not in default.get_data(as_text=True)
    assert "(public copy)" in default.get_data(as_text=True)
    assert viewer.get("/staff/public-support/schedule-b?year=2025&copy=staff").status_code == 403
    public = viewer.get("/staff/public-support/schedule-b?year=2025&copy=public")
    html = public.get_data(as_text=True)
    assert public.status_code == 200
    assert "Beacon" not in html and "Cobalt" not in html and "HYPERLINK" not in html
    assert "2,000,000.00 USD" in html

    # The staff copy's CSV is an export (finance, admin); the public copy anyone's.
    assert viewer.get("/staff/public-support/schedule-b.csv?year=2025&copy=staff").status_code == 403
    response = finance.get("/staff/public-support/schedule-b.csv?year=2025&copy=staff")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert lines[0] == ("number,name,address,donor_id,type,total,cash,noncash,"
                        "noncash_description,currency")
    assert lines[1].startswith("1,Beacon Foundation,\"'=HYPERLINK(\"\"http://x\"\") 1 Main St\"")
    assert lines[2].endswith(",\"Person, Noncash\",270000.00,200000.00,70000.00,"
                             "Donated GPU servers,USD")
    public_csv = viewer.get("/staff/public-support/schedule-b.csv?year=2025&copy=public")
    assert public_csv.status_code == 200
    text = public_csv.get_data(as_text=True)
    assert "Beacon" not in text and "HYPERLINK" not in text
    assert text.lstrip("\ufeff").splitlines()[1] == "1,Person,2000000.00,2000000.00,0.00,,USD"


def test_the_forecast_and_what_if_on_the_page(web_as, example):
    viewer = web_as("viewer")
    html = viewer.get("/staff/public-support/?year=2025").get_data(as_text=True)
    assert 'id="forecast-table"' in html and "What would a proposed gift do?" in html
    assert "Without the proposed gift" not in html
    page = viewer.get("/staff/public-support/?year=2025&proposed_amount=50,000,000.00")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Without the proposed gift" in html
    assert "below 40.00%" in html  # one new donor giving 50M leaves little public support
    bad = viewer.get("/staff/public-support/?proposed_amount=lots&proposed_on=1999-01-01")
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert 'aria-invalid="true"' in text and "plain decimal" in text and "from today to" in text


def test_the_dashboard_warns_when_the_forecast_is_low(api, web_as, monkeypatch):
    from app.web import public_support
    from tests.builders import accepted_gift, person

    # Never "slow" here, whatever the machine's load: a slow computation's answer is kept
    # for minutes (the next test), and this one would keep the first view's "no warning".
    monkeypatch.setattr(public_support, "WARNING_SLOW_SECONDS", 3600.0)
    viewer = web_as("viewer")
    assert 'id="public-support-warning"' not in viewer.get("/staff/compliance").get_data(
        as_text=True)  # no support at all: nothing to warn about
    donor = person(api, "Only Donor")
    accepted_gift(api, donor["id"], "1000.00", date.today().isoformat())
    html = viewer.get("/staff/compliance").get_data(as_text=True)
    assert 'id="public-support-warning"' in html
    assert "Public support is forecast below 40.00%" in html
    assert f"{date.today().year}: 2.00%" in html


def test_a_slow_forecast_is_refreshed_for_the_dashboard_at_most_every_few_minutes(
        api, web_as, monkeypatch):
    """On a large ledger the forecast takes seconds: the dashboard must not pay for it after
    every gift. Every computation counts as slow here (the threshold is zero)."""
    from app.web import public_support
    from tests.builders import accepted_gift, person

    monkeypatch.setattr(public_support, "WARNING_SLOW_SECONDS", 0.0)
    viewer = web_as("viewer")
    assert 'id="public-support-warning"' not in viewer.get("/staff/compliance").get_data(
        as_text=True)
    accepted_gift(api, person(api, "Only Donor")["id"], "1000.00", date.today().isoformat())
    # Within the refresh period the last warning (none) still stands...
    assert 'id="public-support-warning"' not in viewer.get("/staff/compliance").get_data(
        as_text=True)
    # ... and once it has passed, the ledger's change shows.
    monkeypatch.setattr(public_support, "WARNING_REFRESH_SECONDS", 0)
    assert 'id="public-support-warning"' in viewer.get("/staff/compliance").get_data(
        as_text=True)


def test_each_view_of_the_staff_copy_is_audited_as_an_export(app, web_as, example):
    finance, viewer = web_as("finance"), web_as("viewer")
    assert finance.get("/staff/public-support/schedule-b?year=2025").status_code == 200
    assert finance.get("/staff/public-support/schedule-b?year=2025").status_code == 200
    assert finance.get("/staff/public-support/schedule-b.csv?year=2025&copy=staff"
                       ).status_code == 200
    # Not audited: the public copy, and a refused staff copy.
    assert finance.get("/staff/public-support/schedule-b?year=2025&copy=public"
                       ).status_code == 200
    assert viewer.get("/staff/public-support/schedule-b?year=2025&copy=staff").status_code == 403
    with app.app_context():
        entries = get_session().execute(
            select(AuditEntry.actor, AuditEntry.data)
            .where(AuditEntry.action == "export.schedule_b_staff").order_by(AuditEntry.id)).all()
    assert [(actor, data["format"], data["year"], data["contributors"])
            for actor, data in entries] == [("web:web-finance@example.org", "html", 2025, 2)] * 2 + [
        ("web:web-finance@example.org", "csv", 2025, 2)]
    assert "Beacon" not in str([data for _, data in entries])
