"""Two people for a policy change, in a real browser: an admin proposes a version that
accepts lab payments for evaluations; it decides nothing until a second person approves it
in the review queue, after seeing what it would have decided over the last year."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from tests.browser.conftest import browser_required
from tests.builders import gift, ok, org_donor, organization

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_a_policy_version_proposed_by_one_admin_is_approved_by_a_reviewer(api_as, staff, shot):
    api = api_as("fundraiser", "api-fundraiser")  # records gifts; staff("admin") proposes
    lab = organization(api, "Frontier Lab", covered_lab=True)
    payer = org_donor(api, "Frontier Lab (corporate)", lab["id"])
    today = datetime.now(UTC).date()
    refused = gift(api, payer["id"], "25000.00", today, purpose="evaluation_services")
    assert refused["status"] == "rejected"

    admin = staff("admin")
    admin.goto("/staff/admin/policy")
    admin.fill("#version", "2027.lenient")
    admin.select_option("#outcome_lab_evaluation_payment", "accept")
    admin.click("button[type=submit]:has-text('Propose as new version')")
    admin.wait_for_url(re.compile(r"/staff/changes/\d+$"))
    change_id = int(admin.url.rsplit("/", 1)[1])
    expect(admin.locator("main p.flash.warning")).to_contain_text(
        f"Policy version 2027.lenient is proposed as change #{change_id}")
    replay = admin.locator("section.replay")
    row = replay.locator("table.changed-decisions tbody tr", has_text=f"#{refused['id']}")
    expect(row.locator(".badge.reject")).to_be_visible()
    expect(row.locator(".badge.accept")).to_be_visible()
    expect(row).to_contain_text("lab_evaluation_payment")
    expect(admin.locator("main")).to_contain_text("You proposed this change")
    expect(admin.get_by_role("button", name=f"Approve change #{change_id}")).to_have_count(0)
    shot(admin, "change-01-policy-proposed")

    # Still the old policy: a lab's payment for evaluations is rejected.
    assert gift(api, payer["id"], "100.00", today, purpose="evaluation_services")["status"] \
        == "rejected"

    reviewer = staff("reviewer")
    reviewer.goto("/staff/review/")
    card = reviewer.locator(f"article#change-{change_id}")
    expect(card).to_contain_text("New policy version 2027.lenient")
    expect(card).to_contain_text("admin@example.org")
    shot(reviewer, "change-02-review-queue")
    card.get_by_role("link", name=f"Change #{change_id}").click()
    reviewer.wait_for_url(re.compile(rf"/staff/changes/{change_id}$"))
    expect(reviewer.locator("section.replay")).to_contain_text("Decisions that would change")
    reviewer.fill(f"#change-note-{change_id}", "Checked the replay with the board.")
    reviewer.get_by_role("button", name=f"Approve change #{change_id}").click()
    reviewer.wait_for_url(re.compile(rf"/staff/changes/{change_id}$"))
    expect(reviewer.locator("main p.flash.success")).to_have_text(
        f"Change #{change_id} approved and applied.")
    expect(reviewer.locator("main")).to_contain_text("approved")
    shot(reviewer, "change-03-approved")

    admin.goto("/staff/admin/policy")
    expect(admin.locator("main")).to_contain_text("In force: version 2027.lenient")
    after = gift(api, payer["id"], "100.00", today, purpose="evaluation_services")
    assert (after["status"], after["decision"]["policy_version"]) == ("accepted", "2027.lenient")
    assert ok(api.get(f"/changes/{change_id}"), 200)["status"] == "approved"


def test_a_change_left_too_long_expires_under_the_reviewers_eyes(api_as, staff, db, shot):
    """A reviewer opens a change on its last day and approves after it ran out: refused,
    with the reason, and the page shows it expired with nothing to approve."""
    from datetime import timedelta

    from sqlalchemy import update

    from models import PendingChange

    api = api_as("fundraiser", "api-fundraiser")
    lab = organization(api, "Frontier Lab", covered_lab=True)
    change_id = ok(api.patch(f"/organizations/{lab['id']}", {"covered_lab": False}),
                   202)["change_id"]

    def age(days: float) -> None:
        db.rollback()
        db.execute(update(PendingChange).where(PendingChange.id == change_id)
                   .values(proposed_at=datetime.now(UTC) - timedelta(days=days)))
        db.commit()

    age(13.9)
    reviewer = staff("reviewer")
    reviewer.goto(f"/staff/changes/{change_id}")
    expect(reviewer.locator("#change-status")).to_have_text("pending second approval")
    expect(reviewer.locator("main")).to_contain_text("may be approved until")
    age(14.1)  # the reviewer reads for a while: the fourteen days run out
    reviewer.get_by_role("button", name=f"Approve change #{change_id}").click()
    expect(reviewer.locator("main p.flash.error")).to_contain_text(
        f"Not approved: change {change_id} expired on")
    expect(reviewer.locator("#change-status")).to_have_text("expired")
    expect(reviewer.get_by_role("button", name=f"Approve change #{change_id}")).to_have_count(0)
    shot(reviewer, "change-04-expired")

    reviewer.goto("/staff/changes/")
    row = reviewer.locator("tbody tr", has_text=f"#{change_id}")
    expect(row.locator("td.change-status")).to_have_text("expired")
    reviewer.goto("/staff/review/")
    expect(reviewer.locator(f"article#change-{change_id}")).to_have_count(0)
    body = ok(api.get(f"/changes/{change_id}"), 200)
    assert body["status"] == "expired"
    assert ok(api.get(f"/organizations/{lab['id']}"), 200)["covered_lab"] is True
