"""Staff pages for campaigns, appeals and funds: the list with progress, a page each with
its goal, creating one with the page's own form, closing it; the gift form's fields and the
gift list's filters."""

from __future__ import annotations

import html

from sqlalchemy import select

from models import AuditEntry, Campaign
from tests.builders import gift, ok, person
from tests.web.test_gifts import check_then_record, form_data, recorded_id
from tests.webtools import csrf_token


def _post_form(client, url: str, data: dict):
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, data={**data, "csrf_token": csrf_token(page.get_data(as_text=True))})


def test_a_fundraiser_creates_a_campaign_and_sees_its_progress(api, web_as, db):
    fundraiser = web_as("fundraiser")
    response = _post_form(fundraiser, "/staff/campaigns/campaign/new", {
        "code": "Year-End", "name": "Year end 2026", "goal": "1,000.00",
        "starts_on": "2026-01-01", "description": "The big push"})
    assert response.status_code == 302, response.get_data(as_text=True)
    campaign = db.execute(select(Campaign)).scalar_one()
    db.rollback()
    assert (campaign.code, campaign.goal_minor) == ("year-end", 100000)
    donor = person(api, "Pat Giver")
    gift(api, donor["id"], "250.00", "2026-03-01", campaign_id=campaign.id)
    gift(api, donor["id"], "99.00", "2026-03-01")  # not in the campaign

    page = fundraiser.get(response.headers["Location"]).get_data(as_text=True)
    assert "250.00" in page and "25%" in page and "/donate?campaign=year-end" in page
    listed = fundraiser.get("/staff/campaigns/").get_data(as_text=True)
    assert "Year end 2026" in listed and "99.00" not in listed

    # The same code again is refused on its field; nothing is created.
    again = _post_form(fundraiser, "/staff/campaigns/campaign/new", {
        "code": "year-end", "name": "Again", "starts_on": "2026-01-01"})
    assert again.status_code == 422 and "This code is taken" in again.get_data(as_text=True)


def test_a_restricted_fund_needs_its_purpose_and_closing_is_audited(web_as, db):
    finance = web_as("finance")
    refused = _post_form(finance, "/staff/campaigns/fund/new", {
        "code": "bio", "name": "Bio", "restricted": "y"})
    assert refused.status_code == 422
    assert "a restricted fund says what its money is for" in refused.get_data(as_text=True)
    made = _post_form(finance, "/staff/campaigns/fund/new", {
        "code": "bio", "name": "Bio", "restricted": "y", "purpose": "Biosecurity evaluations"})
    assert made.status_code == 302
    url = made.headers["Location"]
    page = finance.get(url)
    token = csrf_token(page.get_data(as_text=True))
    response = finance.post(url + "/active", data={"csrf_token": token, "active": "0"})
    assert response.status_code == 302
    assert "closed" in finance.get(url).get_data(as_text=True)
    listed = finance.get("/staff/campaigns/").get_data(as_text=True)
    assert 'id="restricted-apart"' in listed and "Bio" in listed
    assert db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "fund")).scalars().all() == ["fund.created", "fund.closed"]


def test_an_appeal_names_a_campaign_that_exists(web_as):
    fundraiser = web_as("fundraiser")
    for value, message in (("abc", "has-error"), ("999999", "no such campaign")):
        refused = _post_form(fundraiser, "/staff/campaigns/appeal/new", {
            "code": "ask", "name": "Ask", "campaign_id": value, "channel": "mail"})
        assert refused.status_code == 422 and message in refused.get_data(as_text=True), value


def test_who_may_write(web_as):
    assert web_as("viewer").get("/staff/campaigns/").status_code == 200
    assert web_as("viewer").get("/staff/campaigns/campaign/new").status_code == 403
    assert web_as("reviewer").get("/staff/campaigns/fund/new").status_code == 403
    assert web_as("fundraiser").get("/staff/campaigns/nonsense/new").status_code == 404


def test_the_gift_form_records_a_designation_and_the_list_filters(api, web_as, db):
    fundraiser = web_as("fundraiser")
    campaign = ok(api.post("/campaigns", {"code": "spring", "name": "Spring",
                                          "starts_on": "2026-01-01"}))
    fund = ok(api.post("/funds", {"code": "ops", "name": "Operations"}))
    donor = person(api, "Form Giver")
    page = fundraiser.get("/staff/gifts/new").get_data(as_text=True)
    assert 'id="campaign_id"' in page and "Spring (spring)" in page
    check_page, recorded = check_then_record(fundraiser, form_data(
        donor["id"], amount="40.00", campaign_id=str(campaign["id"]), fund_id=str(fund["id"])))
    made = ok(api.get(f"/gifts/{recorded_id(recorded)}"), 200)
    assert (made["campaign_id"], made["fund_id"]) == (campaign["id"], fund["id"]), made
    other = gift(api, donor["id"], "7.00", "2026-03-03")
    listed = fundraiser.get(f"/staff/gifts/?campaign={campaign['id']}").get_data(as_text=True)
    assert "40.00" in listed and "7.00" not in listed, listed[listed.find("<table"):][:3000]
    gifts = ok(api.get(f"/gifts?fund_id={fund['id']}"), 200)["items"]
    assert [g["amount"] for g in gifts] == ["40.00"]
    detail = fundraiser.get(f"/staff/gifts/{gifts[0]['id']}").get_data(as_text=True)
    assert 'id="gift-campaign"' in detail and "Operations" in html.unescape(detail)
    assert other["campaign_id"] is None
