"""What staff and donors do, in a real browser: each flow asserts the outcome the page shows
(status badges, messages, line numbers, the downloaded file, where the browser lands), and
leaves screenshots in test-artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl

import pytest
from sqlalchemy import select

from models import OnlineDonation
from tests.browser.conftest import browser_required, sign_in
from tests.builders import affiliate, gift, ok, org_donor, organization, person
from tests.webtools import make_user

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture then skips, or fails under REQUIRE_BROWSER
    if browser_required():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)


def today() -> date:
    """The app's today: the tests run it with ORG_TIMEZONE=UTC."""
    return datetime.now(UTC).date()


def _flash(page, category: str):
    return page.locator(f"main p.flash.{category}")


def _check_then_record(page, donor_id: int, amount: str, expected: str, fired: list[str], shot,
                       name: str) -> int:
    """Through the staff entry form: enter, Check, read the decision and the rules that fired,
    then Record. Returns the gift id."""
    words = {"accept": "accepted", "hold": "held for a reviewer", "reject": "rejected"}[expected]
    labels = {"accept": "Accepted", "hold": "Held", "reject": "Rejected"}
    page.goto("/staff/gifts/new")
    page.select_option("#donor_id", str(donor_id))
    page.fill("#amount", amount)
    expect(page.locator("#currency")).to_have_value("USD")
    expect(page.locator("#received_on")).to_have_value(today().isoformat())
    page.select_option("#method", "check")
    page.click("button[name=action][value=check]")

    result = page.locator("section.check-result")
    expect(result).to_contain_text(f"If recorded now, this gift would be {words}.")
    expect(result.locator(f".badge.{expected}")).to_have_text(labels[expected])
    expect(page.locator("table.rules tr.fired td small")).to_have_text(fired)
    shot(page, f"{name}-check")

    record = page.locator("form.confirm button[value=record]")
    if expected == "accept":
        expect(record).to_have_text("Record gift")
    else:
        expect(record).to_have_text(f"Record gift ({ {'hold': 'held', 'reject': 'rejected'}[expected] })")
    record.click()
    page.wait_for_url(re.compile(r"/staff/gifts/\d+$"))
    gift_id = int(page.url.rsplit("/", 1)[1])
    category = {"accept": "success", "hold": "warning", "reject": "error"}[expected]
    expect(_flash(page, category)).to_have_text(f"Gift #{gift_id} recorded: {words}.")
    status = {"accept": "accepted", "hold": "held", "reject": "rejected"}[expected]
    expect(page.locator("h1 .badge")).to_have_class(re.compile(rf"\b{status}\b"))
    expect(page.locator("h1 .badge")).to_have_text(labels[expected])
    expect(page.locator("table.rules tr.fired td small")).to_have_text(fired)  # the decision history
    shot(page, f"{name}-recorded")
    return gift_id


# --- sign-in -------------------------------------------------------------------------------

def test_sign_in(app, new_page, shot):
    make_user(app, "fundraiser@example.org", "fundraiser")
    page = new_page()
    page.goto("/staff/gifts/")
    page.wait_for_url(re.compile(r"/login\?next="))
    expect(page.locator("h1")).to_have_text("Staff sign-in")
    expect(page.locator("main p.flash")).to_contain_text("Please sign in to continue.")

    page.fill("#email", "fundraiser@example.org")
    page.fill("#password", "not the password")
    page.click("main button[type=submit]")
    expect(_flash(page, "error")).to_be_visible()
    expect(page.locator(".who")).to_have_count(0)
    shot(page, "01-sign-in-refused")

    page.fill("#email", "fundraiser@example.org")
    page.fill("#password", "long enough password")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/gifts/$"))  # back where the user was going
    expect(page.locator(".who")).to_have_text("fundraiser@example.org · fundraiser")
    expect(page.locator("nav[aria-label=Main]")).to_contain_text("Import")
    expect(page.locator("nav[aria-label=Main]")).not_to_contain_text("Admin")
    page.goto("/staff/")
    shot(page, "02-staff-home")

    page.click("form.signout button")
    page.wait_for_url(re.compile(r"/login$"))
    expect(page.locator("main p.flash")).to_have_text("You are signed out.")
    page.goto("/staff/")
    page.wait_for_url(re.compile(r"/login\?next="))


