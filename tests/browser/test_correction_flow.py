"""Correcting a mistaken gift in a real browser: finance opens a gift typed as 5,000.00
instead of 50.00, corrects it from the gift page, lands on the replacement, and the
mistaken gift shows as voided with its reason; a lab-employee gift whose window lost the
money is held for a reviewer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import browser_required
from tests.builders import World, gift, ok

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def test_finance_corrects_a_typed_amount_and_a_later_lab_gift_is_held(api, staff, shot):
    today = datetime.now(UTC).date()
    w = World(api)
    typo = gift(api, w.donor["id"], "5000.00", today - timedelta(days=10))
    lab = gift(api, w.employee["id"], "2000.00", today - timedelta(days=5))
    assert lab["status"] == "accepted"  # 2,000 of 7,000: below half

    finance = staff("finance")
    finance.goto(f"/staff/gifts/{typo['id']}")
    shot(finance, "80-gift-before-correction")
    finance.get_by_text("Void or correct this gift").click()
    finance.fill("#correct-reason", "Typed 5000 for 50: the cheque says fifty dollars.")
    finance.fill("#correct-amount", "50.00")
    finance.locator("#correct-gift button[type=submit]").click()
    finance.wait_for_url(re.compile(r"/staff/gifts/\d+$"))
    expect(finance.locator("main")).to_contain_text(f"Gift {typo['id']} voided and corrected")
    expect(finance.locator("main")).to_contain_text("1 later gift was re-screened")
    expect(finance.locator("#gift-corrects")).to_contain_text(f"gift #{typo['id']}")
    shot(finance, "81-replacement-gift")

    finance.locator("#gift-corrects a").click()
    finance.wait_for_url(re.compile(rf"/staff/gifts/{typo['id']}$"))
    expect(finance.locator("#voided-tag")).to_be_visible()
    expect(finance.locator("#gift-correction")).to_contain_text("the cheque says fifty dollars")
    shot(finance, "82-voided-gift")

    assert ok(api.get(f"/gifts/{lab['id']}"), 200)["status"] == "held"
    reviewer = staff("reviewer")
    reviewer.goto("/staff/review/")
    expect(reviewer.locator("main")).to_contain_text("Lee Employee")
    shot(reviewer, "83-review-queue-after-correction")
