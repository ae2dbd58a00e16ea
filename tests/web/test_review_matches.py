"""The review queue shows a possible match with its two answers, and records them."""

from __future__ import annotations

import html
import io

from sqlalchemy import select

from models import AuditEntry, IdentityVerdict, RosterEntry
from tests.builders import affiliate, gift, organization, person
from tests.webtools import post_refused, submit

QUEUE = "/staff/review/"
ON = "2026-03-02"


def _text(response) -> str:
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def _held_second_record(api):
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    vp = person(api, "Morgan Chen", "morgan@halcyon.example")
    affiliate(api, vp["id"], lab["id"], start="2024-01-01", senior=True, title="VP")
    second = person(api, "Morgan Chen", "m.chen@gmail.example")
    held = gift(api, second["id"], "5000.00", ON)
    assert held["status"] == "held"
    return vp, second, held


def _action(second, vp, answer):
    return f"/staff/review/donors/{second['id']}/matches/{answer}"


def test_the_queue_shows_the_match_and_records_different_people(api, web_as, db):
    vp, second, _held = _held_second_record(api)
    reviewer = web_as("reviewer")
    page = _text(reviewer.get(QUEUE))
    assert (f"is probably donor #{vp['id']} Morgan Chen, score 1 (threshold 0.92), at "
            "Halcyon Labs") in page
    assert "Different person" in page and "Same person" in page

    response = submit(reviewer, QUEUE, {"reason": "met both; different people"},
                      action=_action(second, vp, "different"))
    assert response.status_code == 302
    verdict = db.execute(select(IdentityVerdict)).scalar_one()
    assert (verdict.pair, verdict.verdict, verdict.reason) == (
        f"donor:{vp['id']}|donor:{second['id']}", "different", "met both; different people")
    assert db.execute(select(AuditEntry.action).where(
        AuditEntry.action == "identity.different")).scalar_one()
    db.rollback()
    # Not asked again for this pair.
    assert gift(api, second["id"], "100.00", "2026-03-03")["status"] == "accepted"


def test_an_answer_needs_a_reason(api, web_as, db):
    vp, second, _held = _held_second_record(api)
    reviewer = web_as("reviewer")
    response = submit(reviewer, QUEUE, {"reason": ""}, action=_action(second, vp, "different"))
    assert response.status_code == 422
    assert db.execute(select(IdentityVerdict)).first() is None


def test_a_fundraiser_cannot_answer(api, web_as, db):
    vp, second, _held = _held_second_record(api)
    fundraiser = web_as("fundraiser")
    response = post_refused(fundraiser, "/staff/", _action(second, vp, "different"),
                            {"reason": "not mine to say", "record": "donor",
                             "record_id": str(vp["id"])})
    assert response.status_code == 403
    assert db.execute(select(IdentityVerdict)).first() is None


ROSTER = ("name,title,organisation,start,end,source\n"
          "Avery Stone,Chief Scientist,\"Halcyon Labs, Inc.\",2024-01-01,,leadership page\n")


def _upload_roster(client, text_: str):
    return submit(client, "/staff/import/roster",
                       {"roster": (io.BytesIO(text_.encode()), "roster.csv")},
                       content_type="multipart/form-data")


def test_a_reviewer_uploads_a_roster_on_its_page(api, web_as, db):
    organization(api, "Halcyon Labs", covered_lab=True)
    reviewer = web_as("reviewer")
    assert "/staff/import/roster" in _text(reviewer.get(QUEUE))
    page = _text(_upload_roster(reviewer, ROSTER))
    assert "Roster imported" in page and "1 entry stored" in page
    assert "Avery Stone" in page and "Halcyon Labs" in page
    donor = person(api, "Avery Stone")
    assert gift(api, donor["id"], "100.00", ON)["status"] == "held"


def test_a_bad_roster_on_the_page_stores_nothing(api, web_as, db):
    organization(api, "Halcyon Labs", covered_lab=True)
    reviewer = web_as("reviewer")
    response = _upload_roster(reviewer, ROSTER + "Kim Ode,,Nowhere,2024-01-01,,x\n")
    assert response.status_code == 422
    page = _text(response)
    assert "nothing was stored" in page and "line 3" in page
    assert db.execute(select(RosterEntry)).first() is None


def test_a_fundraiser_cannot_open_the_roster_page(web_as):
    assert web_as("fundraiser").get("/staff/import/roster").status_code == 403


def test_the_queue_shows_the_count_of_matches_not_listed(api, web_as):
    """Policy 2026.4 lists at most [possible_match] max_listed matches; the page says how
    many more there are."""
    from policies import load_policy

    limit = load_policy().settings["possible_match"]["max_listed"]
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    namesakes = []
    for _ in range(limit + 5):
        namesakes.append(person(api, "James Smith"))
        affiliate(api, namesakes[-1]["id"], lab["id"], title="Engineer")
    donor = person(api, "James Smith", "james@example.net")
    assert gift(api, donor["id"], "100.00", ON)["status"] == "held"
    page = _text(web_as("reviewer").get(QUEUE))
    assert page.count("Possible match:") == limit
    assert f"is probably donor #{namesakes[limit - 1]['id']} James Smith" in page
    assert f"is probably donor #{namesakes[limit]['id']} James Smith" not in page
    assert f"And 5 more possible matches, not listed: the policy lists the best {limit}." in page
