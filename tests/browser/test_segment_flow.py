"""Donor segments in a real browser: a fundraiser filters the donors list by lifetime giving
(typed with a thousands separator) and a tag, saves the search as a segment through the
page's own form, finds it on the segments page and downloads its CSV, which holds exactly
the segment's donors with spreadsheet formulas neutralised."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tests.browser.conftest import browser_required
from tests.builders import gift, ok, person

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_save_a_filtered_donors_list_as_a_segment_and_export_it(api, staff, shot):
    big = person(api, "=Big Giver")
    tagged = person(api, "Tagged Giver")
    small = person(api, "Small Giver")
    untagged = person(api, "Untagged Big")
    for donor, amount in ((big, "1500.00"), (tagged, "2500.00"), (small, "40.00"),
                          (untagged, "3000.00")):
        gift(api, donor["id"], amount, "2026-01-10")
    for donor in (big, tagged, small):
        ok(api.put(f"/donors/{donor['id']}/tags", {"tags": ["gala-2026"]}), 200)

    page = staff("fundraiser")
    page.goto("/staff/donors/")
    page.locator("details.more-filters > summary").click()
    page.fill("#f-giving_min", "1,000")
    page.select_option("#f-tag", "gala-2026")
    page.locator("#donor-filter button[type=submit]").click()
    page.wait_for_url(re.compile(r"giving_min=1%2C000"))
    expect(page.locator("#donor-count")).to_contain_text("2 donors match the filter")
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("main table")).not_to_contain_text("Untagged Big")
    shot(page, "80-donors-filtered")

    page.get_by_role("link", name="Save this search as a segment").click()
    page.wait_for_url(re.compile(r"/staff/segments/new\?"))
    expect(page.locator("main")).to_contain_text("finds 2 donors now")
    page.fill("#name", "Gala major givers")
    page.get_by_role("button", name="Save segment").click()
    page.wait_for_url(re.compile(r"/staff/donors/\?segment=\d+"))
    expect(page.locator("h1")).to_contain_text("Gala major givers")
    expect(page.locator("main table tbody tr")).to_have_count(2)
    shot(page, "81-segment-saved")

    page.goto("/staff/segments/")
    row = page.locator("main table tbody tr", has_text="Gala major givers")
    expect(row).to_contain_text("Lifetime giving from: 1,000 USD")
    expect(row).to_contain_text("Tag: gala-2026")
    shot(page, "82-segments")
    with page.expect_download() as download_info:
        row.get_by_role("button", name=re.compile("Export CSV")).click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert sorted(int(r["donor_id"]) for r in exported) == sorted([big["id"], tagged["id"]])
    assert {r["name"] for r in exported} == {"'=Big Giver", "Tagged Giver"}
