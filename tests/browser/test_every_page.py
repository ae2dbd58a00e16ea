"""Every page of the app, walked from app.url_map in a real browser at 1366 px and at 390 px:

* axe-core (vendored by the axe-playwright-python package, injected into the page; nothing
  fetched) checks each page against WCAG 2.0, 2.1 and 2.2 A and AA; a serious or critical
  violation fails the test, listing every one found on every page;
* every table header says what it heads (scope="col" or "row");
* no page scrolls sideways, on a 390 px phone or at 1366 px (document scrollWidth <= the
  window's width);
* no date (the `day` filter's <time class="day">) breaks over two lines;
* a full-page screenshot of each page at each width goes to test-artifacts/screenshots/pages/.

Staff pages are walked signed in as an admin (who may open all of them), the public pages
anonymously; then each role, at both widths, opens its home page and every page its menu
offers (200, no sideways scrolling on a phone, a screenshot each). The ledger is seeded
through the JSON API so that each page with an id in its address shows a real record: a
held, a rejected and an accepted gift, a refund, a pledge, an in-kind arrangement, a
pending change, a published disclosure. Addresses of files
(.json, .md, .pdf, .css, .csv) and redirects-only views are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app import jobs
from app.ledger.audit import Actor
from app.ledger.policy_store import register_file_policy
from models import ROLES, PolicyVersion, RosterEntry, User
from tests.browser.conftest import SCREENSHOTS, STEP_TIMEOUT_MS, browser_required, sign_in
from tests.builders import World, affiliate, gift, ok
from tests.stripe.stripe_stubs import subscribed_monthly
from tests.webtools import make_user, submit
from tests.webtools import sign_in as client_sign_in

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:
    if browser_required():
        raise
    pytest.skip("the axe-playwright-python package is not installed", allow_module_level=True)

VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
#: The standards checked: WCAG 2.2 AA includes the 2.0 and 2.1 A and AA rules.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                     "wcag22aa"]},
               "resultTypes": ["violations"]}
FAILING_IMPACTS = ("serious", "critical")
#: Files and feeds, not pages: their own tests check them.
FILE_SUFFIXES = (".json", ".md", ".pdf", ".css", ".csv", ".ico")
#: Views that only redirect (or answer a one-time link): nothing of their own to check.
NOT_PAGES = {"web.favicon", "auth.logout", "jobs.download"}
#: Pages that answer with another status on purpose: a one-time link that is not (any more)
#: valid says so with 404.
EXPECTED_STATUS = {"/account/link/not-a-real-link": 404}


#: Pages that show something only for a question in their address.
QUERIES = {"staff_disclosures.preview": "?from=2026-01-01&to=2026-06-30",
           "staff.search": "?q=dana",
           # The form that saves a donors-list search as a segment: with a search to save.
           "segments.create": "?giving_min=1,000&tag=walk"}


#: The innermost elements reaching past the window's right edge (to say what to fix).
PAST_THE_EDGE = """() => {
  const width = window.innerWidth, found = [];
  const past = el => el.getBoundingClientRect().right > width + 0.5;
  for (const el of document.querySelectorAll('body *')) {
    if (el.checkVisibility() && past(el) && ![...el.children].some(past))
      found.push(`${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`);
  }
  return found.slice(0, 4);
}"""


@dataclass
class Site:
    staff: list[str]
    public: list[str]


def _seed(app, api, reviewer) -> dict[str, object]:
    """A small ledger with one of each record a page shows; the ids for the walk's addresses."""
    world = World(api)
    affiliation = affiliate(api, world.donor["id"], world.other_org["id"], title="Adviser")
    campaign = ok(api.post("/campaigns", {"code": "walk", "name": "Walk campaign",
                                          "goal": "1000.00", "starts_on": "2026-01-01"}))
    ok(api.post("/appeals", {"code": "walk-letter", "name": "Walk letter",
                             "campaign_id": campaign["id"]}))
    fund = ok(api.post("/funds", {"code": "walk-fund", "name": "Walk fund", "restricted": True,
                                  "purpose": "Evaluations"}))
    accepted = gift(api, world.donor["id"], "300.00", "2026-01-10", campaign_id=campaign["id"],
                    fund_id=fund["id"])
    ok(api.post(f"/gifts/{accepted['id']}/refund", {"amount": "10.00", "refunded_on": "2026-01-12"}))
    held = gift(api, world.lab_donor["id"], "50.00", "2026-01-11")
    rejected = gift(api, world.employee["id"], "1000.00", "2026-01-11")
    assert (accepted["status"], held["status"], rejected["status"]) == ("accepted", "held", "rejected")
    pledge = ok(api.post("/pledges", {"donor_id": world.donor["id"], "amount": "300.00", "currency": "USD",
                                      "pledged_on": "2026-01-01", "instalments": [
                                          {"due_on": "2026-06-01", "amount": "300.00"}]}))
    in_kind = ok(api.post("/in-kind", {"organization_id": world.lab["id"],
                                       "description": "Model access", "purpose": "evaluation",
                                       "start_date": "2026-01-01"}))
    change = ok(api.patch(f"/organizations/{world.lab['id']}", {"covered_lab": False}), 202)
    published = submit(reviewer, "/staff/disclosures/preview?from=2026-01-01&to=2026-06-30",
                       {"start": "2026-01-01", "end": "2026-06-30"}, action="/staff/disclosures/publish")
    assert published.status_code == 302, published.status_code
    disclosure_id = int(re.search(r"/disclosures/(\d+)", published.headers["Location"]).group(1))
    funding = submit(reviewer, "/staff/funding/?first_year=2025&last_year=2026", {},
                     action="/staff/funding/publish")
    assert funding.status_code == 302, funding.status_code
    report_id = int(re.search(r"/funding/(\d+)", funding.headers["Location"]).group(1))
    # A donor segment (the segments page lists it) and a tag it selects by.
    ok(api.put(f"/donors/{world.donor['id']}/tags", {"tags": ["walk"]}), 200)
    ok(api.post("/segments", {"name": "Walk segment", "criteria": {"tag": "walk"}}))
    roster = api.client.post("/api/v1/rosters", headers={**api.headers, "Content-Type": "text/csv"},
                             data=b"name,title,organisation,start,end,source\n"
                                  b"Avery Stone,Chief Scientist,Frontier Lab,2024-01-01,,lab page\n")
    assert roster.status_code == 201, roster.get_json()
    with app.extensions["armslength"].sessions() as session:
        entry_id = session.execute(select(RosterEntry.id)).scalars().first()
        # As `armslength init-db` does on a new installation: the file policy, stored.
        register_file_policy(session, app.extensions["armslength"].policies, Actor("test", role="admin"))
        session.commit()
        version_id = session.execute(select(PolicyVersion.id).order_by(PolicyVersion.id)).scalars().first()
        # A finished export job, run in this process as the worker would run it.
        job_id = jobs.create(session, "export", Actor("test", role="admin"),
                             {"what": "donors", "filters": {}}).id
    assert jobs.run_job(app, job_id).status == "done"
    return {
        "donor_id": world.donor["id"], "org_id": world.lab["id"], "affiliation_id": affiliation["id"],
        "pledge_id": pledge["id"], "change_id": change["change_id"], "disclosure_id": disclosure_id,
        "report_id": report_id,
        "user_id": reviewer.user_id, "version_id": version_id, "year": 2026,
        "secret": "not-a-real-link", "entry_id": entry_id, "item_id": in_kind["id"],
        # The gift each page is about: held for the decision, rejected for an override request.
        "gift_id": {"review.decide": held["id"], "review.request_override": rejected["id"]},
        "default_gift_id": accepted["id"],
        # Campaign pages: /staff/campaigns/<kind>/<row_id>.
        "kind": "campaign", "row_id": campaign["id"],
        "job_id": job_id,
    }