# --- donors --------------------------------------------------------------------------------

def test_create_a_donor(staff, shot):
    page = staff("fundraiser")
    page.goto("/staff/donors/")
    page.get_by_role("link", name=re.compile("New donor|Add a donor|Add donor")).first.click()
    page.wait_for_url(re.compile(r"/staff/donors/new"))

    page.click("main button[type=submit]")  # nothing filled in: refused, with the field marked
    expect(page.locator(".field.has-error #name")).to_be_visible()

    page.select_option("#type", "person")
    page.fill("#name", "Grace Hopper")
    page.fill("#email", "grace@example.org")
    shot(page, "03-donor-form")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/staff/donors/\d+$"))
    expect(_flash(page, "success")).to_have_text("Donor Grace Hopper created.")
    expect(page.locator("h1")).to_contain_text("Grace Hopper")
    expect(page.locator("#donor-facts")).to_contain_text("grace@example.org")
    shot(page, "04-donor-created")

    page.goto("/staff/donors/?q=hopper")
    expect(page.locator("main table")).to_contain_text("Grace Hopper")


# --- gifts through the entry form --------------------------------------------------------------

def test_a_gift_is_checked_then_recorded_and_accepted(api, staff, shot):
    donor = person(api, "Dana Donor", "dana@example.org")
    page = staff("fundraiser")
    gift_id = _check_then_record(page, donor["id"], "250.00", "accept", [], shot, "05-gift-accept")
    expect(page.locator("main")).to_contain_text("250.00 USD")
    assert ok(api.get(f"/gifts/{gift_id}"), 200)["status"] == "accepted"


def test_lab_corporate_money_is_held_then_a_reviewer_accepts_it(api, staff, shot):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    lab_money = org_donor(api, "Frontier Lab (corporate)", lab["id"])
    fundraiser = staff("fundraiser")
    gift_id = _check_then_record(fundraiser, lab_money["id"], "5000.00", "hold",
                                 ["lab_corporate_money"], shot, "06-gift-held")
    expect(fundraiser.locator("table.rules tr.fired")).to_contain_text(
        "Money from a covered lab (Frontier Lab) needs a reviewer's decision.")

    reviewer = staff("reviewer")
    reviewer.goto("/staff/review/")
    row = reviewer.locator("table.queue tbody tr", has_text=f"#{gift_id}")
    expect(row).to_contain_text("Frontier Lab (corporate)")
    expect(row).to_contain_text("5,000.00 USD")
    expect(row.locator(".badge.hold")).to_be_visible()
    shot(reviewer, "07-review-queue")
    row.get_by_role("link", name="Decide").click()
    reviewer.wait_for_url(re.compile(rf"/staff/review/gifts/{gift_id}/decide$"))
    expect(reviewer.locator("h1 .badge.held")).to_have_text("Held")

    reviewer.click("button[type=submit]:has-text('Record decision')")  # no outcome, no reason
    expect(reviewer.locator("form.decide")).to_contain_text("Choose accept or reject.")

    reviewer.check("input[name=outcome][value=accept]")
    reviewer.fill("#reason", "Unrestricted general support; the board approved it on 3 March.")
    shot(reviewer, "08-review-decide")
    reviewer.click("button[type=submit]:has-text('Record decision')")
    reviewer.wait_for_url(re.compile(r"/staff/review/$"))
    expect(_flash(reviewer, "success")).to_have_text(
        f"Gift #{gift_id} accepted; your reason is in its decision history.")
    expect(reviewer.locator("main")).to_contain_text("Nothing is held.")
    shot(reviewer, "09-review-decided")

    reviewer.goto(f"/staff/gifts/{gift_id}")
    expect(reviewer.locator("h1 .badge.accepted")).to_have_text("Accepted")
    expect(reviewer.locator("main")).to_contain_text("the board approved it on 3 March")
    expect(reviewer.locator("main")).to_contain_text("reviewer@example.org")
    shot(reviewer, "10-gift-accepted-by-reviewer")
    assert ok(api.get(f"/gifts/{gift_id}"), 200)["status"] == "accepted"


