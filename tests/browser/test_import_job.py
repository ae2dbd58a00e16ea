"""A CSV import in a real browser: a fundraiser uploads files on the import page, lands on
the job's page, which refreshes by itself (no script needed) from queued to a progress bar
to the result, while the real huey consumer runs the job."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import browser_required

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

#: Enough gifts that the import runs for several of the page's 2-second refreshes.
GIFTS = 15000


def test_upload_a_csv_see_progress_and_the_result(staff, shot, tmp_path, request, db):
    donors = tmp_path / "donors.csv"
    donors.write_text("external_id,type,name\nB1,person,Bea Browser\nB2,person,Cal Chrome\n")
    gifts = tmp_path / "gifts.csv"
    gifts.write_text("external_ref,donor_external_id,amount,currency,received_on\n" + "".join(
        f"BG{i},B{i % 2 + 1},{5 + i % 40}.00,USD,2025-{1 + i % 12:02d}-{1 + i % 28:02d}\n"
        for i in range(GIFTS)))

    page = staff("fundraiser")
    page.goto("/staff/import/")
    page.set_input_files("#donors", str(donors))
    page.set_input_files("#gifts", str(gifts))
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url(re.compile(r"/staff/jobs/\d+$"))
    expect(page.locator("#job-status")).to_have_text("queued")
    expect(page.get_by_text("Waiting for the worker")).to_be_visible()
    shot(page, "80-import-job-queued")

    request.getfixturevalue("job_worker")  # the worker starts only now
    expect(page.locator("#job-progress")).to_be_visible(timeout=60_000)
    expect(page.locator("#job-status")).to_have_text("running")
    shot(page, "81-import-job-running")

    expect(page.get_by_role("heading", name="Imported")).to_be_visible(timeout=240_000)
    expect(page.locator("#job-status")).to_have_text("done")
    expect(page.locator("main")).to_contain_text(f"2 donors, 0 affiliations and {GIFTS} gifts")
    shot(page, "82-import-job-done")