def _address(app, rule, values: dict) -> str:
    args = {}
    for name in rule.arguments:
        value = values[name]
        if name == "gift_id":
            value = value.get(rule.endpoint, values["default_gift_id"])
        assert value is not None, (rule.endpoint, name)
        args[name] = value
    url = app.url_map.bind("localhost").build(rule.endpoint, args, method="GET")
    return url + QUERIES.get(rule.endpoint, "")


def _pages(app, values: dict) -> Site:
    staff, public = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if ("GET" not in rule.methods or rule.endpoint == "static" or rule.endpoint.startswith("api.")
                or rule.endpoint in NOT_PAGES or rule.rule.endswith(FILE_SUFFIXES)):
            continue
        url = _address(app, rule, values)
        view = app.view_functions[rule.endpoint]
        (public if getattr(view, "public", False) else staff).append(url)
    return Site(staff, public)


@pytest.fixture
def site(app, api, httpserver) -> Site:
    make_user(app, "walk-reviewer@example.org", "reviewer")
    reviewer = app.test_client()
    assert client_sign_in(reviewer, "walk-reviewer@example.org").status_code == 302
    with app.extensions["armslength"].sessions() as session:
        reviewer.user_id = session.execute(
            select(User.id).where(User.email == "walk-reviewer@example.org")).scalar_one()
    values = _seed(app, api, reviewer)
    # A monthly gift through the donate page and a signed webhook (the Stripe stub answers).
    with app.extensions["armslength"].sessions() as session:
        values["donation_id"] = subscribed_monthly(
            app.test_client(), httpserver, session, secret="whsec_armslength_browser",
            email="walk-monthly@example.org").id
    make_user(app, "walk-admin@example.org", "admin")
    return _pages(app, values)


