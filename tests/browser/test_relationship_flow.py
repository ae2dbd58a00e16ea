"""The donor's page as the home of the relationship, in a real browser: a fundraiser logs a
call, adds a task for themself, finds it under My tasks, ticks it off, and marks the donor
do-not-contact."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import browser_required
from tests.builders import gift, ok, person

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_log_a_call_add_a_task_tick_it_off_and_stop_contact(api, staff, shot):
    today = datetime.now(UTC).date()
    donor = person(api, "Rosa Relationship", "rosa@example.org")
    gift(api, donor["id"], "250.00", today)
    due = today + timedelta(days=3)

    fundraiser = staff("fundraiser")
    fundraiser.goto(f"/staff/donors/{donor['id']}")
    expect(fundraiser.locator("#giving-summary")).to_contain_text("250.00 USD")

    fundraiser.get_by_text("Record a call, meeting, e-mail or event").click()
    fundraiser.select_option("#interaction-kind", "call")
    fundraiser.fill("#interaction-occurred_on", today.isoformat())
    fundraiser.fill("#interaction-summary", "Thanked her for the gift")
    fundraiser.fill("#interaction-note", "She would like the annual report.")
    fundraiser.locator("#interaction-form button[type=submit]").click()
    fundraiser.wait_for_url(re.compile(rf"/staff/donors/{donor['id']}"))
    expect(fundraiser.locator("#timeline")).to_contain_text("Thanked her for the gift")
    expect(fundraiser.locator("#timeline")).to_contain_text("She would like the annual report.")

    fundraiser.get_by_text("Add a task").click()
    fundraiser.fill("#task-title", "Post the annual report")
    fundraiser.fill("#task-due_on", due.isoformat())
    fundraiser.locator("#task-form button[type=submit]").click()
    expect(fundraiser.locator("#donor-tasks")).to_contain_text("Post the annual report")
    shot(fundraiser, "60-donor-relationship")

    fundraiser.goto("/staff/tasks")
    row = fundraiser.locator("#tasks tbody tr", has_text="Post the annual report")
    expect(row).to_contain_text("Rosa Relationship")
    expect(row).to_contain_text(due.isoformat())
    shot(fundraiser, "61-my-tasks")
    row.get_by_role("button", name=re.compile("Done")).click()
    expect(fundraiser.locator("#no-tasks")).to_be_visible()

    fundraiser.goto(f"/staff/donors/{donor['id']}")
    fundraiser.get_by_role("link", name="Change contact preferences").click()
    fundraiser.check("#do_not_contact")
    fundraiser.locator("main button[type=submit]").click()
    expect(fundraiser.locator("#contact-preferences")).to_contain_text("Do not contact")

    shown = ok(api.get(f"/donors/{donor['id']}"), 200)
    assert shown["do_not_contact"] is True
    [call] = ok(api.get(f"/donors/{donor['id']}/interactions"), 200)["interactions"]
    assert (call["kind"], call["summary"]) == ("call", "Thanked her for the gift")
    [task] = ok(api.get(f"/tasks?donor_id={donor['id']}&status=all"), 200)["tasks"]
    assert task["status"] == "done"


def test_the_reports_page_draws_its_charts(api, staff, shot):
    today = datetime.now(UTC).date()
    donors = {name: person(api, name)["id"] for name in ("Ana Again", "Ben Lapsed", "Cy New")}
    for name, amount, years_back in (("Ana Again", "300.00", 1), ("Ana Again", "350.00", 0),
                                     ("Ben Lapsed", "120.00", 1), ("Cy New", "60.00", 0)):
        gift(api, donors[name], amount, today.replace(year=today.year - years_back, month=1, day=1))
    viewer = staff("viewer")
    viewer.goto("/staff/reports/")
    expect(viewer.locator("#year-figures")).to_contain_text("Retention")
    expect(viewer.locator("#donors-chart svg")).to_be_visible()
    expect(viewer.locator("#months-chart svg")).to_be_visible()
    expect(viewer.locator("#list-lybunt")).to_contain_text("Ben Lapsed")
    expect(viewer.locator("#list-first-time")).to_contain_text("Cy New")
    shot(viewer, "62-reports")
