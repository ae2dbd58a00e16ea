"""Organisation screens: the register, detail, create and edit (with re-screening)."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import Organization
from tests import builders as b
from tests.web.ledger_reads import audit, objects, text
from tests.webtools import post_refused, submit


def _org(api, name, covered_lab=False, parent_id=None, aliases=()):
    return b.ok(api.post("/organizations", {"name": name, "covered_lab": covered_lab,
                                            "parent_id": parent_id, "aliases": list(aliases)}))


def _field_error(page: str, field: str) -> str:
    block = re.search(rf'<div class="field[^"]*has-error">\s*<label for="{field}".*?</div>', page,
                      re.S)
    assert block, f"no error on {field}"
    return block.group(0)


def test_anonymous_visitor_is_sent_to_sign_in(client, api):
    lab = _org(api, "Frontier Lab", True)
    for path in ("/staff/organizations/", f"/staff/organizations/{lab['id']}",
                 "/staff/organizations/new", f"/staff/organizations/{lab['id']}/edit"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_viewer_reads_but_cannot_write(api, web_as, db):
    lab = _org(api, "Frontier Lab", True)
    viewer = web_as("viewer")
    assert viewer.get("/staff/organizations/").status_code == 200
    assert viewer.get(f"/staff/organizations/{lab['id']}").status_code == 200
    assert viewer.get("/staff/organizations/new").status_code == 403
    for path, data in {
        "/staff/organizations/new": {"name": "Sneaky Org"},
        f"/staff/organizations/{lab['id']}/edit": {"name": "Frontier Lab"},
    }.items():
        assert post_refused(viewer, "/staff/organizations/", path, data).status_code == 403
    orgs = objects(db, select(Organization))
    assert [(o.name, o.covered_lab) for o in orgs] == [("Frontier Lab", True)]
    assert audit(db, "organization.changed") == []


def _row(page: str, name: str) -> str:
    """The table row whose first cell links to `name`."""
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        first_cell = re.search(r"<td>(.*?)</td>", row, re.S)
        if first_cell and f">{name}</a>" in first_cell.group(1):
            return row
    raise AssertionError(f"no row for {name}")


def test_list_shows_covered_flag_parent_and_affiliates(api, web_as):
    lab = _org(api, "Frontier Lab", True, aliases=["FL"])
    _org(api, "Frontier Lab Foundation", parent_id=lab["id"])
    _org(api, "Plain Corp")
    page = text(web_as("viewer").get("/staff/organizations/"))
    lab_row = _row(page, "Frontier Lab")
    assert "also FL" in lab_row and "Covered lab" in lab_row
    assert "Frontier Lab Foundation" in lab_row  # listed among its affiliates
    foundation_row = _row(page, "Frontier Lab Foundation")
    assert "Affiliate of a covered lab" in foundation_row and ">Frontier Lab</a>" in foundation_row
    plain_row = _row(page, "Plain Corp")
    assert "Not covered" in plain_row


def test_search_by_name_or_alias(api, web_as):
    _org(api, "Google DeepMind", True, aliases=["GDM"])
    _org(api, "Plain Corp")
    viewer = web_as("viewer")
    for term in ("deepmind", "gdm"):
        page = text(viewer.get("/staff/organizations/", query_string={"q": term}))
        assert "Google DeepMind" in page and "Plain Corp" not in page
    assert "No organisations match" in text(viewer.get("/staff/organizations/?q=nothing"))


def test_detail_shows_people_affiliates_in_kind_and_org_donors(api, web_as):
    lab = _org(api, "Frontier Lab", True)
    _org(api, "Frontier Lab Foundation", parent_id=lab["id"])
    current = b.person(api, "Cora Current")
    b.affiliate(api, current["id"], lab["id"], start="2020-01-01", title="CEO", senior=True)
    former = b.person(api, "Fred Former")
    b.affiliate(api, former["id"], lab["id"], start="2010-01-01", end="2012-12-31")
    b.org_donor(api, "Frontier Lab Inc.", lab["id"])
    b.ok(api.post("/in-kind", {"organization_id": lab["id"], "description": "Pre-release model access",
                               "purpose": "evaluation", "start_date": "2024-01-01",
                               "estimated_value": "25000.00", "currency": "USD"}))
    page = text(web_as("viewer").get(f"/staff/organizations/{lab['id']}"))
    people = page.split('id="h-people"')[1].split("</section>")[0]
    assert people.index("Cora Current") < people.index("Fred Former")  # current first
    cora = re.search(r"Cora Current.*?</tr>", people, re.S).group(0)
    assert "Current" in cora and "Yes, senior" in cora and "CEO" in cora
    fred = re.search(r"Fred Former.*?</tr>", people, re.S).group(0)
    assert "Ended" in fred and "2012-12-31" in fred
    assert "Frontier Lab Foundation" in page.split('id="h-affiliates"')[1].split("</section>")[0]
    in_kind = page.split('id="h-inkind"')[1].split("</section>")[0]
    assert "Pre-release model access" in in_kind and "25,000.00 USD" in in_kind
    assert "Frontier Lab Inc." in page.split('id="h-donors"')[1]


def test_unknown_organisation_is_404(web_as):
    assert web_as("viewer").get("/staff/organizations/42").status_code == 404


def test_create_through_the_form(api, web_as, db):
    lab = _org(api, "Frontier Lab", True)
    reviewer = web_as("reviewer")  # reviewers may maintain the register
    response = submit(reviewer, "/staff/organizations/new", {
        "name": "Frontier Lab Foundation", "covered_lab": "", "aliases": " FLF ,  The Foundation,",
        "parent_id": str(lab["id"])})
    assert response.status_code == 302
    org = objects(db, select(Organization).where(Organization.name == "Frontier Lab Foundation"))[0]
    assert org.aliases == ["FLF", "The Foundation"] and org.parent_id == lab["id"]
    assert org.covered_lab is False
    (entry,) = [e for e in audit(db, "organization.created") if e.entity_id == org.id]
    assert entry.data["aliases"] == ["FLF", "The Foundation"]
    page = text(reviewer.get(response.headers["Location"]))
    assert "Organisation Frontier Lab Foundation created." in page
    assert "Affiliate of a covered lab" in page


def test_duplicate_name_is_refused_on_the_field_and_nothing_is_written(api, web_as, db):
    _org(api, "Frontier Lab", True)
    response = submit(web_as("fundraiser"), "/staff/organizations/new", {
        "name": "Frontier Lab", "covered_lab": "y", "aliases": "", "parent_id": ""})
    assert response.status_code == 422
    assert "an organisation with this name exists" in _field_error(text(response), "name")
    assert len(objects(db, select(Organization))) == 1
    assert len(audit(db, "organization.created")) == 1  # the one the API made


def test_empty_name_is_refused(web_as, db):
    response = submit(web_as("fundraiser"), "/staff/organizations/new", {"name": "  "})
    assert response.status_code == 422
    assert "This field is required." in _field_error(text(response), "name")
    assert objects(db, select(Organization)) == []


def test_marking_an_organisation_covered_rescreens_its_people_and_its_own_gifts(api, web_as, db):
    acme = _org(api, "Acme AI")
    worker = b.person(api, "Wendy Worker")
    b.affiliate(api, worker["id"], acme["id"], start="2020-01-01")
    worker_gift = b.gift(api, worker["id"], "100.00", "2025-03-01")
    corporate = b.org_donor(api, "Acme AI Inc.", acme["id"])
    corporate_gift = b.gift(api, corporate["id"], "2000.00", "2025-03-02")
    bystander_gift = b.gift(api, b.person(api, "Bystander")["id"], "5000.00", "2025-03-03")
    assert {worker_gift["status"], corporate_gift["status"]} == {"accepted"}

    fundraiser = web_as("fundraiser")
    form = text(fundraiser.get(f"/staff/organizations/{acme['id']}/edit"))
    assert "past gifts that were screened" in form  # the page says what saving will do
    response = submit(fundraiser, f"/staff/organizations/{acme['id']}/edit", {
        "name": "Acme AI", "covered_lab": "y", "aliases": "", "parent_id": ""})
    assert response.status_code == 302
    page = text(fundraiser.get(response.headers["Location"]))
    assert "2 past gift(s) were re-screened and put on hold" in page
    assert "Covered lab" in page
    for gift in (worker_gift, corporate_gift):
        assert b.ok(api.get(f"/gifts/{gift['id']}"), 200)["status"] == "held"
    assert b.ok(api.get(f"/gifts/{bystander_gift['id']}"), 200)["status"] == "accepted"
    (entry,) = audit(db, "organization.changed")
    assert entry.data["before"]["covered_lab"] is False and entry.data["after"]["covered_lab"] is True
    assert entry.data["coverage_changed"] == [acme["id"]]
    assert sorted(entry.data["rescreened_gift_ids"]) == sorted([worker_gift["id"], corporate_gift["id"]])


def test_moving_an_organisation_under_a_lab_rescreens_its_affiliates_people(api, web_as):
    lab = _org(api, "Frontier Lab", True)
    foundation = _org(api, "Some Foundation")
    fellow = b.person(api, "Fay Fellow")
    b.affiliate(api, fellow["id"], foundation["id"], start="2020-01-01", end="2025-01-31")
    inside = b.gift(api, fellow["id"], "100.00", "2025-03-01")  # within the cooling-off
    b.gift(api, b.person(api, "Big Giver")["id"], "5000.00", "2025-03-01")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/organizations/{foundation['id']}/edit", {
        "name": "Some Foundation", "covered_lab": "", "aliases": "", "parent_id": str(lab["id"])})
    assert response.status_code == 302
    assert "1 past gift(s) were re-screened" in text(fundraiser.get(response.headers["Location"]))
    assert b.ok(api.get(f"/gifts/{inside['id']}"), 200)["status"] == "held"


def test_renaming_rescreens_nothing(api, web_as, db):
    lab = _org(api, "Frontier Lab", True)
    person = b.person(api, "Lee Employee")
    b.affiliate(api, person["id"], lab["id"], start="2015-01-01")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/organizations/{lab['id']}/edit", {
        "name": "Frontier Lab Ltd", "covered_lab": "y", "aliases": "FL, Frontier Lab",
        "parent_id": ""})
    assert response.status_code == 302
    assert "No past gifts needed re-screening." in text(fundraiser.get(response.headers["Location"]))
    (entry,) = audit(db, "organization.changed")
    assert entry.data["coverage_changed"] == []
    assert entry.data["after"]["aliases"] == ["FL", "Frontier Lab"]


def test_unticking_a_lab_or_dropping_its_name_waits_for_a_second_person(api, web_as, db):
    lab = _org(api, "Frontier Lab", True)
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/organizations/{lab['id']}/edit", {
        "name": "Frontier Lab Ltd", "covered_lab": "", "aliases": "", "parent_id": ""})
    assert response.status_code == 302
    page = text(fundraiser.get(response.headers["Location"]))
    assert "waits for a second person" in page
    assert "covered_lab true to false" in page and "frontier lab" in page
    org = db.get(Organization, lab["id"])
    assert (org.name, org.covered_lab) == ("Frontier Lab", True)
    queue = text(web_as("reviewer").get("/staff/review/"))
    assert "Changes pending second approval" in queue and "Approve change #1" in queue


def test_an_organisation_cannot_sit_under_its_own_affiliate(api, web_as, db):
    lab = _org(api, "Frontier Lab", True)
    child = _org(api, "Frontier Lab Foundation", parent_id=lab["id"])
    response = submit(web_as("fundraiser"), f"/staff/organizations/{lab['id']}/edit", {
        "name": "Frontier Lab", "covered_lab": "y", "aliases": "", "parent_id": str(child["id"])})
    assert response.status_code == 422
    assert "cannot sit under itself" in _field_error(text(response), "parent_id")
    assert objects(db, select(Organization.parent_id).where(Organization.id == lab["id"])) == [None]
    assert audit(db, "organization.changed") == []