def _shot_name(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", urlsplit(url).path).strip("-") or "home"


def _violations(page) -> list[tuple[str, str]]:
    """(impact, description) of each rule axe-core finds the page breaking."""
    results = Axe().run(page, options=AXE_OPTIONS).response
    found = []
    for violation in results["violations"]:
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]][:5]
        found.append((violation["impact"],
                      f"{violation['impact']} {violation['id']}: {violation['help']} at {targets}"))
    return found


def _walk(page, urls: list[str], width_name: str, backend: str, problems: list[str],
          report: list[str]) -> int:
    folder = SCREENSHOTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    walked = 0
    for url in urls:
        response = page.goto(url)
        status = response.status if response else None
        if status != EXPECTED_STATUS.get(url.split("?")[0], 200):
            problems.append(f"{url}: status {status}")
        if "text/html" not in (response.headers.get("content-type") or ""):
            problems.append(f"{url}: not a page ({response.headers.get('content-type')})")
            continue
        walked += 1
        page.screenshot(path=str(folder / f"{backend}-{width_name}-{_shot_name(page.url)}.png"),
                        full_page=True)
        unscoped = page.locator("th:not([scope])").count()
        if unscoped:
            problems.append(f"{url}: {unscoped} table header(s) without scope")
        for impact, text in _violations(page):
            report.append(f"{url} at {width_name}: {text}")
            if impact in FAILING_IMPACTS:
                problems.append(f"{url} at {width_name}: {text}")
        wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if wider > 0:
            problems.append(f"{url} scrolls sideways at {width_name}: {wider}px too wide, "
                            f"past the edge: {page.evaluate(PAST_THE_EDGE)}")
        dates = page.evaluate(WRAPPED_DATES)
        DATES_SEEN[width_name] = DATES_SEEN.get(width_name, 0) + dates["seen"]
        if dates["wrapped"]:
            problems.append(f"{url} at {width_name}: dates broken over two lines: "
                            f"{dates['wrapped']}")
    return walked


