"""Screen the person, not the record (issue 11 A): a gift from a donor who is probably the
same person as a lab-affiliated donor or roster entry is held (possible_match), and a
reviewer resolves it. Through the JSON API, on the real database."""

from __future__ import annotations

import importlib.util

from sqlalchemy import select

from models import AuditEntry, IdentityVerdict, RosterEntry
from tests.api.helpers import fired, snapshot
from tests.builders import affiliate, gift, ok, organization, person

ON = "2026-03-02"


def _senior_vp(api):
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    vp = person(api, "Morgan Chen", "morgan@halcyon.example")
    affiliate(api, vp["id"], lab["id"], start="2024-01-01", senior=True,
              title="Vice President of Research")
    return lab, vp


def _matches(gift_body: dict) -> list[dict]:
    return gift_body["decision"]["figures"]["possible_matches"]


def test_a_second_record_of_a_senior_decision_maker_is_held_not_accepted(api):
    """What was seen 1: the VP's gift is rejected; the same gift through a second record
    of the same person used to be accepted."""
    _lab, vp = _senior_vp(api)
    assert gift(api, vp["id"], "5000.00", ON)["status"] == "rejected"
    second = person(api, "Morgan  Chen", "m.chen@gmail.example")
    held = gift(api, second["id"], "5000.00", ON)
    assert held["status"] == "held"
    assert fired(held) == ["possible_match"]
    [match] = _matches(held)
    assert (match["record"], match["record_id"], match["name"], match["score"]) == (
        "donor", vp["id"], "Morgan Chen", "1")
    message = next(r["message"] for r in held["decision"]["reasons"] if r["fired"])
    assert f"donor {vp['id']} Morgan Chen" in message and "score 1" in message


def test_a_digit_typed_after_the_name_does_not_slip_past_the_match(api):
    _lab, vp = _senior_vp(api)
    second = person(api, "Morgan Chen 2", "fresh.address@example.net")
    held = gift(api, second["id"], "5000.00", ON)
    assert held["status"] == "held" and fired(held) == ["possible_match"]
    assert [m["record_id"] for m in _matches(held)] == [vp["id"]]


def test_a_typo_with_the_same_phone_is_matched(api):
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    employee = ok(api.post("/donors", {"type": "person", "name": "Morgan Chen",
                                       "phone": "+1 (415) 555-0100"}))
    affiliate(api, employee["id"], lab["id"])
    other = ok(api.post("/donors", {"type": "person", "name": "M. Chen",
                                    "phone": "415.555.0100"}))
    held = gift(api, other["id"], "100.00", ON)
    assert held["status"] == "held"
    [match] = _matches(held)
    assert match["same_phone"] is True and match["record_id"] == employee["id"]


def test_namesakes_without_a_lab_affiliation_are_not_held(api):
    person(api, "Dana Donor")
    twin = person(api, "Dana Donor")
    assert gift(api, twin["id"], "100.00", ON)["status"] == "accepted"


def test_a_different_name_is_not_a_match(api):
    _senior_vp(api)
    other = person(api, "Alice Wong")
    assert gift(api, other["id"], "100.00", ON)["status"] == "accepted"


def test_a_reviewer_records_different_people_and_is_not_asked_again(api_as, db):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    _lab, vp = _senior_vp(admin)
    second = person(admin, "Morgan Chen", "other.morgan@example.net")
    assert gift(admin, second["id"], "100.00", ON)["status"] == "held"

    listed = ok(admin.get(f"/donors/{second['id']}/matches"), 200)
    assert listed["threshold"] == "0.92"
    assert [(m["record"], m["record_id"], m["probable"], m["resolved_different"])
            for m in listed["items"]] == [("donor", vp["id"], True, False)]

    body = {"record": "donor", "record_id": vp["id"], "reason": "different birth dates"}
    made = ok(reviewer.post(f"/donors/{second['id']}/matches/different", body))
    assert made["verdict"] == "different"
    # The pair is answered, from either side.
    again = reviewer.post(f"/donors/{vp['id']}/matches/different",
                          {**body, "record_id": second["id"]})
    assert again.status_code == 409
    assert gift(admin, second["id"], "100.00", "2026-03-03")["status"] == "accepted"
    listed = ok(admin.get(f"/donors/{second['id']}/matches"), 200)
    assert listed["items"][0]["resolved_different"] is True
    verdict = db.execute(select(IdentityVerdict)).scalar_one()
    assert (verdict.verdict, verdict.decided_by_id) == ("different", reviewer.user_id)
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "identity.different")
                       ).scalar_one()
    assert entry.entity_id == second["id"] and entry.data["reason"] == "different birth dates"


