"""Reports by campaign, appeal and fund: a year's accepted cash net of refunds per record,
restricted money apart, charts and CSV (formulas neutralised)."""

from __future__ import annotations

import csv
import io
import re

from app.ledger import reports
from tests.builders import gift, ok, person

Y = 2025


def _world(api) -> dict:
    campaign = ok(api.post("/campaigns", {"code": "spring", "name": "=Spring push",
                                          "starts_on": "2025-01-01", "goal": "500.00"}))
    appeal = ok(api.post("/appeals", {"code": "letter", "name": "Spring letter",
                                      "campaign_id": campaign["id"]}))
    bio = ok(api.post("/funds", {"code": "bio", "name": "Bio fund", "restricted": True,
                                 "purpose": "Biosecurity evaluations"}))
    ops = ok(api.post("/funds", {"code": "ops", "name": "Operations"}))
    ada, bo = person(api, "Ada"), person(api, "Bo")
    first = gift(api, ada["id"], "300.00", "2025-03-01", appeal_id=appeal["id"], fund_id=bio["id"])
    gift(api, bo["id"], "100.00", "2025-04-01", campaign_id=campaign["id"], fund_id=ops["id"])
    gift(api, bo["id"], "40.00", "2025-05-01")  # names nothing
    gift(api, ada["id"], "1000.00", "2024-05-01", fund_id=bio["id"])  # another year
    ok(api.post(f"/gifts/{first['id']}/refund", {"amount": "20.00", "refunded_on": "2025-06-01"}))
    return {"campaign": campaign, "appeal": appeal, "bio": bio, "ops": ops}


def test_the_ledger_report_counts_the_year_net_of_refunds(api, db):
    made = _world(api)
    report = reports.by_designation(db, Y, "USD")
    db.rollback()
    by_campaign = {(r.id, r.total_minor, r.gifts) for r in report.rows["campaign"]}
    assert by_campaign == {(made["campaign"]["id"], 38000, 2), (None, 4000, 1)}
    funds = {r.id: (r.total_minor, r.restricted) for r in report.rows["fund"]}
    assert funds == {made["bio"]["id"]: (28000, True), made["ops"]["id"]: (10000, False),
                     None: (4000, False)}
    assert (report.restricted_minor(), report.unrestricted_minor()) == (28000, 14000)


def test_the_reports_page_shows_them_and_the_csv_is_neutralised(api, web_as):
    made = _world(api)
    fundraiser = web_as("fundraiser")
    page = fundraiser.get(f"/staff/reports/?year={Y}").get_data(as_text=True)
    assert 'id="by-campaign-chart"' in page and 'id="by-fund"' in page
    assert re.search(r'id="restricted-total">280\.00', page)
    link = re.search(r'href="(/staff/reports/giving-by/funds\.csv[^"]*)"', page).group(1)
    response = fundraiser.get(link.replace("&amp;", "&"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:4] == ["id", "code", "name", "restricted"]
    assert [r[1] for r in rows[1:]] == ["bio", "ops", ""]
    assert rows[1][6] == "280.00"
    campaigns_csv = fundraiser.get(f"/staff/reports/giving-by/campaigns.csv?year={Y}")
    text = campaigns_csv.get_data(as_text=True)
    assert "'=Spring push" in text  # a formula typed as a name is not a formula in Excel
    assert made["campaign"]["id"]
    assert web_as("viewer").get(f"/staff/reports/giving-by/funds.csv?year={Y}").status_code == 403
    assert fundraiser.get("/staff/reports/giving-by/nothing.csv").status_code == 404