#: Dates on the page, and those whose box breaks over more than one line.
WRAPPED_DATES = """() => {
  const days = [...document.querySelectorAll('time.day')];
  return {seen: days.length,
          wrapped: days.filter(e => e.getClientRects().length > 1).map(e => e.textContent)};
}"""
#: How many dates the walk saw per width: the date check must have had something to check.
DATES_SEEN: dict[str, int] = {}


@pytest.mark.parametrize("width_name", list(VIEWPORTS))
def test_every_page_is_accessible_and_fits(browser, live_server, site, backend, width_name):
    problems: list[str] = []
    report: list[str] = []  # every violation, the moderate and minor ones too, to read
    contexts = []
    DATES_SEEN[width_name] = 0
    try:
        for who in ("admin", None):
            context = browser.new_context(base_url=live_server, viewport=VIEWPORTS[width_name])
            context.set_default_timeout(STEP_TIMEOUT_MS)
            contexts.append(context)
            page = context.new_page()
            if who:
                sign_in(page, "walk-admin@example.org")
            urls = site.staff if who else site.public
            walked = _walk(page, urls, width_name, backend, problems, report)
            assert walked >= (50 if who else 8), (who, walked, urls)
        assert DATES_SEEN.get(width_name, 0) >= 20, DATES_SEEN
    finally:
        for context in contexts:
            context.close()
        (SCREENSHOTS.parent / f"axe-{backend}-{width_name}.txt").write_text(
            "\n".join(report) + "\n" if report else "no violations\n")
    assert not problems, "\n".join(problems)


def test_the_check_finds_what_it_is_for(browser):
    """The walk's check is not vacuous: a page with an unlabelled field, an image without a text
    alternative and grey-on-grey text fails it."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content('<html lang="en"><title>t</title><main><input type="text">'
                         '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
                         '<p style="color:#bbb;background:#ccc">faint</p></main></html>')
        rules = {text.split(" ")[1].rstrip(":") for impact, text in _violations(page)
                 if impact in FAILING_IMPACTS}
        assert {"label", "image-alt", "color-contrast"} <= rules, rules
    finally:
        context.close()


def test_the_date_check_sees_a_wrapped_date(browser):
    """Without the stylesheet's rule a date in a narrow cell breaks at its hyphens, and the
    walk's check says so; with the page's own rule it stays on one line."""
    context = browser.new_context()
    try:
        page = context.new_page()
        cell = ('<table><tr><td style="width:1px"><time class="day">2026-12-04</time></td>'
                '</tr></table>')
        page.set_content(f'<html lang="en"><title>t</title><main>{cell}</main></html>')
        assert page.evaluate(WRAPPED_DATES)["wrapped"] == ["2026-12-04"]
        css = (Path(__file__).parents[2] / "app" / "static" / "style.css").read_text()
        page.add_style_tag(content=css)
        assert page.evaluate(WRAPPED_DATES) == {"seen": 1, "wrapped": []}
    finally:
        context.close()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_its_pages_at_both_widths(app, browser, live_server, site, backend, role):
    make_user(app, f"walk-{role}-role@example.org", role)
    folder = SCREENSHOTS / "roles"
    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for width_name, viewport in VIEWPORTS.items():
        context = browser.new_context(base_url=live_server, viewport=viewport)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            page = context.new_page()
            sign_in(page, f"walk-{role}-role@example.org")
            menu = page.locator("header.top nav a").evaluate_all(
                "els => els.map(e => e.getAttribute('href'))")
            assert "/staff/" in menu and len(menu) >= 10, (role, menu)
            for url in menu:
                response = page.goto(url)
                if response.status != 200:
                    problems.append(f"{role} {url}: status {response.status}")
                name = f"{backend}-{role}-{width_name}-{_shot_name(page.url)}.png"
                page.screenshot(path=str(folder / name), full_page=True)
                wider = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                if wider > 0:
                    problems.append(f"{role} {url} at {width_name}: {wider}px too wide")
        finally:
            context.close()
    assert not problems, "\n".join(problems)
