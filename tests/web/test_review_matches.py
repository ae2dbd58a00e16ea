"""The review queue shows a possible match with its two answers, and records them."""

from __future__ import annotations

import html

from sqlalchemy import select

from models import AuditEntry, IdentityVerdict
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
