"""Donor screens: list and search, detail, create/edit forms, affiliations and re-screening."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from models import Affiliation, Donor
from tests import builders as b
from tests.web.ledger_reads import audit, objects, read, text
from tests.webtools import post_refused, submit

# --- access -----------------------------------------------------------------------------------

def test_anonymous_visitor_is_sent_to_sign_in(client, api):
    donor = b.person(api, "Dana Donor")
    for path in ("/staff/donors/", f"/staff/donors/{donor['id']}", "/staff/donors/new",
                 f"/staff/donors/{donor['id']}/edit", f"/staff/donors/{donor['id']}/affiliations/new"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path


def test_viewer_reads_but_cannot_write(api, web_as, db):
    world = b.World(api)
    viewer = web_as("viewer")
    assert viewer.get("/staff/donors/").status_code == 200
    assert viewer.get(f"/staff/donors/{world.employee['id']}").status_code == 200
    assert viewer.get("/staff/donors/new").status_code == 403
    aff_id = read(db, select(Affiliation.id))[0][0]
    writes = {
        "/staff/donors/new": {"type": "person", "name": "Sneaky"},
        f"/staff/donors/{world.donor['id']}/edit": {"name": "Renamed", "category": "individual"},
        f"/staff/donors/{world.employee['id']}/affiliations/new": {
            "organization_id": world.lab["id"], "kind": "employee", "start_date": "2020-01-01"},
        f"/staff/donors/{world.employee['id']}/affiliations/{aff_id}/edit": {
            "organization_id": world.lab["id"], "kind": "employee", "start_date": "2020-01-01"},
    }
    for path, data in writes.items():
        # A valid CSRF token from a page the viewer may open: the refusal is the role's.
        response = post_refused(viewer, "/staff/donors/", path, data)
        assert response.status_code == 403, path
    assert [d.name for d in objects(db, select(Donor).order_by(Donor.id))] == [
        "Lee Employee", "Dana Donor", "Frontier Lab (corporate)"]


def test_reviewer_may_add_affiliations_but_not_create_donors(api, web_as):
    donor = b.person(api, "Dana Donor")
    reviewer = web_as("reviewer")
    assert reviewer.get(f"/staff/donors/{donor['id']}/affiliations/new").status_code == 200
    assert reviewer.get("/staff/donors/new").status_code == 403
    page = text(reviewer.get(f"/staff/donors/{donor['id']}"))
    assert "Add affiliation" in page and f"/staff/donors/{donor['id']}/edit" not in page


# --- list, search, totals -----------------------------------------------------------------------

def test_list_shows_lifetime_accepted_total_net_of_refunds_and_last_gift(api, web_as):
    donor = b.person(api, "Dana Donor", "dana@example.org")
    first = b.gift(api, donor["id"], "100.00", "2025-01-10")
    b.gift(api, donor["id"], "50.00", "2025-02-20")
    b.ok(api.post(f"/gifts/{first['id']}/refund", {"amount": "20.00", "refunded_on": "2025-03-01"}))
    b.person(api, "Nobody Gave")
    page = text(web_as("viewer").get("/staff/donors/"))
    row = re.search(r"Dana Donor.*?</tr>", page, re.S).group(0)
    assert "130.00 USD" in row
    assert "2025-02-20" in row
    assert "dana@example.org" in row
    nobody = re.search(r"Nobody Gave.*?</tr>", page, re.S).group(0)
    assert "0.00 USD" in nobody and "—" in nobody


def test_held_and_rejected_gifts_do_not_count_as_accepted(api, web_as):
    world = b.World(api)
    # The lab's own money for evaluations is rejected; a corporate gift is held.
    b.gift(api, world.lab_donor["id"], "900.00", "2025-01-10", purpose="evaluation_services")
    b.gift(api, world.lab_donor["id"], "800.00", "2025-01-11")
    page = text(web_as("viewer").get(f"/staff/donors/{world.lab_donor['id']}"))
    assert "Lifetime accepted</dt><dd>0.00 USD" in page
    assert "Rejected" in page and "Held" in page


@pytest.mark.parametrize("term, expected", [
    ("dana", {"Dana Donor"}),
    ("DANA@EXAMPLE", {"Dana Donor"}),
    ("frontier", {"Lee Employee", "Frontier Lab (corporate)"}),  # affiliated people and org donors
    ("GDM", {"Lee Employee", "Frontier Lab (corporate)"}),  # an alias of the organisation
    ("%", set()),  # LIKE wildcards are matched literally
    ("zzz", set()),
])
def test_search_by_name_email_and_organisation(api, web_as, term, expected):
    lab = b.ok(api.post("/organizations", {"name": "Frontier Lab", "covered_lab": True,
                                           "aliases": ["GDM"]}))
    employee = b.person(api, "Lee Employee")
    b.affiliate(api, employee["id"], lab["id"], start="2015-01-01")
    b.person(api, "Dana Donor", "dana@example.org")
    b.org_donor(api, "Frontier Lab (corporate)", lab["id"])
    b.person(api, "Plain Person", "plain@example.org")
    page = text(web_as("viewer").get("/staff/donors/", query_string={"q": term}))
    shown = set(re.findall(r'<a href="/staff/donors/\d+">([^<]+)</a>', page))
    assert shown == expected


def test_list_is_paginated(api, web_as):
    for i in range(30):
        b.person(api, f"Donor {i:02d}")
    viewer = web_as("viewer")
    first = text(viewer.get("/staff/donors/"))
    assert "Donor 00" in first and "Donor 24" in first and "Donor 25" not in first
    assert "Page 1 of 2" in first
    second = text(viewer.get("/staff/donors/?page=2"))
    assert "Donor 25" in second and "Donor 29" in second and "Donor 00" not in second


def test_totals_take_one_aggregate_query_not_one_per_row(app, api, web_as):
    def statements_for_list(count: int) -> int:
        for i in range(count):
            donor = b.person(api, f"Giver {count}-{i}")
            b.gift(api, donor["id"], "10.00", "2025-01-10")
        viewer = web_as("viewer")
        seen: list[str] = []
        engine = app.extensions["armslength"].engine

        def count_statement(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count_statement)
        try:
            assert viewer.get("/staff/donors/").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count_statement)
        return len(seen)

    assert statements_for_list(2) == statements_for_list(10)


# --- detail ------------------------------------------------------------------------------------

def test_detail_shows_history_affiliations_attributions_pledges_and_decisions(api, web_as):
    world = b.World(api)
    advisor = world.donor
    fund = b.org_donor(api, "Giving Fund", category="daf_sponsor")
    grant = b.gift(api, fund["id"], "500.00", "2025-04-01",
                   attributions=[{"donor_id": advisor["id"], "fraction": "1"}])
    own = b.gift(api, advisor["id"], "75.00", "2025-05-01")
    pledge = b.ok(api.post("/pledges", {"donor_id": advisor["id"], "amount": "300.00",
                                        "currency": "USD", "pledged_on": "2025-01-01"}))
    page = text(web_as("viewer").get(f"/staff/donors/{advisor['id']}"))
    assert f'href="/staff/gifts/{own["id"]}"' in page
    assert "75.00 USD" in page
    attributed = page.split('id="h-attributions"')[1].split("</section>")[0]
    assert f'href="/staff/gifts/{grant["id"]}"' in attributed
    assert "Giving Fund" in attributed and "DAF advisor" in attributed and "100%" in attributed
    assert f'href="/staff/pledges/{pledge["id"]}"' in page and "300.00 USD" in page
    decisions = page.split('id="h-decisions"')[1]
    assert decisions.count("Screening") == 2  # their own gift and the grant attributed to them

    employee = text(web_as("viewer").get(f"/staff/donors/{world.employee['id']}"))
    affiliations = employee.split('id="h-affiliations"')[1].split("</section>")[0]
    assert "Frontier Lab" in affiliations and "Covered lab" in affiliations
    assert "Research engineer" in affiliations and "2015-01-01" in affiliations
    assert "ongoing" in affiliations


def test_unknown_donor_is_404(web_as):
    assert web_as("viewer").get("/staff/donors/999").status_code == 404


# --- create and edit ---------------------------------------------------------------------------

def test_create_person_through_the_form(web_as, db):
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, "/staff/donors/new", {
        "type": "person", "name": "Ada Giver", "email": "ada@example.org", "category": "",
        "organization_id": "", "anonymous": "y"})
    assert response.status_code == 302
    (donor,) = objects(db, select(Donor))
    assert (donor.name, donor.email, donor.category, donor.anonymous) == (
        "Ada Giver", "ada@example.org", "individual", True)
    assert response.headers["Location"] == f"/staff/donors/{donor.id}"
    entries = audit(db, "donor.created")
    assert [e.entity_id for e in entries] == [donor.id]
    assert entries[0].actor == "web:web-fundraiser@example.org"
    page = text(fundraiser.get(response.headers["Location"]))
    assert "Donor Ada Giver created." in page and "anonymous publicly" in page


def test_create_organisation_donor_linked_to_its_organisation(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    fundraiser = web_as("fundraiser")
    form = text(fundraiser.get(f"/staff/donors/new?type=organization&organization_id={lab['id']}"))
    assert f'<option selected value="{lab["id"]}">Frontier Lab (covered)</option>' in form
    response = submit(fundraiser, "/staff/donors/new", {
        "type": "organization", "name": "Frontier Lab Inc.", "organization_id": str(lab["id"]),
        "category": "company"})
    assert response.status_code == 302
    (donor,) = objects(db, select(Donor))
    assert donor.organization_id == lab["id"] and donor.category == "company"


@pytest.mark.parametrize("data, field, message", [
    ({"type": "person", "name": "Ada", "category": "company"}, "category",
     "a person&#39;s category is &#39;individual&#39;"),
    ({"type": "person", "name": "", "category": ""}, "name", "This field is required."),
    ({"type": "person", "name": "Ada", "email": "not-an-email", "category": ""}, "email",
     "Invalid email address."),
    ({"type": "person", "name": "Ada", "category": "", "organization_id": "ORG"}, "organization_id",
     "only an organisation donor is an organisation"),
])
def test_invalid_donor_is_not_saved_and_the_form_says_why(api, web_as, db, data, field, message):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    if data.get("organization_id") == "ORG":
        data = {**data, "organization_id": str(lab["id"])}
    response = submit(web_as("fundraiser"), "/staff/donors/new", data)
    assert response.status_code == 422
    page = text(response)
    assert "Nothing was saved." in page
    block = re.search(rf'<div class="field has-error">\s*<label for="{field}".*?</div>', page, re.S)
    assert block and message in block.group(0), page
    assert read(db, select(Donor)) == []
    assert audit(db, "donor.created") == []


def test_edit_donor_records_what_changed_without_personal_data(api, web_as, db):
    donor = b.person(api, "Dana Donor", "dana@example.org")
    fundraiser = web_as("fundraiser")
    form = text(fundraiser.get(f"/staff/donors/{donor['id']}/edit"))
    assert 'value="Dana Donor"' in form and 'value="dana@example.org"' in form
    response = submit(fundraiser, f"/staff/donors/{donor['id']}/edit", {
        "name": "Dana D. Donor", "email": "dana@example.org", "category": "individual",
        "anonymous": "y"})
    assert response.status_code == 302
    (row,) = objects(db, select(Donor))
    assert row.name == "Dana D. Donor" and row.anonymous is True
    (entry,) = audit(db, "donor.changed")
    assert entry.entity_id == donor["id"]
    assert entry.data["changed"] == ["name", "anonymous"]
    assert entry.data["before"] == {"anonymous": False}
    assert entry.data["after"] == {"anonymous": True}
    assert "Dana" not in str(entry.data)
    assert "Donor saved." in text(fundraiser.get(response.headers["Location"]))


def test_edit_refuses_a_company_category_for_a_person(api, web_as, db):
    donor = b.person(api, "Dana Donor")
    response = submit(web_as("fundraiser"), f"/staff/donors/{donor['id']}/edit", {
        "name": "Dana Donor", "category": "company"})
    assert response.status_code == 422
    assert "a person&#39;s category is &#39;individual&#39;" in text(response)
    assert read(db, select(Donor.category)) == [("individual",)]
    assert audit(db, "donor.changed") == []


# --- affiliations -------------------------------------------------------------------------------

def test_late_affiliation_rescreens_past_gifts_and_says_so(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    donor = b.person(api, "Sam Senior")
    before = b.gift(api, donor["id"], "100.00", "2025-03-01")
    other = b.person(api, "Other Donor")
    b.gift(api, other["id"], "1000.00", "2025-03-02")
    assert before["status"] == "accepted"

    reviewer = web_as("reviewer")
    response = submit(reviewer, f"/staff/donors/{donor['id']}/affiliations/new", {
        "organization_id": str(lab["id"]), "kind": "board_member", "title": "Chief Scientist",
        "senior_decision_maker": "y", "start_date": "2024-06-01", "end_date": ""})
    assert response.status_code == 302
    page = text(reviewer.get(response.headers["Location"]))
    assert ("Affiliation added. 1 past gift was re-screened and put on hold for a reviewer"
            in page)
    affiliations = page.split('id="h-affiliations"')[1].split("</section>")[0]
    assert "Chief Scientist" in affiliations and "Board member" in affiliations
    assert "Yes, senior" in affiliations and "Covered lab" in affiliations
    history = page.split('id="h-gifts"')[1].split("</section>")[0]
    assert '<span class="badge held">Held</span>' in history
    assert "Re-screen" in page.split('id="h-decisions"')[1]
    assert b.ok(api.get(f"/gifts/{before['id']}"), 200)["status"] == "held"
    (entry,) = audit(db, "affiliation.added")
    assert entry.entity_id == donor["id"] and entry.data["senior_decision_maker"] is True


def test_affiliation_with_an_uncovered_organisation_rescreens_nothing(api, web_as):
    org = b.organization(api, "Plain Corp")
    donor = b.person(api, "Dana Donor")
    b.gift(api, donor["id"], "100.00", "2025-03-01")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/donors/{donor['id']}/affiliations/new", {
        "organization_id": str(org["id"]), "kind": "employee", "start_date": "2020-01-01"})
    assert response.status_code == 302
    page = text(fundraiser.get(response.headers["Location"]))
    assert "Affiliation added. No past gifts needed re-screening." in page


def test_affiliation_end_before_start_is_refused_on_the_field(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    donor = b.person(api, "Dana Donor")
    response = submit(web_as("fundraiser"), f"/staff/donors/{donor['id']}/affiliations/new", {
        "organization_id": str(lab["id"]), "kind": "employee", "start_date": "2024-06-01",
        "end_date": "2024-01-01"})
    assert response.status_code == 422
    block = re.search(r'<div class="field has-error">\s*<label for="end_date".*?</div>',
                      text(response), re.S)
    assert block and "end_date must not be before start_date" in block.group(0)
    assert read(db, select(Affiliation)) == []
    assert audit(db, "affiliation.added") == []


def test_organisation_donors_have_no_affiliations(api, web_as):
    org_donor = b.org_donor(api, "Some Company")
    assert web_as("fundraiser").get(
        f"/staff/donors/{org_donor['id']}/affiliations/new").status_code == 404


def test_edit_affiliation_rescreens_and_is_audited(api, web_as, db):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    plain = b.organization(api, "Plain Corp")
    donor = b.person(api, "Dana Donor")
    aff = b.affiliate(api, donor["id"], plain["id"], start="2020-01-01", title="Engineer")
    gift = b.gift(api, donor["id"], "100.00", "2025-03-01")
    b.gift(api, b.person(api, "Big Giver")["id"], "5000.00", "2025-03-01")
    fundraiser = web_as("fundraiser")
    form = text(fundraiser.get(f"/staff/donors/{donor['id']}/affiliations/{aff['id']}/edit"))
    assert 'value="Engineer"' in form and 'value="2020-01-01"' in form
    assert f'<option selected value="{plain["id"]}">Plain Corp</option>' in form
    # It turns out the employer was the lab all along.
    response = submit(fundraiser, f"/staff/donors/{donor['id']}/affiliations/{aff['id']}/edit", {
        "organization_id": str(lab["id"]), "kind": "employee", "title": "Engineer",
        "start_date": "2020-01-01", "end_date": ""})
    assert response.status_code == 302
    assert "1 past gift was re-screened" in text(fundraiser.get(response.headers["Location"]))
    assert b.ok(api.get(f"/gifts/{gift['id']}"), 200)["status"] == "held"
    (entry,) = audit(db, "affiliation.changed")
    assert entry.data["before"]["organization_id"] == plain["id"]
    assert entry.data["after"]["organization_id"] == lab["id"]


def test_an_affiliation_is_reached_only_through_its_own_donor(api, web_as):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    one = b.person(api, "One")
    two = b.person(api, "Two")
    aff = b.affiliate(api, one["id"], lab["id"])
    fundraiser = web_as("fundraiser")
    assert fundraiser.get(f"/staff/donors/{two['id']}/affiliations/{aff['id']}/edit").status_code == 404
    assert fundraiser.get(f"/staff/donors/{one['id']}/affiliations/{aff['id']}/edit").status_code == 200