def test_a_gift_from_a_labs_senior_decision_maker_is_rejected(api, staff, shot):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    chief = person(api, "Casey Chief", "casey@example.org")
    affiliate(api, chief["id"], lab["id"], start="2019-01-01", senior=True, title="Chief Scientist")
    gift(api, person(api, "Dana Donor")["id"], "10000.00", today())  # so only the senior rule fires
    page = staff("fundraiser")
    gift_id = _check_then_record(page, chief["id"], "1000.00", "reject", ["senior_decision_maker"],
                                 shot, "11-gift-rejected")
    expect(page.locator("table.rules tr.fired")).to_contain_text(
        "Senior decision-maker at a covered lab on the gift date or within the 365-day cooling-off "
        "period: Casey Chief (Chief Scientist at Frontier Lab).")
    assert ok(api.get(f"/gifts/{gift_id}"), 200)["status"] == "rejected"


# --- import --------------------------------------------------------------------------------

DONORS_HEADER = "external_id,type,name,email,category,organization"
GIFTS_HEADER = "external_ref,donor_external_id,amount,currency,received_on,kind,purpose,method"


def _csv(name: str, *lines: str) -> dict:
    return {"name": name, "mimeType": "text/csv", "buffer": ("\n".join(lines) + "\n").encode()}


def test_import_shows_the_bad_line_then_imports_the_good_files(api, staff, shot, job_worker):
    page = staff("fundraiser")
    page.goto("/staff/import/")
    page.set_input_files("#donors", _csv("donors.csv", DONORS_HEADER,
                                         "IMP-1,person,Ada Import,ada@example.org,,",
                                         "IMP-2,robot,Bad Type,,,",
                                         "IMP-3,person,Bob Import,,,"))
    page.click("button[value=check]")
    errors = page.locator("section.alarm")
    expect(errors.locator("h2")).to_have_text("1 bad row: nothing was imported")
    bad = errors.locator("tbody tr")
    expect(bad).to_have_count(1)
    expect(bad.locator("td").nth(0)).to_have_text("donors.csv")
    expect(bad.locator("td").nth(1)).to_have_text("3")  # the header is line 1
    expect(bad.locator("td").nth(2)).to_contain_text("type")
    shot(page, "12-import-bad-row")

    good_donors = _csv("donors.csv", DONORS_HEADER, "IMP-1,person,Ada Import,ada@example.org,,",
                       "IMP-3,person,Bob Import,,,")
    good_gifts = _csv("gifts.csv", GIFTS_HEADER,
                      f"IMP-G1,IMP-1,120.00,USD,{today().isoformat()},cash,general,check")
    page.set_input_files("#donors", good_donors)
    page.set_input_files("#gifts", good_gifts)
    page.click("button[value=check]")
    checked = page.locator("section.card[role=status]")
    expect(checked.locator("h2")).to_have_text("Dry run: every row is good")
    expect(checked).to_contain_text("Ready to import 2 donors, 1 gifts.")
    assert ok(api.get("/donors?q=Import"), 200)["items"] == []  # a dry run writes nothing

    page.set_input_files("#donors", good_donors)  # "choose the same files again"
    page.set_input_files("#gifts", good_gifts)
    page.click("button[value=import]")  # a background job: its page follows it
    expect(page.get_by_role("heading", name="Imported")).to_be_visible(timeout=60_000)
    expect(page.locator("#job-status")).to_have_text("done")
    done = page.locator("main")
    expect(done).to_contain_text("2 donors, 0 affiliations and 1 gifts, in one transaction.")
    expect(done).to_contain_text("Gifts: 1 accepted, 0 held for review, 0 rejected.")
    shot(page, "13-import-done")
    names = {d["name"] for d in ok(api.get("/donors"), 200)["items"]}
    assert {"Ada Import", "Bob Import"} <= names and "Bad Type" not in names