def test_only_a_reviewer_answers_and_bad_answers_are_refused(api_as, db):
    admin, fundraiser = api_as("admin"), api_as("fundraiser")
    _lab, vp = _senior_vp(admin)
    second = person(admin, "Morgan Chen")
    body = {"record": "donor", "record_id": vp["id"], "reason": "different people"}
    assert fundraiser.post(f"/donors/{second['id']}/matches/different", body).status_code == 403
    before = snapshot(db)
    assert admin.post(f"/donors/{second['id']}/matches/different",
                      {**body, "record_id": second["id"]}).status_code == 422
    assert admin.post(f"/donors/{second['id']}/matches/different",
                      {**body, "record_id": 999_999}).status_code == 404
    assert admin.post(f"/donors/{second['id']}/matches/different",
                      {**body, "reason": ""}).status_code == 422
    assert admin.post(f"/donors/{second['id']}/matches/different",
                      {**body, "record": "cousin"}).status_code == 422
    assert snapshot(db) == before


def test_same_person_for_two_donor_records(api):
    _lab, vp = _senior_vp(api)
    second = person(api, "Morgan Chen")
    response = api.post(f"/donors/{second['id']}/matches/same",
                        {"record": "donor", "record_id": vp["id"], "reason": "same person"})
    if importlib.util.find_spec("app.ledger.merge") is None:
        assert response.status_code == 409
        assert response.get_json()["error"] == "merge not available"
    else:  # the merge itself is tested with app.ledger.merge
        assert response.status_code == 201


ROSTER = (
    "name,title,organisation,start,end,source\n"
    "Avery Stone,Chief Scientist,\"Halcyon Labs, Inc.\",2024-01-01,,halcyon leadership page\n"
    "Riley Park,Head of Policy,halcyon labs,2023-05-01,2024-12-31,press release 2023-05-02\n"
)


def _post_roster(api, text, content_type="text/csv"):
    return api.client.post("/api/v1/rosters", data=text.encode(),
                           headers={**api.headers, "Content-Type": content_type})


def test_a_roster_entry_holds_gifts_of_a_donor_who_is_probably_them(api_as, db):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    lab = organization(admin, "Halcyon Labs", covered_lab=True)
    made = ok(_post_roster(reviewer, ROSTER))
    assert made["imported"] == 2
    assert [(e["name"], e["organization_id"], e["end_date"]) for e in made["entries"]] == [
        ("Avery Stone", lab["id"], None), ("Riley Park", lab["id"], "2024-12-31")]
    listed = ok(admin.get("/rosters"), 200)
    assert [e["name"] for e in listed["items"]] == ["Avery Stone", "Riley Park"]

    donor = person(admin, "Avery  Stone")
    held = gift(admin, donor["id"], "250.00", ON)
    assert held["status"] == "held" and fired(held) == ["possible_match"]
    [match] = _matches(held)
    assert (match["record"], match["labs"]) == ("roster", ["Halcyon Labs"])
    # Riley Park left at the end of 2024: within the 365-day cooling-off in March 2025,
    # past it in March 2026.
    riley = person(admin, "Riley Park")
    assert gift(admin, riley["id"], "250.00", "2025-03-01")["status"] == "held"
    assert gift(admin, riley["id"], "250.00", ON)["status"] == "accepted"


def test_same_person_as_a_roster_entry_puts_the_role_on_the_donor(api_as, db):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    lab = organization(admin, "Halcyon Labs", covered_lab=True)
    ok(_post_roster(reviewer, ROSTER))
    entry = db.execute(select(RosterEntry).where(RosterEntry.name == "Avery Stone")).scalar_one()
    db.rollback()
    donor = person(admin, "Avery Stone")
    held = gift(admin, donor["id"], "250.00", ON)
    answered = ok(reviewer.post(f"/donors/{donor['id']}/matches/same",
                                {"record": "roster", "record_id": entry.id,
                                 "reason": "confirmed by e-mail"}))
    assert answered["rescreened_gift_ids"] == [held["id"]]
    record = ok(admin.get(f"/donors/{donor['id']}"), 200)
    assert [(a["organization_id"], a["title"]) for a in record["affiliations"]] == [
        (lab["id"], "Chief Scientist")]
    # The role is the donor's own now: a lab employee's gift (here over the cap, the only
    # funding; its title also reads senior), no longer a possible match.
    later = gift(admin, donor["id"], "250.00", "2026-03-03")
    assert "lab_employee_cap" in fired(later) and "possible_match" not in fired(later)
    assert ok(admin.get(f"/donors/{donor['id']}/matches"), 200)["items"] == []


