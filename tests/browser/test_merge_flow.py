"""One person, one record, in a real browser: the donor form says "this is probably X", and a
reviewer merges a second record into the first from the donor page, which re-screens the
second record's gift and holds it for review."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.browser.conftest import browser_required
from tests.builders import affiliate, gift, ok, organization, person

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_a_second_record_is_refused_then_a_reviewer_merges_one(api, staff, shot):
    today = datetime.now(UTC).date()
    lab = organization(api, "Frontier Lab", covered_lab=True)
    gift(api, person(api, "Dana Donor")["id"], "100000.00", today)  # no cap in the way
    morgan = person(api, "Morgan Chen", "morgan.chen@example.org")
    affiliate(api, morgan["id"], lab["id"], start="2024-01-01", senior=True,
              title="Vice President")

    fundraiser = staff("fundraiser")
    fundraiser.goto("/staff/donors/new")
    fundraiser.select_option("#type", "person")
    fundraiser.fill("#name", "Morgan Chen")
    fundraiser.fill("#email", "Morgan.Chen@Example.org")
    fundraiser.click("main button[type=submit]")
    notice = fundraiser.locator("#probably-same")
    expect(notice).to_contain_text("This is probably Morgan Chen")
    expect(notice.get_by_role("link", name="Morgan Chen")).to_have_attribute(
        "href", f"/staff/donors/{morgan['id']}")
    expect(fundraiser.locator("main")).to_contain_text("Nothing was saved.")
    shot(fundraiser, "40-donor-probably-same")

    # A second record under another address, and a gift on it: held, as the name matches
    # the lab's VP (rule possible_match), until a reviewer says who it is.
    second = person(api, "Morgan Chen", "mchen@personal.example")
    given = gift(api, second["id"], "5000.00", today)
    assert given["status"] == "held"

    reviewer = staff("reviewer")
    reviewer.goto(f"/staff/donors/{morgan['id']}")
    reviewer.get_by_role("link", name="Merge another record into this one").click()
    reviewer.wait_for_url(re.compile(rf"/staff/donors/{morgan['id']}/merge$"))
    expect(reviewer.locator("main table")).to_contain_text("mchen@personal.example")
    reviewer.fill("#duplicate_id", str(second["id"]))
    reviewer.click("main button[type=submit]")  # not confirmed: refused, nothing merged
    expect(reviewer.locator("main")).to_contain_text("Confirm that both records are one donor.")
    reviewer.check("#confirm")
    shot(reviewer, "41-merge-form")
    reviewer.click("main button[type=submit]")
    reviewer.wait_for_url(re.compile(rf"/staff/donors/{morgan['id']}$"))
    expect(reviewer.locator("main p.flash.warning")).to_contain_text(
        f"Donor {second['id']} merged into this record")
    expect(reviewer.locator("main p.flash.warning")).to_contain_text("1 gift(s) re-screened")
    expect(reviewer.locator("main")).to_contain_text("5,000.00 USD")
    shot(reviewer, "42-merged")

    reviewer.goto("/staff/review/")
    row = reviewer.locator("table.queue tbody tr", has_text=f"#{given['id']}")
    expect(row).to_contain_text("Morgan Chen")
    expect(row).to_contain_text(f"Donor records merged: donor {second['id']} (Morgan Chen)")
    shot(reviewer, "43-merged-gift-held")

    reviewer.goto(f"/staff/donors/{second['id']}")
    expect(reviewer.locator("#merged-into")).to_contain_text("This record was merged into")
    expect(reviewer.locator("#merged-into a")).to_have_attribute(
        "href", f"/staff/donors/{morgan['id']}")
    shown = ok(api.get(f"/gifts/{given['id']}"), 200)
    assert (shown["status"], shown["donor_id"]) == ("held", morgan["id"])
