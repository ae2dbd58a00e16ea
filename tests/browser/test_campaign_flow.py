"""Campaigns, appeals and funds in a real browser: a fundraiser creates a campaign with a
goal and a restricted fund on the page's own forms, records a gift to both from the gift
form, sees the campaign's progress, filters the gift list, and reads the giving by fund
(restricted apart) on the reports page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.browser.conftest import browser_required
from tests.builders import ok, person

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_create_a_campaign_and_a_fund_record_a_gift_and_see_progress(api, staff, shot):
    today = datetime.now(UTC).date()
    donor = person(api, "Gia Giver", "gia@example.org")

    fundraiser = staff("fundraiser")
    fundraiser.goto("/staff/campaigns/")
    fundraiser.get_by_role("link", name="New campaign").click()
    fundraiser.fill("#code", "year-end-flow")
    fundraiser.fill("#name", "Year-end flow")
    fundraiser.fill("#goal", "1,000.00")
    fundraiser.fill("#starts_on", today.replace(month=1, day=1).isoformat())
    fundraiser.locator("#campaign-form button[type=submit]").click()
    fundraiser.wait_for_url(re.compile(r"/staff/campaigns/campaign/\d+$"))
    campaign_url = fundraiser.url

    fundraiser.goto("/staff/campaigns/fund/new")
    fundraiser.fill("#code", "bio-flow")
    fundraiser.fill("#name", "Biosecurity evaluations")
    fundraiser.check("#restricted")
    fundraiser.fill("#purpose", "Dangerous-capability evaluations in biosecurity")
    fundraiser.locator("#fund-form button[type=submit]").click()
    expect(fundraiser.locator("#fund-facts")).to_contain_text("restricted")

    fundraiser.goto("/staff/gifts/new")
    fundraiser.select_option("#donor_id", str(donor["id"]))
    fundraiser.fill("#amount", "400.00")
    fundraiser.fill("#currency", "USD")
    fundraiser.fill("#received_on", today.isoformat())
    fundraiser.select_option("#purpose", "restricted")
    fundraiser.select_option("#campaign_id", label="Year-end flow (year-end-flow)")
    fundraiser.select_option("#fund_id", label="Biosecurity evaluations (bio-flow)")
    shot(fundraiser, "70-gift-form-campaign-fund")
    fundraiser.get_by_role("button", name=re.compile("Check")).click()
    fundraiser.get_by_role("button", name=re.compile("Record gift")).click()
    fundraiser.wait_for_url(re.compile(r"/staff/gifts/\d+$"))
    expect(fundraiser.locator("#gift-campaign")).to_contain_text("Year-end flow")
    expect(fundraiser.locator("#gift-fund")).to_contain_text("restricted")

    fundraiser.goto(campaign_url)
    expect(fundraiser.locator("#raised")).to_contain_text("400.00 USD")
    expect(fundraiser.locator("#goal")).to_contain_text("40%")
    expect(fundraiser.locator("#progress progress")).to_be_visible()
    shot(fundraiser, "71-campaign-progress")

    fundraiser.goto("/staff/gifts/")
    fundraiser.select_option("#campaign", label="Year-end flow (year-end-flow)")
    fundraiser.get_by_role("button", name="Filter").click()
    expect(fundraiser.locator("main table tbody tr")).to_have_count(1)

    fundraiser.goto(f"/staff/reports/?year={today.year}")
    expect(fundraiser.locator("#restricted-total")).to_contain_text("400.00")
    expect(fundraiser.locator("#by-fund")).to_contain_text("Biosecurity evaluations")
    expect(fundraiser.locator("#by-campaign-chart svg")).to_be_visible()
    fundraiser.locator("#by-designation").scroll_into_view_if_needed()
    shot(fundraiser, "72-reports-by-campaign-and-fund")

    [listed] = ok(api.get("/campaigns"), 200)["items"]
    assert (listed["code"], listed["raised"], listed["progress"]) == ("year-end-flow", "400.00",
                                                                      "0.400000")
