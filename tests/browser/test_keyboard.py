"""Keyboard only: recording a gift and deciding a held gift without a mouse.

Every step moves with Tab (and Shift+Tab), opens a menu group or follows a link with Enter,
types into the focused field, picks a radio button with Space, and submits with Enter; no
click, fill or select call. Each step asserts where the focus is, so a control that cannot be
reached by Tab, or a focus that is invisible, fails the test.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import browser_required
from tests.builders import World, gift, person

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

#: More Tab presses than any page here has stops before the one wanted.
MAX_TABS = 120


def tab_to(page, selector: str, *, backwards: bool = False) -> None:
    """Press Tab until the element `selector` (Playwright's syntax) has the focus; fail if it
    never does."""
    key = "Shift+Tab" if backwards else "Tab"
    target = page.locator(selector).first
    for _ in range(MAX_TABS):
        page.keyboard.press(key)
        if target.evaluate("el => el === document.activeElement"):
            assert_focus_visible(page)
            return
    raise AssertionError(f"{selector} was not reached with {key} on {page.url}")


def assert_focus_visible(page) -> None:
    """The focused control shows a focus ring (WCAG 2.4.7): an outline at least 2px wide."""
    width = page.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth);
    }""")
    assert width >= 2, f"no visible focus on {page.evaluate('document.activeElement.outerHTML')[:120]}"


def test_recording_a_gift_with_the_keyboard_only(api, staff, shot):
    donor = person(api, "Kim Keyboard", "kim@example.org")
    page = staff("fundraiser")
    # From the home page through the menu: Money, then Gifts.
    tab_to(page, "header.top details.group > summary:text-is('Money')")
    page.keyboard.press("Enter")
    tab_to(page, "header.top details.group a:text-is('Gifts')")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/gifts/$"))
    tab_to(page, "main a:text-is('Record a gift')")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/gifts/new$"))

    tab_to(page, "#donor_id")
    page.keyboard.type("Kim Keyboard")  # a focused select jumps to the option typed
    expect(page.locator("#donor_id")).to_have_value(str(donor["id"]))
    tab_to(page, "#amount")
    page.keyboard.type("1,250.00")
    tab_to(page, "button[name=action][value=check]")
    shot(page, "keyboard-gift-entered")
    page.keyboard.press("Enter")

    expect(page.locator("section.check-result")).to_contain_text(
        "If recorded now, this gift would be accepted.")
    tab_to(page, "form.confirm button[value=record]")
    shot(page, "keyboard-gift-checked")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/gifts/\d+$"))
    gift_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("main p.flash.success")).to_have_text(f"Gift #{gift_id} recorded: accepted.")
    expect(page.locator("main")).to_contain_text("1,250.00 USD")
    shot(page, "keyboard-gift-recorded")


def test_deciding_a_held_gift_with_the_keyboard_only(api, staff, shot):
    world = World(api)
    held = gift(api, world.lab_donor["id"], "5000.00", "2026-03-02")
    assert held["status"] == "held"
    page = staff("reviewer")
    # The home page lists it under "Held gifts", linked to its decision.
    tab_to(page, f"main a[href$='/staff/review/gifts/{held['id']}/decide']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/staff/review/gifts/{held['id']}/decide$"))

    tab_to(page, "form.decide input[name=outcome]")
    # Arrow keys move within a radio group; Space checks the focused one.
    for _ in range(5):
        if page.evaluate("document.activeElement.value") == "accept":
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    expect(page.locator("form.decide input[name=outcome][value=accept]")).to_be_checked()
    tab_to(page, "form.decide #reason")
    page.keyboard.type("Unrestricted support; the board approved it.")
    tab_to(page, "form.decide button[type=submit]")
    shot(page, "keyboard-decide")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/staff/review/$"))
    expect(page.locator("main p.flash.success")).to_have_text(
        f"Gift #{held['id']} accepted; your reason is in its decision history.")
    shot(page, "keyboard-decided")
