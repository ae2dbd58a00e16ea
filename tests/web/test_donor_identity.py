"""The staff app's side of "one person, one record": the donor form's "this is probably X",
a reviewer's "a different person", merging records, answering a senior-sounding title, and
the CSV import refusing a second record for a recorded address."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import Affiliation, Donor, DonorMerge, Gift
from tests import builders as b
from tests.web.ledger_reads import audit, objects, read, text
from tests.web.test_import import DONORS_HEADER, counts, csv_text, errors_of, upload
from tests.webtools import post_refused, submit


def _names(db) -> list[str]:
    return [d.name for d in objects(db, select(Donor).order_by(Donor.id))]


def test_the_donor_form_says_this_is_probably_x_and_saves_nothing(api, web_as, db):
    morgan = b.person(api, "Morgan Chen", "morgan.chen@example.org")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, "/staff/donors/new", {
        "type": "person", "name": "Morgan Chen", "email": "MORGAN.chen@example.org"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Nothing was saved." in page
    assert "This is probably" in page
    assert f'href="/staff/donors/{morgan["id"]}">Morgan Chen</a>' in page
    assert "different-person" not in page  # a fundraiser cannot confirm it
    assert "a reviewer can confirm that" in text(response)
    assert _names(db) == ["Morgan Chen"]


def test_a_reviewer_confirms_a_different_person_and_the_audit_keeps_why(api, web_as, db):
    ana = b.person(api, "Ana Smith", "family@example.org")
    admin = web_as("admin")
    refused = submit(admin, "/staff/donors/new", {"type": "person", "name": "Ben Smith",
                                                  "email": "family@example.org"})
    assert refused.status_code == 422
    link = re.search(r'id="different-person" href="([^"]+)"', refused.get_data(as_text=True))
    assert link, "an admin is offered the way to confirm a different person"
    reviewer = web_as("reviewer")
    path = link.group(1).replace("&amp;", "&")
    assert reviewer.get("/staff/donors/new").status_code == 403  # not a fundraiser's form ...
    page = reviewer.get(path)  # ... but the confirmation is a reviewer's
    assert page.status_code == 200
    assert "Ana Smith" in text(page) and 'value="Ben Smith"' in page.get_data(as_text=True)
    unconfirmed = submit(reviewer, path, {"reason": "spouse"})
    assert unconfirmed.status_code == 422
    assert _names(db) == ["Ana Smith"]
    done = submit(reviewer, path, {"reason": "spouse sharing the address", "confirm": "y"})
    assert done.status_code == 302
    assert _names(db) == ["Ana Smith", "Ben Smith"]
    entry = audit(db, "donor.created")[-1]
    assert entry.data["different_person_from"] == ana["id"]
    assert entry.data["reason"] == "spouse sharing the address"
    assert web_as("fundraiser").get(path).status_code == 403


def test_changing_an_address_to_another_persons_is_refused(api, web_as, db):
    ana = b.person(api, "Ana", "ana@example.org")
    bob = b.person(api, "Bob", "bob@example.org")
    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/donors/{bob['id']}/edit", {"email": "Ana@Example.org"})
    assert response.status_code == 422
    assert f'href="/staff/donors/{ana["id"]}">Ana</a>' in response.get_data(as_text=True)
    assert [d.email for d in objects(db, select(Donor).order_by(Donor.id))] == [
        "ana@example.org", "bob@example.org"]
    # Its own address in other letters is no clash, and the normalised copy follows it.
    assert submit(fundraiser, f"/staff/donors/{bob['id']}/edit",
                  {"email": "BOB@example.org"}).status_code == 302
    assert read(db, select(Donor.email_key).where(Donor.id == bob["id"])) == [
        ("bob@example.org",)]


def test_a_reviewer_merges_a_second_record_from_the_donor_page(api, web_as, db):
    world = b.World(api)
    b.gift(api, world.donor["id"], "100000.00", "2026-01-05")
    morgan = b.person(api, "Morgan Chen", "morgan.chen@example.org")
    b.affiliate(api, morgan["id"], world.lab["id"], start="2024-01-01", senior=True,
                title="Vice President")
    second = b.person(api, "Morgan Chen", "mchen@personal.example")
    given = b.gift(api, second["id"], "5000.00", "2026-03-02")
    assert given["status"] == "held"  # rule possible_match: a namesake of a lab's VP

    fundraiser = web_as("fundraiser")
    assert "Merge another record" not in text(fundraiser.get(f"/staff/donors/{morgan['id']}"))
    assert fundraiser.get(f"/staff/donors/{morgan['id']}/merge").status_code == 403
    assert post_refused(fundraiser, "/staff/donors/", f"/staff/donors/{morgan['id']}/merge",
                        {"duplicate_id": second["id"], "confirm": "y"}).status_code == 403

    reviewer = web_as("reviewer")
    assert "Merge another record into this one" in text(
        reviewer.get(f"/staff/donors/{morgan['id']}"))
    merge_page = f"/staff/donors/{morgan['id']}/merge"
    page = reviewer.get(merge_page)
    assert f'href="/staff/donors/{second["id"]}"' in page.get_data(as_text=True)  # a candidate
    unconfirmed = submit(reviewer, merge_page, {"duplicate_id": str(second["id"])})
    assert unconfirmed.status_code == 422
    assert read(db, select(DonorMerge.duplicate_id)) == []
    done = submit(reviewer, merge_page, {"duplicate_id": str(second["id"]), "confirm": "y"},
                  follow_redirects=True)
    shown = text(done)
    assert f"Donor {second['id']} merged into this record" in shown
    assert "1 gift(s) re-screened" in shown
    assert read(db, select(Gift.donor_id, Gift.status).where(Gift.id == given["id"])) == [
        (morgan["id"], "held")]
    dup_page = text(reviewer.get(f"/staff/donors/{second['id']}"))
    assert (f'This record was merged into <a href="/staff/donors/{morgan["id"]}">Morgan Chen'
            in dup_page)
    assert "Merge another record" not in dup_page
    assert audit(db, "donor.merged")[-1].data["duplicate_id"] == second["id"]
    again = submit(reviewer, merge_page, {"duplicate_id": str(second["id"]), "confirm": "y"})
    assert again.status_code == 422 and "already merged" in text(again)


def test_a_reviewer_answers_a_senior_sounding_title_on_the_donor_page(api, web_as, db):
    world = b.World(api)
    pat = b.person(api, "Pat Lee")
    b.affiliate(api, pat["id"], world.lab["id"], start="2024-01-01",
                title="Vice President of Research")
    b.affiliate(api, pat["id"], world.other_org["id"], start="2024-01-01", title="Director")
    aff_id = read(db, select(Affiliation.id).where(Affiliation.donor_id == pat["id"],
                                                   Affiliation.organization_id == world.lab["id"]))[0][0]
    donor_page = f"/staff/donors/{pat['id']}"
    fundraiser_view = fundraiser_page = web_as("fundraiser").get(donor_page)
    assert "Title suggests a senior role" in text(fundraiser_page)
    assert "title-review" not in fundraiser_view.get_data(as_text=True)
    reviewer = web_as("reviewer")
    page = reviewer.get(donor_page).get_data(as_text=True)
    assert page.count("Title suggests a senior role") == 1  # not the uncovered organisation's
    action = f"/staff/donors/{pat['id']}/affiliations/{aff_id}/title-review"
    done = submit(reviewer, donor_page, {"reason": "runs a team; no budget",
                                         "answer": "not_senior"}, action=action)
    assert done.status_code == 302
    assert read(db, select(Affiliation.title_cleared).where(Affiliation.id == aff_id)) == [
        ("Vice President of Research",)]
    after = text(reviewer.get(donor_page))
    assert "Title suggests a senior role" not in after and "reviewed: not senior" in after
    assert audit(db, "affiliation.title_cleared")[-1].data["reason"] == "runs a team; no budget"


def test_the_import_refuses_a_second_record_for_a_recorded_or_repeated_address(api, web_as,
                                                                                 db, job_worker):
    b.person(api, "Morgan Chen", "morgan.chen@example.org")
    client = web_as("fundraiser")
    donors = csv_text(DONORS_HEADER,
                      "d1,person,Morgan Chen, Morgan.Chen@Example.org ,,",
                      "d2,person,Sam Doe,sam@example.org,,",
                      "d3,person,Samuel Doe,SAM@example.org,,",
                      "d4,organization,Morgan's Shop,morgan.chen@example.org,company,",
                      "d5,person,Kim Park,kim@example.org,,")
    before = counts(db)
    for action in ("check", "import"):
        errors = errors_of(upload(client, action, donors=donors))
        assert set(errors) == {("donors.csv", 2), ("donors.csv", 4)}, errors
        assert "this is probably Morgan Chen (donor " in errors[("donors.csv", 2)]
        assert "the same e-mail address as the donor on line 3" in errors[("donors.csv", 4)]
        assert counts(db) == before
