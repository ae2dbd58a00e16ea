"""Households in a real browser: a fundraiser records that a donor is the spouse of a lab's
senior decision-maker (the donor's earlier gift is held at once), sees the household page,
and asks to end the marriage record; a reviewer approves it in the review queue."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import browser_required
from tests.builders import affiliate, gift, ok, organization, person

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_record_a_spouse_see_the_household_and_end_it_with_a_second_person(api, staff, shot):
    today = datetime.now(UTC).date()
    lab = organization(api, "Frontier Lab", covered_lab=True)
    senior = person(api, "Carla Chief")
    affiliate(api, senior["id"], lab["id"], start="2018-01-01", senior=True, title="CEO")
    spouse = person(api, "Sam Spouse")
    earlier = gift(api, spouse["id"], "250.00", today - timedelta(days=20))
    assert earlier["status"] == "accepted"

    fundraiser = staff("fundraiser")
    fundraiser.goto(f"/staff/donors/{spouse['id']}")
    fundraiser.get_by_text("Record a relationship").click()
    fundraiser.fill("#relationship-related_donor_id", str(senior["id"]))
    fundraiser.select_option("#relationship-kind", "spouse_partner")
    fundraiser.fill("#relationship-start_date", "2015-06-01")
    fundraiser.locator("#relationship-form button[type=submit]").click()
    fundraiser.wait_for_url(re.compile(rf"/staff/donors/{spouse['id']}"))
    expect(fundraiser.locator("main")).to_contain_text("1 past gift was re-screened")
    row = fundraiser.locator("#relationship-list tbody tr", has_text="Carla Chief")
    expect(row).to_contain_text("Spouse or partner")
    shot(fundraiser, "70-relationship-recorded")
    assert ok(api.get(f"/gifts/{earlier['id']}"), 200)["status"] == "held"

    gift(api, spouse["id"], "60.00", today)
    fundraiser.get_by_role("link", name="Household and combined giving").click()
    fundraiser.wait_for_url(re.compile(r"/staff/households/\d+$"))
    expect(fundraiser.locator("#household-members")).to_contain_text("Sam Spouse")
    expect(fundraiser.locator("#household-members")).to_contain_text("Carla Chief")
    shot(fundraiser, "71-household")

    fundraiser.goto(f"/staff/donors/{spouse['id']}")
    row = fundraiser.locator("#relationship-list tbody tr", has_text="Carla Chief")
    row.locator("input[name=end_date]").fill((today - timedelta(days=400)).isoformat())
    row.get_by_role("button", name=re.compile("End")).click()
    expect(fundraiser.locator("main")).to_contain_text("waits for a second person")
    expect(row).to_contain_text("ongoing")  # nothing applied yet
    [change] = ok(api.get("/changes?status=pending"), 200)["items"]

    reviewer = staff("reviewer")
    reviewer.goto("/staff/review/")
    card = reviewer.locator(f"article#change-{change['id']}")
    expect(card).to_contain_text("Sam Spouse")
    shot(reviewer, "72-relationship-end-waits")
    reviewer.get_by_role("button", name=f"Approve change #{change['id']}").click()
    expect(reviewer.locator("main")).to_contain_text("approved")
    fundraiser.goto(f"/staff/donors/{spouse['id']}")
    expect(fundraiser.locator("#relationship-list")).to_contain_text(
        (today - timedelta(days=400)).isoformat())
    assert gift(api, spouse["id"], "15.00", today)["status"] == "accepted"