def test_a_roster_pulls_back_past_gifts_of_a_donor_who_is_probably_on_it(api_as):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    organization(admin, "Halcyon Labs", covered_lab=True)
    donor = person(admin, "Avery Stone")
    before = gift(admin, donor["id"], "250.00", "2025-02-01")
    assert before["status"] == "accepted"
    made = ok(_post_roster(reviewer, ROSTER))
    assert made["rescreened_gift_ids"] == [before["id"]]
    assert ok(admin.get(f"/gifts/{before['id']}"), 200)["status"] == "held"


def test_a_roster_as_a_multipart_upload(api_as):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    organization(admin, "Halcyon Labs", covered_lab=True)
    import io
    response = reviewer.client.post(
        "/api/v1/rosters", headers=reviewer.headers,
        data={"file": (io.BytesIO(ROSTER.encode()), "roster.csv")},
        content_type="multipart/form-data")
    assert ok(response)["imported"] == 2


def test_a_bad_roster_stores_nothing_and_names_each_line(api_as, db):
    admin, reviewer, fundraiser = api_as("admin"), api_as("reviewer"), api_as("fundraiser")
    organization(admin, "Halcyon Labs", covered_lab=True)
    before = snapshot(db)
    bad = ROSTER + "Sam Lee,,Nowhere Inc,2024-01-01,,x\nKim Ode,,Halcyon Labs,not-a-date,,x\n"
    response = _post_roster(reviewer, bad)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"line 4", "line 5"}
    assert "no organisation named 'Nowhere Inc'" in errors["line 4"][0]
    assert _post_roster(reviewer, "name,organisation\nX,Halcyon Labs\n").status_code == 422
    assert _post_roster(reviewer, ROSTER, "application/json").status_code == 415
    assert _post_roster(fundraiser, ROSTER).status_code == 403
    assert ok(admin.get("/rosters"), 200)["items"] == []
    assert snapshot(db) == before


def _lab_namesakes(api, count: int) -> list[dict]:
    """`count` lab-side donors named James Smith (no e-mail: a common name's namesakes)."""
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    made = []
    for _ in range(count):
        namesake = person(api, "James Smith")
        affiliate(api, namesake["id"], lab["id"], title="Engineer")
        made.append(namesake)
    return made


def test_a_common_name_lists_the_policy_s_best_matches_and_counts_the_others(api):
    """Policy 2026.4 [possible_match] max_listed: a donor with N+5 lab-side namesakes is
    held with N listed (all score 1: by record id) and the 5 others counted."""
    from policies import load_policy

    limit = load_policy().settings["possible_match"]["max_listed"]
    namesakes = _lab_namesakes(api, limit + 5)
    donor = person(api, "James Smith", "james@example.net")
    held = gift(api, donor["id"], "100.00", ON)
    assert held["status"] == "held" and fired(held) == ["possible_match"]
    assert held["decision"]["policy_version"] == "2026.4"
    assert [m["record_id"] for m in _matches(held)] == [n["id"] for n in namesakes[:limit]]
    assert held["decision"]["figures"]["more_possible_matches"] == 5
    message = next(r["message"] for r in held["decision"]["reasons"] if r["fired"])
    assert message.count("is probably donor") == limit
    assert "; and 5 more possible matches." in message


def test_namesakes_answered_different_are_neither_listed_nor_counted(api_as):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    from policies import load_policy

    limit = load_policy().settings["possible_match"]["max_listed"]
    namesakes = _lab_namesakes(admin, limit + 2)
    donor = person(admin, "James Smith", "james@example.net")
    for other in namesakes[:3]:  # three listed ones answered: the rest move up
        ok(reviewer.post(f"/donors/{donor['id']}/matches/different",
                         {"record": "donor", "record_id": other["id"], "reason": "not him"}))
    held = gift(admin, donor["id"], "100.00", ON)
    assert held["status"] == "held"
    assert [m["record_id"] for m in _matches(held)] == [n["id"] for n in namesakes[3:]]
    assert "more_possible_matches" not in held["decision"]["figures"]
