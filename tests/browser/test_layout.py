"""What the staff pages look like on a phone (390 px wide) and a desktop: measured in the browser
(bounding boxes, scroll widths), with screenshots in test-artifacts/screenshots/ to look at.

* no staff page scrolls sideways on a phone, and the menu is folded behind a "Menu" button
  there instead of filling the screen (it opens without JavaScript; desktops show the links);
* the big figures on the dashboard cards (Headroom) stay inside their cards;
* the split-gift rows of the gift form keep each donor drop-down beside its fraction box,
  never under it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.browser.conftest import STEP_TIMEOUT_MS, browser_required, sign_in
from tests.builders import accepted_gift, person
from tests.webtools import make_user

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
STAFF_PAGES = ["/staff/", "/staff/donors/", "/staff/gifts/", "/staff/gifts/new", "/staff/compliance",
               "/staff/finance/", "/staff/online/", "/staff/review/", "/staff/pledges/",
               "/staff/audit/", "/staff/admin/"]


@pytest.fixture
def signed_in(app, browser, live_server):
    """signed_in(viewport) -> a page signed in as an admin (who sees every menu entry)."""
    make_user(app, "layout-admin@example.org", "admin")
    contexts = []

    def make(viewport, javascript=True):
        context = browser.new_context(base_url=live_server, viewport=viewport,
                                      java_script_enabled=javascript)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        sign_in(page, "layout-admin@example.org")
        return page

    yield make
    for context in contexts:
        context.close()


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def box(locator) -> dict:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not shown"
    return found


def inside(inner: dict, outer: dict) -> bool:
    return (inner["x"] >= outer["x"] - 0.5 and inner["y"] >= outer["y"] - 0.5
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5)


def overlap(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_pages_do_not_scroll_sideways_on_a_phone(signed_in, path, shot):
    page = signed_in(PHONE)
    response = page.goto(path)
    assert response.status == 200, path
    name = path.strip("/").replace("/", "-") or "staff"
    shot(page, f"phone-{name}")
    assert overflow(page) == 0, f"{path} is {overflow(page)}px wider than a 390px phone"


@pytest.mark.parametrize("javascript", [True, False])
def test_the_menu_is_folded_on_a_phone_and_opens_without_javascript(signed_in, shot, javascript):
    page = signed_in(PHONE, javascript=javascript)
    page.goto("/staff/donors/")
    header = box(page.locator("header.top"))
    assert header["height"] <= 0.15 * PHONE["height"], f"the header takes {header['height']}px"
    menu = page.locator("header.top details.menu > summary")
    expect(menu).to_be_visible()
    expect(menu).to_have_text("Menu")
    expect(page.locator("header.top details.group > summary", has_text="People")).to_be_hidden()
    shot(page, f"phone-menu-closed{'' if javascript else '-nojs'}")

    menu.click()
    # The open menu lists the groups; each opens in place (an accordion), without JavaScript too.
    groups = page.locator("header.top details.group > summary")
    expect(groups).to_have_text(["People", "Money", "Compliance", "Finance"])
    expect(page.locator("header.top nav a", has_text="Admin")).to_be_visible()
    link = page.locator("header.top nav a", has_text="Organisations")
    expect(link).to_be_hidden()
    page.locator("header.top details.group > summary", has_text="People").click()
    expect(link).to_be_visible()
    # The current page's entry says so to assistive technology.
    expect(page.locator("header.top nav a", has_text="Donors")).to_have_attribute("aria-current", "page")
    assert overflow(page) == 0
    shot(page, f"phone-menu-open{'' if javascript else '-nojs'}")
    link.click()
    page.wait_for_url("**/staff/organizations/")


def test_the_menu_groups_drop_down_on_a_desktop(signed_in, shot):
    page = signed_in(DESKTOP)
    page.goto("/staff/donors/")
    expect(page.locator("header.top details.menu > summary")).to_be_hidden()
    summaries = page.locator("header.top details.group > summary")
    expect(summaries).to_have_text(["People", "Money", "Compliance", "Finance"])
    for label in ("Home", "Admin"):
        expect(page.locator("header.top nav a", has_text=label).first).to_be_visible()
    shot(page, "desktop-menu")
    header = box(page.locator("header.top"))
    assert header["height"] <= 60, f"the desktop header is {header['height']}px tall (one line expected)"
    # The section of the page shown is marked: People holds Donors.
    expect(page.locator("header.top details.group.current > summary")).to_have_text("People")

    money = page.locator("header.top details.group", has=page.locator("summary", has_text="Money"))
    gifts = money.locator("a", has_text="Gifts")
    expect(gifts).to_be_hidden()
    money.locator("summary").click()
    expect(gifts).to_be_visible()
    # The drop-down lies over the page; it does not push the header taller.
    assert box(page.locator("header.top"))["height"] == header["height"]
    shot(page, "desktop-menu-open")
    # Opening another group closes this one; Escape closes that one and focus returns to it.
    people = page.locator("header.top details.group", has=page.locator("summary", has_text="People"))
    people.locator("summary").click()
    expect(gifts).to_be_hidden()
    page.keyboard.press("Escape")
    expect(people.locator("a", has_text="Donors")).to_be_hidden()
    expect(people.locator("summary")).to_be_focused()
    money.locator("summary").click()
    gifts.click()
    page.wait_for_url("**/staff/gifts/")
    expect(page.locator("header.top details.group.current > summary")).to_have_text("Money")
    expect(page.locator("header.top nav a", has_text="Gifts")).to_have_attribute("aria-current", "page")


def test_a_page_inside_a_section_marks_the_section(signed_in):
    page = signed_in(DESKTOP)
    page.goto("/staff/gifts/new")
    expect(page.locator("header.top details.group.current > summary")).to_have_text("Money")
    expect(page.locator("header.top nav a", has_text="Gifts")).to_have_attribute("aria-current", "true")
    expect(page.locator("header.top nav [aria-current=page]")).to_have_count(0)


@pytest.mark.parametrize(("role", "shown", "hidden"), [
    ("viewer", ["Donors", "Gifts", "Dashboard", "Finance"], ["Review", "Import", "Export", "Admin"]),
    ("fundraiser", ["Donors", "Import"], ["Review", "Export", "Admin"]),
    ("finance", ["Export", "Finance"], ["Review", "Import", "Admin"]),
])
def test_the_menu_shows_only_what_the_role_may_open(app, browser, live_server, role, shown, hidden):
    make_user(app, f"menu-{role}@example.org", role)
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    try:
        page = context.new_page()
        sign_in(page, f"menu-{role}@example.org")
        links = page.locator("header.top nav a")
        labels = links.evaluate_all("els => els.map(e => e.textContent.trim())")
        for label in shown:
            assert label in labels, (role, label, labels)
        for label in hidden:
            assert label not in labels, (role, label, labels)
        for href in links.evaluate_all("els => els.map(e => e.getAttribute('href'))"):
            assert page.request.get(href).status == 200, (role, href)
    finally:
        context.close()


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(signed_in):
    page = signed_in(DESKTOP)
    page.goto("/staff/donors/")
    skip = page.locator("a.skip-link")
    expect(skip).not_to_be_in_viewport()
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")  # the next stop is inside the page's content, past the menu
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP, {"width": 1024, "height": 768}],
                         ids=["phone", "desktop", "tablet"])
def test_big_figures_stay_inside_their_cards(api, signed_in, viewport, shot):
    # Large enough that the headroom reads "24,999,999.99 USD" (held as a large gift, then
    # accepted by a reviewer).
    accepted_gift(api, person(api, "Grace Generous")["id"], "25000000.00",
                  datetime.now(UTC).date().isoformat())
    page = signed_in(viewport)
    for path in ("/staff/compliance", "/staff/"):
        page.goto(path)
        figure = page.locator(".card", has=page.locator("h2", has_text="Headroom")).first
        expect(figure.locator(".big")).to_contain_text("24,999,999.99")
        shot(page, f"{viewport['width']}-{path.strip('/').replace('/', '-')}-headroom")
        big = figure.locator(".big")
        assert inside(box(big), box(figure)), (box(big), box(figure))
        assert big.evaluate("e => e.scrollWidth <= e.clientWidth"), "the figure overflows its box"
        assert overflow(page) == 0


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_split_gift_donor_dropdowns_sit_beside_their_fraction_boxes(api, signed_in, viewport, shot):
    person(api, "Maximilian Bartholomew Featherstonehaugh-Cholmondeley the Third",
           "maximilian.featherstonehaugh-cholmondeley@example.org")
    page = signed_in(viewport)
    page.goto("/staff/gifts/new")
    rows = page.locator(".row.attribution")
    expect(rows).to_have_count(3)
    shot(page, f"{viewport['width']}-gift-form-split")
    for i in range(3):
        row = rows.nth(i)
        select = box(row.locator("select"))
        fraction = box(row.locator("input"))
        assert not overlap(select, fraction), (i, select, fraction)
        assert inside(select, box(row)) and inside(fraction, box(row))
        assert select["x"] + select["width"] <= PHONE["width"] or viewport is DESKTOP
    assert overflow(page) == 0
