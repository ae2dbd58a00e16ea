"""The review queue: deciding held gifts, re-screen flags, and two-person overrides."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Decision, Gift, OverrideRequest
from tests.builders import World, affiliate, gift, organization, person
from tests.webtools import post_refused, session_token, submit

D = date(2025, 6, 2)
QUEUE = "/staff/review/"


@pytest.fixture
def world(api):
    return World(api)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def load(db, model, ident):
    try:
        obj = db.get(model, ident)
        db.expunge(obj)
        return obj
    finally:
        db.rollback()


def decisions(db, gift_id) -> list[Decision]:
    try:
        rows = list(db.execute(select(Decision).where(Decision.gift_id == gift_id)
                               .order_by(Decision.id)).scalars())
        for row in rows:
            db.expunge(row)
        return rows
    finally:
        db.rollback()


def overrides(db, gift_id) -> list[OverrideRequest]:
    try:
        rows = list(db.execute(select(OverrideRequest).where(OverrideRequest.gift_id == gift_id)
                               .order_by(OverrideRequest.id)).scalars())
        for row in rows:
            db.expunge(row)
        return rows
    finally:
        db.rollback()


def audit_count(db) -> int:
    try:
        return db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    finally:
        db.rollback()


def user_id(db, email) -> int:
    from models import User
    try:
        return db.execute(select(User.id).where(User.email == email)).scalar_one()
    finally:
        db.rollback()


def rejected_gift(api, world) -> dict:
    chief = person(api, "Casey Chief")
    affiliate(api, chief["id"], world.lab["id"], start="2019-01-01", senior=True, title="Chief Scientist")
    given = gift(api, chief["id"], "1000.00", D)
    assert given["status"] == "rejected"
    return given


def request_override(client, gift_id, reason="Gift predates the board seat; counsel agrees"):
    return submit(client, f"/staff/gifts/{gift_id}", {"reason": reason},
                  action=f"/staff/review/gifts/{gift_id}/override")


# --- access ----------------------------------------------------------------------------------------

def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(QUEUE)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "fundraiser", "finance"])
def test_only_reviewers_open_the_queue_or_decide(api, world, web_as, db, role):
    held = gift(api, world.lab_donor["id"], "500.00", D)
    client = web_as(role)
    assert client.get(QUEUE).status_code == 403
    assert client.get(f"/staff/review/gifts/{held['id']}/decide").status_code == 403
    token = session_token(client.get("/staff/gifts/").get_data(as_text=True))
    response = client.post(f"/staff/review/gifts/{held['id']}/decide",
                           data={"outcome": "accept", "reason": "fine by me", "csrf_token": token})
    assert response.status_code == 403
    response = client.post(f"/staff/review/gifts/{held['id']}/override",
                           data={"reason": "fine by me", "csrf_token": token})
    assert response.status_code == 403
    assert load(db, Gift, held["id"]).status == "held"
    assert "Review queue" not in text(client.get(f"/staff/gifts/{held['id']}"))


# --- held gifts --------------------------------------------------------------------------------------

def test_queue_lists_held_gifts_oldest_first(api, world, web_as):
    first = gift(api, world.lab_donor["id"], "111.00", D)
    second = gift(api, world.lab_donor["id"], "222.00", date(2025, 1, 5))
    gift(api, world.donor["id"], "333.00", D)  # accepted: not in the queue
    page = text(web_as("reviewer").get(QUEUE))
    assert "111.00 USD" in page and "222.00 USD" in page and "333.00 USD" not in page
    assert page.index(f"#{first['id']}<") < page.index(f"#{second['id']}<")  # waiting longest first
    assert "needs a reviewer's decision" in page


def test_reviewer_accepts_a_held_gift_with_a_reason(api, world, web_as, db):
    held = gift(api, world.lab_donor["id"], "2500.00", D)
    reviewer = web_as("reviewer")
    page = text(reviewer.get(f"/staff/review/gifts/{held['id']}/decide"))
    assert "Lab corporate money" in page and "Record decision" in page
    response = submit(reviewer, f"/staff/review/gifts/{held['id']}/decide",
                      {"outcome": "accept", "reason": "General support, no strings; board minute 12"})
    assert response.status_code == 302 and response.headers["Location"] == QUEUE
    assert load(db, Gift, held["id"]).status == "accepted"
    latest = decisions(db, held["id"])[-1]
    assert (latest.kind, latest.outcome) == ("review", "accept")
    assert latest.note == "General support, no strings; board minute 12"
    assert latest.decided_by_id == user_id(db, "web-reviewer@example.org")
    queue = text(reviewer.get(QUEUE))
    assert f"Gift #{held['id']} accepted" in queue and "Nothing is held." in queue
    detail = text(reviewer.get(f"/staff/gifts/{held['id']}"))
    assert "Review" in detail and "General support, no strings; board minute 12" in detail
    assert "Decided by <strong>web-reviewer@example.org</strong>" in detail


def test_reviewer_rejects_a_held_gift(api, world, web_as, db):
    held = gift(api, world.lab_donor["id"], "2500.00", D)
    response = submit(web_as("reviewer"), f"/staff/review/gifts/{held['id']}/decide",
                      {"outcome": "reject", "reason": "Too close to an upcoming evaluation"})
    assert response.status_code == 302
    assert load(db, Gift, held["id"]).status == "rejected"
    assert decisions(db, held["id"])[-1].note == "Too close to an upcoming evaluation"


@pytest.mark.parametrize(("data", "message"), [
    ({"outcome": "accept", "reason": ""}, "This field is required."),
    ({"outcome": "accept", "reason": "  ok  "}, "at least 3 characters"),
    ({"reason": "A proper reason"}, "Choose accept or reject."),
    ({"outcome": "maybe", "reason": "A proper reason"}, "Not a valid choice"),
])
def test_a_decision_needs_an_outcome_and_a_written_reason(api, world, web_as, db, data, message):
    held = gift(api, world.lab_donor["id"], "2500.00", D)
    reviewer = web_as("reviewer")
    before = audit_count(db)
    response = submit(reviewer, f"/staff/review/gifts/{held['id']}/decide", data)
    assert response.status_code == 422
    assert message in text(response)
    assert load(db, Gift, held["id"]).status == "held"
    assert len(decisions(db, held["id"])) == 1
    assert audit_count(db) == before


def test_deciding_a_gift_that_is_no_longer_held_shows_the_ledger_message(api, world, web_as, db):
    given = gift(api, world.donor["id"], "100.00", D)
    reviewer = web_as("reviewer")
    page = text(reviewer.get(f"/staff/review/gifts/{given['id']}/decide"))
    assert "not held: there is nothing to decide" in page
    token = session_token(page)  # the page offers no decision form
    response = reviewer.post(f"/staff/review/gifts/{given['id']}/decide",
                             data={"outcome": "reject", "reason": "Changed my mind", "csrf_token": token})
    assert response.status_code == 409
    assert f"gift {given['id']} is accepted, not held" in text(response)
    assert load(db, Gift, given["id"]).status == "accepted"


# --- re-screen flags ----------------------------------------------------------------------------------

def test_rescreened_gift_is_flagged_and_accepting_it_needs_a_second_reviewer(api, world, web_as, db):
    giver = person(api, "Sam Later")
    given = gift(api, giver["id"], "400.00", D)
    assert given["status"] == "accepted"
    # Learned later: Sam was the lab's chief scientist all along.
    affiliate(api, giver["id"], world.lab["id"], start="2020-01-01", senior=True, title="Chief Scientist")
    assert load(db, Gift, given["id"]).status == "held"
    note = decisions(db, given["id"])[-1].note
    rev1 = web_as("reviewer", "rev1")
    queue = text(rev1.get(QUEUE))
    assert "Re-screen" in queue and note in queue
    assert "Senior decision-maker at a covered lab" in queue

    response = submit(rev1, f"/staff/review/gifts/{given['id']}/decide",
                      {"outcome": "accept", "reason": "Gift was made before the appointment"})
    assert response.status_code == 302
    assert load(db, Gift, given["id"]).status == "held"
    [request] = overrides(db, given["id"])
    assert request.state == "pending"
    queue = text(rev1.get(QUEUE))
    assert "needs a second reviewer's approval" in queue
    assert "pending second approval" in queue and "You asked for this override" in queue

    rev2 = web_as("reviewer", "rev2")
    response = submit(rev2, QUEUE, {"note": "Agreed"},
                      action=f"/staff/review/overrides/{request.id}/approve")
    assert response.status_code == 302
    assert load(db, Gift, given["id"]).status == "accepted"
    assert [d.kind for d in decisions(db, given["id"])] == ["screening", "rescreen", "override"]


# --- overrides of rejected gifts ---------------------------------------------------------------------

def test_override_needs_a_second_reviewer(api, world, web_as, db):
    rejected = rejected_gift(api, world)
    rev1 = web_as("reviewer", "rev1")
    rev2 = web_as("reviewer", "rev2")
    detail = text(rev1.get(f"/staff/gifts/{rejected['id']}"))
    assert "Request an override" in detail

    response = request_override(rev1, rejected["id"])
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/gifts/{rejected['id']}"
    [request] = overrides(db, rejected["id"])
    assert (request.state, request.requested_by_id) == ("pending", user_id(db, "rev1@example.org"))
    assert load(db, Gift, rejected["id"]).status == "rejected"
    detail = text(rev1.get(f"/staff/gifts/{rejected['id']}"))
    assert "Override pending second approval" in detail and "rev1@example.org" in detail
    assert "Request an override" not in detail  # one pending request at a time

    # The requester sees no approve button...
    approve_path = f"/staff/review/overrides/{request.id}/approve"
    queue = rev1.get(QUEUE).get_data(as_text=True)
    assert approve_path not in queue
    assert "You asked for this override" in html.unescape(queue)
    assert "Gift predates the board seat; counsel agrees" in html.unescape(queue)
    # ...and if they post anyway, the ledger refuses and the page says why.
    response = post_refused(rev1, QUEUE, approve_path, {"note": ""})
    assert response.status_code == 409
    assert "an override needs the approval of a second reviewer" in text(response)
    assert load(db, Gift, rejected["id"]).status == "rejected"
    assert overrides(db, rejected["id"])[0].state == "pending"

    # A second reviewer approves.
    queue = rev2.get(QUEUE).get_data(as_text=True)
    assert approve_path in queue
    response = submit(rev2, QUEUE, {"note": "Checked the dates"}, action=approve_path)
    assert response.status_code == 302
    assert load(db, Gift, rejected["id"]).status == "accepted"
    latest = decisions(db, rejected["id"])[-1]
    assert (latest.kind, latest.outcome) == ("override", "accept")
    assert latest.decided_by_id == user_id(db, "rev1@example.org")
    assert latest.approved_by_id == user_id(db, "rev2@example.org")
    assert overrides(db, rejected["id"])[0].state == "approved"

    detail = text(rev2.get(f"/staff/gifts/{rejected['id']}"))
    assert "Override" in detail
    assert "approved by <strong>rev2@example.org</strong> (second reviewer)" in detail
    assert "Decided by <strong>rev1@example.org</strong>" in detail
    assert "Approval note: Checked the dates" in detail


def test_second_reviewer_declines_an_override(api, world, web_as, db):
    rejected = rejected_gift(api, world)
    rev1 = web_as("reviewer", "rev1")
    rev2 = web_as("reviewer", "rev2")
    assert request_override(rev1, rejected["id"]).status_code == 302
    [request] = overrides(db, rejected["id"])
    response = submit(rev2, QUEUE, {"note": "Not convinced"},
                      action=f"/staff/review/overrides/{request.id}/decline")
    assert response.status_code == 302
    assert overrides(db, rejected["id"])[0].state == "declined"
    assert load(db, Gift, rejected["id"]).status == "rejected"
    assert "declined; the gift stays rejected" in text(rev2.get(QUEUE))
    # The queue no longer offers it; a stale page's post is refused.
    again = post_refused(rev2, QUEUE, f"/staff/review/overrides/{request.id}/approve", {})
    assert again.status_code == 409 and "already declined" in text(again)


def test_requester_withdraws_their_override_with_the_queue_button(api, world, web_as, db):
    """The queue offers the requester a withdraw button; pressing it must withdraw the request
    (not fail on the table's second-person check) and leave the gift rejected."""
    rejected = rejected_gift(api, world)
    rev1 = web_as("reviewer", "rev1")
    assert request_override(rev1, rejected["id"]).status_code == 302
    [request] = overrides(db, rejected["id"])
    page = rev1.get(QUEUE).get_data(as_text=True)
    action = f"/staff/review/overrides/{request.id}/decline"
    form = re.search(r'<form[^>]*action="' + re.escape(action) + r'"[^>]*>(.*?)</form>', page, re.S)
    assert form and "Withdraw" in form.group(1)
    fields = dict(re.findall(r'<input type="hidden" name="(note)" value="([^"]*)"', form.group(1)))
    response = submit(rev1, QUEUE, fields, action=action)
    assert response.status_code == 302
    [after] = overrides(db, rejected["id"])
    assert (after.state, after.decided_by_id) == ("declined", None)
    assert load(db, Gift, rejected["id"]).status == "rejected"
    assert "withdrawn; the gift stays rejected" in text(rev1.get(QUEUE))


def test_the_override_forms_keep_the_internal_reason_apart_from_the_public_note(
        api, world, web_as, db):
    """The request form says which text is published; the approver may replace the
    requester's public note from the queue; only the public note goes to the disclosure."""
    rejected = rejected_gift(api, world)
    rev1 = web_as("reviewer", "rev1")
    rev2 = web_as("reviewer", "rev2")
    page = text(rev1.get(f"/staff/review/gifts/{rejected['id']}/override"))
    assert "Internal: never published." in page
    assert "Public justification (optional)" in page and "No public justification given." in page
    response = submit(rev1, f"/staff/review/gifts/{rejected['id']}/override",
                      {"reason": "My cousin; counsel agrees", "public_note": "Gift predates the seat."})
    assert response.status_code == 302
    [request] = overrides(db, rejected["id"])
    assert request.public_note == "Gift predates the seat."
    queue = text(rev2.get(QUEUE))
    assert 'name="public_note"' in queue and "Gift predates the seat." in queue
    response = submit(rev2, QUEUE, {"note": "ok", "public_note": "Given before the board seat."},
                      action=f"/staff/review/overrides/{request.id}/approve")
    assert response.status_code == 302
    latest = decisions(db, rejected["id"])[-1]
    assert (latest.kind, latest.public_note) == ("override", "Given before the board seat.")
    assert latest.note.startswith("My cousin; counsel agrees")
    disclosure = api.get(f"/disclosures/conflicts?from={D.isoformat()}&to={D.isoformat()}").get_json()
    [exception] = disclosure["exceptions_accepted"]
    assert (exception["gift_id"], exception["rule"], exception["public_justification"]) == (
        rejected["id"], "senior_decision_maker", "Given before the board seat.")
    assert "My cousin" not in str(disclosure)


def test_override_request_needs_a_reason_and_a_reviewer(api, world, web_as, db):
    rejected = rejected_gift(api, world)
    rev1 = web_as("reviewer", "rev1")
    response = request_override(rev1, rejected["id"], reason="")
    assert response.status_code == 422 and "This field is required." in text(response)
    assert overrides(db, rejected["id"]) == []
    fundraiser = web_as("fundraiser")
    assert "Request an override" not in text(fundraiser.get(f"/staff/gifts/{rejected['id']}"))
    token = session_token(fundraiser.get("/staff/gifts/").get_data(as_text=True))
    response = fundraiser.post(f"/staff/review/gifts/{rejected['id']}/override",
                               data={"reason": "Please", "csrf_token": token})
    assert response.status_code == 403
    assert overrides(db, rejected["id"]) == []


def test_an_accepted_gift_cannot_be_overridden(api, world, web_as, db):
    given = gift(api, world.donor["id"], "100.00", D)
    rev1 = web_as("reviewer", "rev1")
    response = submit(rev1, f"/staff/review/gifts/{given['id']}/override", {"reason": "Why not"})
    assert response.status_code == 409
    assert "only a rejected or held gift can be overridden" in text(response)
    assert overrides(db, given["id"]) == []


# --- re-screen holds say what changed and what deciding does to the share ------------------------------

NUMBERED = re.compile(r"organi[sz]ation\(?s?\)? \d")


def test_rescreen_hold_names_the_changed_fact_and_shows_the_share_either_way(api, web_as, db):
    """Halcyon Labs is found to be a frontier lab after Morgan Chen's gift was accepted as
    ordinary money. The reviewer must read who changed what, by name, and what accepting or
    rejecting does to the lab-employee share, even though no rule fires."""
    halcyon = organization(api, "Halcyon Labs")
    ordinary = person(api, "Olive Ordinary")
    gift(api, ordinary["id"], "9000.00", D)
    morgan = person(api, "Morgan Chen")
    affiliate(api, morgan["id"], halcyon["id"], start="2024-01-01", title="Research Engineer")
    given = gift(api, morgan["id"], "1000.00", D)
    assert given["status"] == "accepted"

    reviewer = web_as("reviewer", "reviewer")
    response = submit(reviewer, f"/staff/organizations/{halcyon['id']}/edit", {
        "name": "Halcyon Labs", "covered_lab": "y", "aliases": "", "parent_id": ""})
    assert response.status_code == 302
    assert load(db, Gift, given["id"]).status == "held"

    today = datetime.now(UTC).date().isoformat()
    changed = (f"Halcyon Labs was marked a covered lab on {today} by reviewer@example.org: "
               "Halcyon Labs is now covered.")
    queue = text(reviewer.get(QUEUE))
    row = queue.split(f'href="/staff/gifts/{given["id"]}"')[1].split("</tr>")[0]
    assert changed in row
    assert "No rule fires now." not in row
    assert "With the changed facts no rule fires: the policy would accept this gift now." in row
    # Accepting puts 1,000 of lab-employee money into 10,000 of funding; rejecting leaves
    # 0 of 9,000. Headroom: the largest x with (L + x) / (T + x) < 50%.
    assert (f"In the 365-day window ending {D.isoformat()}: if accepted, the lab-employee share "
            "becomes 10% (below the 50% cap), headroom 7,999.99 USD; if rejected, it stays "
            "0%, headroom 8,999.99 USD.") in " ".join(row.replace("<strong>", "")
                                                           .replace("</strong>", "").split())
    assert not NUMBERED.search(queue)

    decide = text(reviewer.get(f"/staff/review/gifts/{given['id']}/decide"))
    assert changed in decide and "if accepted" in decide and "8,999.99 USD" in decide
    assert not NUMBERED.search(decide)

    audit_page = text(reviewer.get("/staff/audit/?action=gift.rescreened"))
    assert changed in audit_page
    assert not NUMBERED.search(audit_page)


def test_late_senior_affiliation_hold_names_the_person_role_and_organisation(api, web_as, db):
    world = World(api)
    morgan = person(api, "Morgan Chen")
    given = gift(api, morgan["id"], "100.00", D)
    recorded = affiliate(api, morgan["id"], world.lab["id"], start="2024-01-01", senior=True,
                         title="Vice President")
    assert recorded["rescreened_gift_ids"] == [given["id"]]
    today = datetime.now(UTC).date().isoformat()
    note = ("Affiliation recorded: Morgan Chen, employee at Frontier Lab (Vice President, "
            f"senior decision-maker) from 2024-01-01; recorded on {today} by admin@example.org.")
    reviewer = web_as("reviewer")
    queue = text(reviewer.get(QUEUE))
    assert note in queue
    assert "Morgan Chen (Vice President at Frontier Lab)" in queue  # the rule that fires
    assert not NUMBERED.search(queue)
    audit_page = text(reviewer.get("/staff/audit/"))
    assert note in audit_page and not NUMBERED.search(audit_page)


def test_a_changed_affiliation_hold_says_what_it_was_and_what_it_is(api, web_as, db):
    world = World(api)
    morgan = person(api, "Morgan Chen")
    recorded = affiliate(api, morgan["id"], world.lab["id"], start="2024-01-01", end="2024-03-31",
                         title="Vice President")
    given = gift(api, morgan["id"], "100.00", D)  # cooling-off over: ordinary money
    assert given["status"] == "accepted"
    response = api.put(f"/affiliations/{recorded['id']}", {
        "organization_id": world.lab["id"], "kind": "employee", "title": "Vice President",
        "senior_decision_maker": True, "start_date": "2024-01-01", "end_date": "2025-05-31"})
    assert response.status_code == 200, response.get_json()
    today = datetime.now(UTC).date().isoformat()
    queue = text(web_as("reviewer").get(QUEUE))
    assert ("Affiliation changed: Morgan Chen, employee at Frontier Lab (Vice President) from "
            "2024-01-01 to 2024-03-31, is now employee at Frontier Lab (Vice President, senior "
            f"decision-maker) from 2024-01-01 to 2025-05-31; changed on {today} by "
            "admin@example.org.") in queue
    assert not NUMBERED.search(queue)
