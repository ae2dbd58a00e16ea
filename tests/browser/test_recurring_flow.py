"""Recurring gifts in a real browser: finance pauses a monthly gift from the staff list, then
cancels it (ticking the confirmation), each change asked of Stripe (the real SDK against the
local stub) and shown on the list as Stripe answered; a fundraiser sees the list without
the buttons."""

from __future__ import annotations

import pytest

from tests.browser.conftest import browser_required
from tests.stripe.stripe_stubs import (
    expect_subscription,
    form,
    requests_to,
    subscribed_monthly,
    subscription_object,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

WEBHOOK_SECRET = "whsec_armslength_browser"  # tests/browser/conftest.py's app


def test_finance_pauses_then_cancels_a_monthly_gift_from_the_list(client, httpserver, db,
                                                                  staff, shot):
    donation = subscribed_monthly(client, httpserver, db, secret=WEBHOOK_SECRET,
                                  amount="other", other_amount="30", name="Mo Monthly",
                                  email="mo@example.org")
    fundraiser = staff("fundraiser")
    fundraiser.goto("/staff/recurring/")
    menu_entry = fundraiser.locator("nav a[href='/staff/recurring/']").first
    expect(menu_entry).to_have_attribute("aria-current", "page")
    row = fundraiser.locator(f"#recurring-{donation.id}")
    expect(row).to_contain_text("Mo Monthly")
    expect(row).to_contain_text("30.00 USD")
    expect(row.locator(".status")).to_have_text("Active")
    expect(row.get_by_role("button")).to_have_count(0)  # fundraisers see, finance changes

    finance = staff("finance")
    finance.goto("/staff/recurring/")
    row = finance.locator(f"#recurring-{donation.id}")
    expect(row.locator(".status")).to_have_text("Active")
    shot(finance, "80-recurring-list")

    expect_subscription(httpserver, "POST", subscription_object(amount=3000, paused=True))
    row.get_by_role("button", name="Pause").click()
    expect(finance.locator(".flash.success")).to_contain_text("paused")
    row = finance.locator(f"#recurring-{donation.id}")
    expect(row.locator(".status")).to_have_text("Paused")
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    [paused] = requests_to(httpserver, "/v1/subscriptions/sub_1", "POST")
    assert form(paused) == {"pause_collection[behavior]": "void"}
    shot(finance, "81-recurring-paused")

    expect_subscription(httpserver, "DELETE", subscription_object(amount=3000, status="canceled"))
    row.get_by_label("sure").check()
    row.get_by_role("button", name="Cancel").click()
    row = finance.locator(f"#recurring-{donation.id}")
    expect(row.locator(".status")).to_have_text("Cancelled")
    expect(row.get_by_role("button")).to_have_count(0)
    assert len(requests_to(httpserver, "/v1/subscriptions/sub_1", "DELETE")) == 1
    shot(finance, "82-recurring-cancelled")

    finance.goto(f"/staff/recurring/{donation.id}")
    history = finance.locator("#recurring-history")
    expect(history).to_contain_text("donation.subscription_cancel by web:finance@example.org")
    expect(history).to_contain_text("donation.subscription_pause by web:finance@example.org")
