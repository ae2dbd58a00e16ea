"""Relationships and households in the staff pages: recorded from the donor page's own form
(re-screening at once), ended or deleted from it (a second person when the policy screens
the relationship), and the household page's combined giving."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import PendingChange, Relationship
from tests import builders as b
from tests.web.ledger_reads import objects, text
from tests.webtools import post_refused, submit


def _page(donor_id: int) -> str:
    return f"/staff/donors/{donor_id}"


def _senior_and_spouse(api):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    senior = b.person(api, "Carla Chief")
    b.affiliate(api, senior["id"], lab["id"], start="2018-01-01", senior=True, title="CEO")
    return senior, b.person(api, "Sam Spouse")


def test_a_relationship_recorded_on_the_donor_page_rescreens_and_shows_on_both_pages(
        api, web_as, db):
    senior, spouse = _senior_and_spouse(api)
    made = b.gift(api, spouse["id"], "120.00", "2026-02-01")
    assert made["status"] == "accepted"
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, _page(spouse["id"]), {
        "relationship-related_donor_id": str(senior["id"]),
        "relationship-kind": "spouse_partner", "relationship-start_date": "2016-09-01"},
        action=f"/staff/donors/{spouse['id']}/relationships/new", follow_redirects=True)
    assert response.status_code == 200
    shown = text(response)
    assert "1 past gift was re-screened and put on hold" in shown
    listed = re.search(r'<table id="relationship-list">.*?</table>', shown, re.S).group(0)
    assert "Carla Chief" in listed and "Spouse or partner" in listed and "2016-09-01" in listed
    assert "Sam Spouse" in text(fundraiser.get(_page(senior["id"])))
    assert b.ok(api.get(f"/gifts/{made['id']}"), 200)["status"] == "held"
    [rel] = objects(db, select(Relationship))
    assert (rel.donor_id, rel.related_donor_id) == tuple(sorted((senior["id"], spouse["id"])))


def test_a_refused_relationship_comes_back_with_the_message(api, web_as, db):
    donor = b.person(api, "Ann Alone")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, _page(donor["id"]), {
        "relationship-related_donor_id": str(donor["id"]),
        "relationship-kind": "household", "relationship-start_date": "2020-01-01"},
        action=f"/staff/donors/{donor['id']}/relationships/new")
    assert response.status_code == 422
    assert "a person is not related to themself" in text(response)
    assert objects(db, select(Relationship)) == []


def test_ending_a_screened_relationship_waits_for_a_second_person(api, web_as, db):
    senior, spouse = _senior_and_spouse(api)
    rel = b.ok(api.post(f"/donors/{spouse['id']}/relationships", {
        "related_donor_id": senior["id"], "kind": "spouse_partner",
        "start_date": "2016-09-01"}))
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, _page(spouse["id"]), {"end_date": "2025-01-31"},
                      action=f"/staff/donors/{spouse['id']}/relationships/{rel['id']}/end",
                      follow_redirects=True)
    assert "waits for a second person" in text(response)
    db.rollback()
    assert db.get(Relationship, rel["id"]).end_date is None
    [change] = objects(db, select(PendingChange))
    assert (change.kind, change.proposed) == ("relationship_end", {"end_date": "2025-01-31"})


def test_a_plain_relationship_is_deleted_at_once(api, web_as, db):
    a, c = b.person(api, "Ann Plain"), b.person(api, "Cal Plain")
    rel = b.ok(api.post(f"/donors/{a['id']}/relationships", {
        "related_donor_id": c["id"], "kind": "family", "start_date": "2016-09-01"}))
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, _page(a["id"]), {},
                      action=f"/staff/donors/{a['id']}/relationships/{rel['id']}/remove",
                      follow_redirects=True)
    assert "Relationship deleted." in text(response)
    db.rollback()
    assert db.get(Relationship, rel["id"]) is None


def test_the_household_page_shows_combined_giving_and_soft_credits(api, web_as):
    ann, ben = b.person(api, "Ann Home"), b.person(api, "Ben Home")
    b.ok(api.post(f"/donors/{ann['id']}/relationships", {
        "related_donor_id": ben["id"], "kind": "household", "start_date": "2016-09-01"}))
    b.gift(api, ann["id"], "100.00", "2026-01-05")
    b.gift(api, ben["id"], "40.00", "2026-01-06")
    viewer = web_as("viewer")
    page = viewer.get(f"/staff/households/{ben['id']}", follow_redirects=True)
    assert page.status_code == 200
    shown = text(page)
    assert "Household of Ann Home" in shown
    giving = re.search(r'<dl class="facts" id="household-giving">.*?</dl>', shown, re.S).group(0)
    assert "140.00" in giving
    rows = re.search(r'<table id="household-members">.*?</table>', shown, re.S).group(0)
    assert re.search(r"Ben Home.*?40\.00.*?100\.00", rows, re.S)
    # A viewer sees the relationships, and no form to change them.
    donor_page = text(viewer.get(_page(ann["id"])))
    assert "Ben Home" in donor_page and 'id="relationship-form"' not in donor_page
    refused = post_refused(viewer, _page(ann["id"]),
                           f"/staff/donors/{ann['id']}/relationships/new",
                           {"relationship-related_donor_id": str(ben["id"]),
                            "relationship-kind": "family",
                            "relationship-start_date": "2020-01-01"})
    assert refused.status_code == 403
