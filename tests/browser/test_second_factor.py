"""Moving a second factor to another app, in a real browser: the page shows its key once,
and confirming takes the password, the new app's code and a code from the app in use."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from models import utcnow
from tests.browser.conftest import browser_required
from tests.webtools import PASSWORD

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def _key(page) -> str:
    return page.locator("code.totp-secret").inner_text().strip()


def test_moving_the_second_factor_needs_the_old_app_too(staff, shot):
    page = staff("fundraiser")
    page.goto("/account")
    page.get_by_role("link", name="Set up a second factor").click()
    first = _key(page)
    page.fill("#current_password", PASSWORD)
    page.fill("#code", pyotp.TOTP(first).now())
    page.click("main form button[type=submit]")
    expect(page.locator("main p.flash.success")).to_contain_text("Second factor set up")

    page.get_by_role("link", name="Move it to another app").click()
    second = _key(page)
    assert second != first
    expect(page.locator("#current_code")).to_be_visible()
    # Someone at this browser without the phone: the password and the new app are not enough.
    page.fill("#current_password", PASSWORD)
    wrong = "000000" if pyotp.TOTP(first).now() != "000000" else "111111"
    page.fill("#current_code", wrong)
    page.fill("#code", pyotp.TOTP(second).now())
    page.click("main form button[type=submit]")
    expect(page.locator("main")).to_contain_text("that code is not right")
    expect(page.locator("code.totp-secret")).to_have_count(0)  # the key is not shown again
    shot(page, "second-factor-01-refused")

    page.fill("#current_password", PASSWORD)
    page.fill("#current_code", pyotp.TOTP(first).at(utcnow() + timedelta(seconds=30)))
    page.fill("#code", pyotp.TOTP(second).now())
    page.click("main form button[type=submit]")
    expect(page.locator("main p.flash.success")).to_contain_text("Second factor moved")
    shot(page, "second-factor-02-moved")