# --- export --------------------------------------------------------------------------------

def _download(page, button: str) -> tuple[str, list[dict]]:
    with page.expect_download() as info:
        page.click(f"button:has-text('{button}')")
    download = info.value
    text = download.path().read_text(encoding="utf-8-sig")
    return download.suggested_filename, list(csv.DictReader(io.StringIO(text)))


def test_export_downloads_csv_with_formulas_neutralised(api, staff, shot):
    evil = person(api, "=HYPERLINK(\"http://evil.example\",\"click\")", "evil@example.org")
    plain = person(api, "Plain Name")
    gift(api, evil["id"], "75.00", today(), description="=2+5")
    gift(api, plain["id"], "10.00", today(), description="-minus first")

    page = staff("finance")
    page.goto("/staff/export/")
    expect(page.locator("h1")).to_have_text("Export for accounting")
    shot(page, "14-export")

    name, donors = _download(page, "Download donors.csv")
    assert name == f"donors-{today().isoformat()}.csv"
    names = {row["name"] for row in donors}
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in names
    assert "Plain Name" in names
    assert not any(n.startswith(("=", "+", "-", "@")) for n in names)

    name, gifts = _download(page, "Download gifts.csv")
    assert name == f"gifts-{today().isoformat()}.csv"
    descriptions = {row["description"] for row in gifts}
    assert descriptions == {"'=2+5", "'-minus first"}
    amounts = {row["amount"] for row in gifts}
    assert amounts == {"75.00", "10.00"}  # amounts stay numbers: no apostrophe


# --- the public donate page, up to Stripe Checkout (a local stub) ---------------------------------

CHECKOUT_PAGE = """<!doctype html><html><head><title>Stub checkout</title></head>
<body><h1>Stub Stripe Checkout</h1><p id="session">cs_test_browser</p></body></html>"""


def test_the_public_donate_page_sends_the_donor_to_checkout(app, httpserver, live_server, new_page,
                                                            shot):
    checkout_url = httpserver.url_for("/checkout/cs_test_browser")
    httpserver.expect_oneshot_request("/v1/checkout/sessions", method="POST").respond_with_json({
        "id": "cs_test_browser", "object": "checkout.session", "url": checkout_url})
    httpserver.expect_request("/checkout/cs_test_browser", method="GET").respond_with_data(
        CHECKOUT_PAGE, content_type="text/html")
    httpserver.expect_request("/favicon.ico").respond_with_data("", status=404)

    page = new_page()
    page.goto("/donate")
    expect(page.locator("h1")).to_have_text("Support independent AI evaluation")
    expect(page.locator(".who")).to_have_count(0)  # nobody is signed in
    page.click("#donate-submit")  # nothing chosen: refused, and nothing sent to Stripe
    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Choose an amount.")
    assert not [r for r, _ in httpserver.log if r.path == "/v1/checkout/sessions"]

    page.check("#amount-50")
    page.fill("#name", "Ada Lovelace")
    page.fill("#email", "ada@example.org")
    page.fill("#employer", "Analytical Engines Ltd")
    shot(page, "15-donate-form")
    page.click("#donate-submit")
    page.wait_for_url(checkout_url)
    expect(page.locator("h1")).to_have_text("Stub Stripe Checkout")
    shot(page, "16-donate-checkout-stub")

    calls = [r for r, _ in httpserver.log if r.path == "/v1/checkout/sessions"]
    assert len(calls) == 1
    sent = dict(parse_qsl(calls[0].get_data(as_text=True)))
    assert sent["line_items[0][price_data][unit_amount]"] == "5000"
    assert sent["line_items[0][price_data][currency]"] == "usd"
    assert sent["customer_email"] == "ada@example.org"
    assert sent["mode"] == "payment"
    assert sent["success_url"].startswith(f"{live_server}/donate/thanks?session_id=")
    assert calls[0].headers["Idempotency-Key"].startswith("donation-")
    httpserver.check_assertions()

    with app.extensions["armslength"].sessions() as session:
        donation = session.execute(select(OnlineDonation)).scalar_one()
        assert donation.checkout_session_id == "cs_test_browser"
        assert donation.amount_minor == 5000 and donation.currency == "USD"
        assert donation.state == "open"


