"""The staff roster page edits, ends and deletes a roster entry through the page's own forms
(CSRF included): ending it early at a covered lab waits as a pending change that a second
reviewer approves on the changes page; the proposer cannot."""

from __future__ import annotations

from sqlalchemy import select

from models import PendingChange, RosterEntry
from tests.builders import gift, organization, person
from tests.webtools import post_refused, submit

ROSTER = ("name,title,organisation,start,end,source\n"
          "Avery Stone,Chief Scientist,Halcyon Labs,2024-01-01,,halcyon leadership page\n")


def _entry(db) -> RosterEntry | None:
    db.rollback()
    found = db.execute(select(RosterEntry)).scalars().first()
    db.rollback()
    return found


def _import(reviewer) -> None:
    import io
    response = submit(reviewer, "/staff/import/roster",
                      {"roster": (io.BytesIO(ROSTER.encode()), "roster.csv")},
                      content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)


def test_ending_a_roster_entry_on_its_page_waits_for_a_second_reviewer(api, web_as, db):
    organization(api, "Halcyon Labs", covered_lab=True)
    donor = person(api, "Avery Stone")
    reviewer, second = web_as("reviewer"), web_as("reviewer", "second-reviewer")
    _import(reviewer)
    entry = _entry(db)
    page = f"/staff/import/roster/{entry.id}/edit"
    assert f'href="{page}"' in reviewer.get("/staff/import/roster").get_data(as_text=True)
    response = submit(reviewer, page, {"end_date": "2024-06-30", "source": "left, press 2024"},
                      follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "waits for a second person: end date set on an open affiliation" in html
    assert (_entry(db).end_date, _entry(db).source) == (None, "left, press 2024")
    db.rollback()
    change = db.execute(select(PendingChange)).scalar_one()
    db.rollback()
    assert (change.kind, change.target_id, change.state) == ("roster_entry", entry.id, "pending")
    assert gift(api, donor["id"], "50.00", "2026-03-02")["status"] == "held"

    change_page = f"/staff/changes/{change.id}"
    assert "You proposed this change" in reviewer.get(change_page).get_data(as_text=True)
    assert f"Roster entry {entry.id} (Avery Stone at Halcyon Labs)" in \
        second.get(change_page).get_data(as_text=True)
    approved = submit(second, change_page, {"note": "checked the press release"},
                      action=f"/staff/changes/{change.id}/approve")
    assert approved.status_code == 303
    assert _entry(db).end_date.isoformat() == "2024-06-30"
    assert gift(api, donor["id"], "50.00", "2026-03-02")["status"] == "accepted"


def test_deleting_a_roster_entry_at_a_covered_lab_waits_and_a_fundraiser_cannot(api, web_as, db):
    organization(api, "Halcyon Labs", covered_lab=True)
    reviewer = web_as("reviewer")
    _import(reviewer)
    entry = _entry(db)
    page = f"/staff/import/roster/{entry.id}/edit"
    action = f"/staff/import/roster/{entry.id}/remove"
    refused = post_refused(web_as("fundraiser"), "/staff/", action, {})
    assert refused.status_code == 403
    response = submit(reviewer, page, {}, action=action, follow_redirects=True)
    assert "waits for a second person: roster entry at a covered organisation deleted" in \
        response.get_data(as_text=True)
    assert _entry(db) is not None
