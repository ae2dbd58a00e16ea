"""Reviewers decide held gifts; accepting what the policy rejects needs a second reviewer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry
from tests.api.helpers import errors_of, snapshot, status_of
from tests.builders import World, affiliate, gift, ok, person, summary

DAY = "2026-03-01"


@pytest.fixture
def w(api):
    world = World(api)
    gift(api, world.donor["id"], "1000.00", DAY)
    return world


@pytest.fixture
def reviewer(api_as):
    return api_as("reviewer")


@pytest.fixture
def second(api_as):
    return api_as("reviewer", "second-reviewer")


def _held_corporate(api, w):
    made = gift(api, w.lab_donor["id"], "5000.00", DAY)
    assert made["status"] == "held"
    return made


def _rejected_lab_gift(api, w):
    made = gift(api, w.employee["id"], "1000.00", DAY)  # 50%: rejected by the cap
    assert made["status"] == "rejected"
    return made


def _held_senior_gift(api, w):
    """A gift accepted, then held when its donor turned out to be a senior decision-maker."""
    ceo = person(api, "Chris CEO")
    made = gift(api, ceo["id"], "100.00", DAY)
    affiliate(api, ceo["id"], w.lab["id"], start="2018-01-01", senior=True, title="CEO")
    assert status_of(api, made["id"]) == "held"
    return made


def test_reviewer_accepts_a_held_corporate_gift(api, w, reviewer):
    held = _held_corporate(api, w)
    response = reviewer.post(f"/gifts/{held['id']}/review",
                             {"outcome": "accept", "reason": "Unrestricted gift, board approved"})
    decision = ok(response)
    assert (decision["kind"], decision["outcome"]) == ("review", "accept")
    assert (decision["note"], decision["decided_by"]) == ("Unrestricted gift, board approved",
                                                          reviewer.user_id)
    assert decision["approved_by"] is None and decision["id"] > held["decision"]["id"]
    assert status_of(api, held["id"]) == "accepted"
    assert summary(api, DAY)["total_funding"] == "6000.00"


def test_reviewer_rejects_a_held_gift(api, w, reviewer):
    held = _held_corporate(api, w)
    decision = ok(reviewer.post(f"/gifts/{held['id']}/review",
                                {"outcome": "reject", "reason": "Conditions attached"}))
    assert (decision["kind"], decision["outcome"]) == ("review", "reject")
    assert status_of(api, held["id"]) == "rejected"
    assert summary(api, DAY)["total_funding"] == "1000.00"


def test_only_reviewers_and_admins_review(api, api_as, db, w):
    held = _held_corporate(api, w)
    others = [api_as(role) for role in ("viewer", "fundraiser", "finance")]
    before = snapshot(db)
    for other in others:
        response = other.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "looks fine"})
        assert response.status_code == 403
        assert other.post(f"/gifts/{held['id']}/override",
                          {"outcome": "accept", "reason": "looks fine"}).status_code == 403
    assert snapshot(db) == before
    assert status_of(api, held["id"]) == "held"


def test_review_body_is_validated(api, db, w, reviewer):
    held = _held_corporate(api, w)
    before = snapshot(db)
    path = f"/gifts/{held['id']}/review"
    assert list(errors_of(reviewer.post(path, {"outcome": "maybe", "reason": "unsure"}))) == ["outcome"]
    assert list(errors_of(reviewer.post(path, {"outcome": "accept", "reason": "ok"}))) == ["reason"]
    assert list(errors_of(reviewer.post(path, {"outcome": "accept"}))) == ["reason"]
    assert snapshot(db) == before


def test_accepting_a_held_gift_the_policy_would_reject_needs_a_second_reviewer(api, w, reviewer,
                                                                               second):
    held = _held_senior_gift(api, w)
    response = reviewer.post(f"/gifts/{held['id']}/review",
                             {"outcome": "accept", "reason": "Gift predates the role"})
    assert response.status_code == 202
    body = response.get_json()
    request = body["override_request"]
    assert (request["gift_id"], request["state"], request["outcome"]) == (held["id"], "pending",
                                                                           "accept")
    assert (request["requested_by"], request["reason"]) == (reviewer.user_id, "Gift predates the role")
    assert status_of(api, held["id"]) == "held"
    assert summary(api, DAY)["total_funding"] == "1000.00"
    decision = ok(second.post(f"/overrides/{request['id']}/approve", {"note": "Agreed"}))
    assert (decision["kind"], decision["outcome"]) == ("override", "accept")
    assert (decision["decided_by"], decision["approved_by"]) == (reviewer.user_id, second.user_id)
    assert decision["note"] == "Gift predates the role\nApproval note: Agreed"
    assert status_of(api, held["id"]) == "accepted"
    assert summary(api, DAY)["total_funding"] == "1100.00"


def test_accepting_a_rescreened_gift_that_would_now_break_the_cap_needs_a_second_reviewer(
        api, w, reviewer):
    ada = person(api, "Ada")
    made = gift(api, ada["id"], "1000.00", DAY)  # ordinary money when recorded
    affiliate(api, ada["id"], w.lab["id"], start="2020-01-01")  # she worked at the lab
    assert status_of(api, made["id"]) == "held"
    response = reviewer.post(f"/gifts/{made['id']}/review", {"outcome": "accept", "reason": "ok then"})
    assert response.status_code == 202
    assert status_of(api, made["id"]) == "held"
    ok(reviewer.post(f"/gifts/{made['id']}/review", {"outcome": "reject", "reason": "cap reached"}))
    assert status_of(api, made["id"]) == "rejected"


def test_rejecting_a_held_gift_the_policy_would_reject_needs_one_reviewer(api, w, reviewer):
    held = _held_senior_gift(api, w)
    decision = ok(reviewer.post(f"/gifts/{held['id']}/review",
                                {"outcome": "reject", "reason": "Senior decision-maker"}))
    assert decision["outcome"] == "reject"
    assert status_of(api, held["id"]) == "rejected"


def test_override_of_a_rejected_gift_needs_a_different_reviewer(api, w, reviewer, second):
    rejected = _rejected_lab_gift(api, w)
    request = ok(reviewer.post(f"/gifts/{rejected['id']}/override",
                               {"outcome": "accept", "reason": "Matched by a new grant next week"}))
    assert (request["state"], request["requested_by"], request["decided_by"]) == ("pending",
                                                                                  reviewer.user_id, None)
    assert status_of(api, rejected["id"]) == "rejected"
    same = reviewer.post(f"/overrides/{request['id']}/approve", {})
    assert same.status_code == 409
    assert same.get_json() == {"error": "an override needs the approval of a second reviewer"}
    assert status_of(api, rejected["id"]) == "rejected"
    decision = ok(second.post(f"/overrides/{request['id']}/approve"))
    assert (decision["kind"], decision["outcome"]) == ("override", "accept")
    assert decision["approved_by"] == second.user_id
    assert decision["note"] == "Matched by a new grant next week"
    shown = api.get(f"/gifts/{rejected['id']}").get_json()
    assert shown["status"] == "accepted"
    assert [(d["kind"], d["outcome"]) for d in shown["decisions"]] == [("screening", "reject"),
                                                                      ("override", "accept")]
    s = summary(api, DAY)
    assert (s["total_funding"], s["lab_employee_funding"], s["in_breach"]) == ("2000.00", "1000.00",
                                                                              True)


def test_approved_override_cannot_be_approved_again(api, w, reviewer, second, api_as):
    rejected = _rejected_lab_gift(api, w)
    request = ok(reviewer.post(f"/gifts/{rejected['id']}/override",
                               {"outcome": "accept", "reason": "Approved by the board"}))
    ok(second.post(f"/overrides/{request['id']}/approve"))
    third = api_as("reviewer", "third-reviewer")
    assert third.post(f"/overrides/{request['id']}/approve").status_code == 409
    assert third.post(f"/overrides/{request['id']}/decline").status_code == 409


def test_declined_override_leaves_the_gift_rejected(api, db, w, reviewer, second):
    rejected = _rejected_lab_gift(api, w)
    request = ok(reviewer.post(f"/gifts/{rejected['id']}/override",
                               {"outcome": "accept", "reason": "Please reconsider"}))
    response = second.post(f"/overrides/{request['id']}/decline", {"note": "The cap is the cap"})
    assert response.status_code == 200
    declined = response.get_json()
    assert (declined["state"], declined["decided_by"]) == ("declined", second.user_id)
    assert declined["decided_at"] is not None
    assert status_of(api, rejected["id"]) == "rejected"
    assert second.post(f"/overrides/{request['id']}/approve").status_code == 409
    # A new request may be made once the old one is decided.
    assert reviewer.post(f"/gifts/{rejected['id']}/override",
                         {"outcome": "accept", "reason": "New facts"}).status_code == 201


def test_only_one_pending_override_per_gift(api, w, reviewer, second):
    rejected = _rejected_lab_gift(api, w)
    ok(reviewer.post(f"/gifts/{rejected['id']}/override", {"outcome": "accept", "reason": "first"}))
    again = second.post(f"/gifts/{rejected['id']}/override", {"outcome": "accept", "reason": "second"})
    assert again.status_code == 409


def test_override_outcome_must_be_accept(api, db, w, reviewer):
    rejected = _rejected_lab_gift(api, w)
    before = snapshot(db)
    response = reviewer.post(f"/gifts/{rejected['id']}/override", {"outcome": "reject", "reason": "not ok"})
    assert errors_of(response) == {"outcome": ["an override accepts a gift"]}
    assert snapshot(db) == before


def test_reviewing_a_gift_that_is_not_held_is_409(api, db, w, reviewer):
    rejected = _rejected_lab_gift(api, w)
    accepted = gift(api, w.donor["id"], "10.00", DAY)
    before = snapshot(db)
    for made in (accepted, rejected):
        response = reviewer.post(f"/gifts/{made['id']}/review", {"outcome": "reject", "reason": "late"})
        assert response.status_code == 409
        assert response.get_json() == {
            "error": f"gift {made['id']} is {made['status']}, not held"}
    assert snapshot(db) == before


def test_overriding_an_accepted_gift_is_409(api, db, w, reviewer):
    accepted = gift(api, w.donor["id"], "10.00", DAY)
    before = snapshot(db)
    response = reviewer.post(f"/gifts/{accepted['id']}/override", {"outcome": "accept", "reason": "why"})
    assert response.status_code == 409
    assert snapshot(db) == before


def test_a_decided_held_gift_cannot_be_reviewed_again(api, w, reviewer):
    held = _held_corporate(api, w)
    ok(reviewer.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "fine"}))
    again = reviewer.post(f"/gifts/{held['id']}/review", {"outcome": "reject", "reason": "changed mind"})
    assert again.status_code == 409
    assert status_of(api, held["id"]) == "accepted"


def test_a_reviewers_reject_closes_the_pending_override_of_the_gift(api, db, w, reviewer,
                                                                      second, api_as):
    """An override asked on a held gift must not outlive a later reject of that gift: a
    second reviewer approving the old request would accept what a reviewer just rejected."""
    held = _held_senior_gift(api, w)
    asked = reviewer.post(f"/gifts/{held['id']}/review",
                          {"outcome": "accept", "reason": "Gift predates the role"})
    request = asked.get_json()["override_request"]
    assert request["state"] == "pending"
    third = api_as("reviewer", "third-reviewer")
    rejected = ok(third.post(f"/gifts/{held['id']}/review",
                             {"outcome": "reject", "reason": "Senior decision-maker after all"}))
    assert status_of(api, held["id"]) == "rejected"

    refused = second.post(f"/overrides/{request['id']}/approve", {"note": "Agreed"})
    assert refused.status_code == 409
    assert refused.get_json() == {"error": f"override request {request['id']} is already declined"}
    assert status_of(api, held["id"]) == "rejected"
    assert summary(api, DAY)["total_funding"] == "1000.00"
    try:
        closed = db.execute(select(AuditEntry).where(AuditEntry.action == "override.closed")
                            ).scalar_one()
        assert (closed.entity_id, closed.actor_id) == (held["id"], third.user_id)
        assert closed.data["override_request_id"] == request["id"]
        assert closed.data["why"] == f"gift rejected by review decision {rejected['id']}"
    finally:
        db.rollback()
    # The requester may ask again; the two-person rule then starts over.
    again = reviewer.post(f"/gifts/{held['id']}/override",
                          {"outcome": "accept", "reason": "New facts"})
    assert again.status_code == 201


def test_the_requester_rejecting_the_gift_closes_their_own_override(api, w, reviewer, second):
    held = _held_senior_gift(api, w)
    request = reviewer.post(f"/gifts/{held['id']}/review",
                            {"outcome": "accept", "reason": "Gift predates the role"}
                            ).get_json()["override_request"]
    ok(reviewer.post(f"/gifts/{held['id']}/review",
                     {"outcome": "reject", "reason": "Changed my mind"}))
    assert second.post(f"/overrides/{request['id']}/approve").status_code == 409
    assert status_of(api, held["id"]) == "rejected"


def test_requester_withdraws_their_own_override_request(api, db, w, reviewer, second):
    """docs/api.md: any reviewer, including the requester, may withdraw a pending request.
    The table's second-person check forbids naming the requester as the decider, so a
    withdrawal is recorded with no decider and the audit entry names who withdrew it."""
    rejected = _rejected_lab_gift(api, w)
    request = ok(reviewer.post(f"/gifts/{rejected['id']}/override",
                               {"outcome": "accept", "reason": "Please reconsider"}))
    response = reviewer.post(f"/overrides/{request['id']}/decline", {"note": "Asked too early"})
    assert response.status_code == 200, response.get_json()
    withdrawn = response.get_json()
    assert (withdrawn["state"], withdrawn["decided_by"]) == ("declined", None)
    assert withdrawn["decided_at"] is not None
    assert status_of(api, rejected["id"]) == "rejected"
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "override.declined")
                       ).scalars().one()
    assert entry.actor_id == reviewer.user_id
    assert entry.data["withdrawn_by_requester"] is True
    assert entry.data["note"] == "Asked too early"
    # Withdrawn is final: nobody can approve it afterwards.
    assert second.post(f"/overrides/{request['id']}/approve").status_code == 409


@pytest.mark.parametrize("public_note", ["ok", "x" * 2001])
def test_an_approvers_public_note_is_refused_not_cut(api, w, reviewer, second, public_note):
    """The public note is published word for word: out of 3..2000 characters it is a 422 and
    nothing is approved (it used to be cut at 2000 characters, or kept at 1-2)."""
    rejected = _rejected_lab_gift(api, w)
    request = ok(reviewer.post(f"/gifts/{rejected['id']}/override",
                               {"outcome": "accept", "reason": "Matched by a new grant next week"}))
    refused = second.post(f"/overrides/{request['id']}/approve", {"public_note": public_note})
    assert refused.status_code == 422
    assert "public_note" in refused.get_json()["errors"]
    assert status_of(api, rejected["id"]) == "rejected"