# --- compliance dashboard and disclosures -------------------------------------------------------

def test_compliance_dashboard_and_publishing_a_disclosure(api, staff, new_page, shot):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    employee = person(api, "Lee Employee")
    affiliate(api, employee["id"], lab["id"], start="2015-01-01", title="Research engineer")
    gift(api, person(api, "Dana Donor")["id"], "10000.00", today())
    gift(api, employee["id"], "2000.00", today())

    reviewer = staff("reviewer")
    reviewer.goto("/staff/compliance")
    expect(reviewer.locator("#share-now .big")).to_have_text("16.6%")  # 2,000 of 12,000, shown rounded down
    expect(reviewer.locator("#share-now")).to_contain_text("2,000.00 USD of 12,000.00 USD")
    expect(reviewer.locator("#held .big")).to_have_text("0")
    shot(reviewer, "17-compliance-dashboard")

    reviewer.goto("/staff/disclosures/")
    reviewer.click("button:has-text('Preview')")
    reviewer.wait_for_url(re.compile(r"/staff/disclosures/preview\?"))
    expect(reviewer.locator("p.notice")).to_contain_text("Not published")
    shot(reviewer, "18-disclosure-preview")
    reviewer.click("button:has-text('Publish this disclosure')")
    reviewer.wait_for_url(re.compile(r"/disclosures/\d+$"))
    expect(_flash(reviewer, "success")).to_contain_text("published. Its figures are now frozen.")
    shot(reviewer, "19-disclosure-published")

    public = new_page()
    public.goto("/disclosures")
    expect(public.locator("h1")).to_have_text("Conflict-of-interest disclosures")
    expect(public.locator("main table tbody tr")).to_have_count(1)
    expect(public.locator("main table")).to_contain_text(f"{date(today().year, 1, 1)} to {today()}")
    shot(public, "20-disclosures-public")
    public.locator("main table tbody tr a").first.click()
    public.wait_for_url(re.compile(r"/disclosures/\d+$"))
    expect(public.locator("h1")).to_have_text("Conflict-of-interest disclosure")
    expect(public.locator("main")).to_contain_text("16.66% (0.166666)")
    expect(public.locator("main")).to_contain_text("of which lab employees 2000.00 USD")
    expect(public.locator("main")).not_to_contain_text("Lee Employee")  # individuals are not named
    shot(public, "21-disclosure-public-view")


def test_a_viewer_has_no_review_link_and_is_refused_the_queue(app, new_page, shot):
    make_user(app, "viewer@example.org", "viewer")
    page = new_page()
    sign_in(page, "viewer@example.org")
    expect(page.locator("nav[aria-label=Main]")).not_to_contain_text("Review")
    response = page.goto("/staff/review/")
    assert response is not None and response.status == 403
    expect(page.locator("main h1")).to_have_text("Not allowed")
    expect(page.locator("main")).to_contain_text("Your role (viewer) may not open this page")
    expect(page.get_by_role("link", name="Back to the start")).to_be_visible()
    shot(page, "22-viewer-refused-review-queue")
