"""Two people for anything that weakens enforcement (issue 11, part C).

First the decision tables of app.ledger.weakening (no database): every kind of edit, what
applies at once and what waits. Then the same kinds through the JSON API on the real
database (SQLite, and PostgreSQL with TEST_DATABASE_URL): a weakening request answers 202
and changes nothing until a second person approves; a tightening one answers as before.
Then issue 11's "What was seen" item 3, reproduced.
"""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.ledger.weakening import split_affiliation, split_organization
from models import Affiliation, AuditEntry, Organization, PendingChange, PolicyVersion
from tests.builders import World, affiliate, gift, ok, organization, person
from tests.webtools import csrf_token, submit

TODAY = datetime.now(UTC).date()


# --- decision tables: organisations ---------------------------------------------------------

LAB = {"name": "Halcyon Labs", "covered_lab": True, "aliases": ["Halcyon"], "parent_id": None}
AFFILIATE = {"name": "Halcyon Foundation", "covered_lab": False, "aliases": ["HF"], "parent_id": 1}
PLAIN = {"name": "Plain Corp", "covered_lab": False, "aliases": ["Plain"], "parent_id": None}
COVERED_PARENTS = {1}  # organisation 1 is a covered lab; 2 and 3 are not


def _org_split(current, covered, **wanted):
    return split_organization(current, {**current, **wanted}, covered=covered,
                              covered_parent=lambda i: i in COVERED_PARENTS)


@pytest.mark.parametrize(("case", "current", "covered", "wanted", "waits", "at_once"), [
    # weakening
    ("uncover a lab", LAB, True, {"covered_lab": False}, {"covered_lab"}, {}),
    ("remove the parent link of an affiliate", AFFILIATE, True, {"parent_id": None},
     {"parent_id"}, {}),
    ("move an affiliate to an uncovered parent", AFFILIATE, True, {"parent_id": 2},
     {"parent_id"}, {}),
    ("remove a covered lab's alias", LAB, True, {"aliases": []}, {"name", "aliases"}, {}),
    ("rename a covered lab, dropping the old name", LAB, True, {"name": "Hal Co"},
     {"name", "aliases"}, {}),
    ("remove an affiliate's alias", AFFILIATE, True, {"aliases": []}, {"name", "aliases"}, {}),
    # tightening or neutral
    ("mark a lab covered", PLAIN, False, {"covered_lab": True}, set(), {"covered_lab": True}),
    ("put an organisation under a covered lab", PLAIN, False, {"parent_id": 1}, set(),
     {"parent_id": 1}),
    ("move an affiliate from one covered parent to another", AFFILIATE, True, {"parent_id": 1},
     set(), {"parent_id": 1}),
    ("move an uncovered organisation between uncovered parents", {**PLAIN, "parent_id": 2},
     False, {"parent_id": 3}, set(), {"parent_id": 3}),
    ("add an alias to a covered lab", LAB, True, {"aliases": ["Halcyon", "HL"]}, set(),
     {"aliases": ["Halcyon", "HL"]}),
    ("rename a covered lab keeping the old name as an alias", LAB, True,
     {"name": "Halcyon Labs Inc", "aliases": ["Halcyon", "Halcyon Labs"]}, set(),
     {"name": "Halcyon Labs Inc"}),
    ("case and spacing of an alias", LAB, True, {"aliases": [" halcyon "]}, set(), {}),
    ("remove an uncovered organisation's alias", PLAIN, False, {"aliases": []}, set(),
     {"aliases": []}),
    ("rename an uncovered organisation", PLAIN, False, {"name": "Plain Corporation"}, set(),
     {"name": "Plain Corporation"}),
])
def test_organization_edits(case, current, covered, wanted, waits, at_once):
    split = _org_split(current, covered, **wanted)
    assert set(split.pending) == waits, case
    assert bool(split.weakens) == bool(waits)
    for key, value in at_once.items():
        assert split.now[key] == value, case
    for key in waits:
        if key != "aliases":
            assert split.now[key] == current[key], f"{case}: {key} changed before approval"


def test_an_alias_added_while_another_is_removed_applies_now_and_the_removal_waits():
    split = _org_split(LAB, True, aliases=["HL"])
    assert split.now["aliases"] == ["Halcyon", "HL"]  # the addition at once, nothing lost yet
    assert split.pending == {"name": "Halcyon Labs", "aliases": ["HL"]}
    assert split.before == {"name": "Halcyon Labs", "aliases": ["Halcyon", "HL"]}


def test_uncovering_and_renaming_in_one_edit_waits_for_both_and_applies_neither():
    split = _org_split(LAB, True, covered_lab=False, name="Other")
    assert split.now == LAB
    assert set(split.pending) == {"covered_lab", "name", "aliases"}


# --- decision tables: affiliations ----------------------------------------------------------

AFF = {"organization_id": 1, "kind": "employee", "title": "Vice President",
       "senior_decision_maker": True, "start_date": date(2020, 1, 1),
       "end_date": date(2025, 6, 30)}
OPEN = {**AFF, "title": "Engineer", "senior_decision_maker": False, "end_date": None}


@pytest.mark.parametrize(("case", "current", "wanted", "waits"), [
    ("clear the senior flag", AFF, {"senior_decision_maker": False}, {"senior_decision_maker"}),
    ("end earlier", AFF, {"end_date": date(2024, 1, 1)}, {"end_date"}),
    ("end an open affiliation", OPEN, {"end_date": date(2024, 1, 1)}, {"end_date"}),
    ("start later", AFF, {"start_date": date(2021, 1, 1)}, {"start_date"}),
    ("move to another organisation", AFF, {"organization_id": 2}, set(AFF)),
    ("change the title while not senior", OPEN, {"title": "Intern"}, {"title"}),
    ("clear the title while not senior", OPEN, {"title": None}, {"title"}),
    ("add the senior flag", OPEN, {"senior_decision_maker": True}, set()),
    ("end later", AFF, {"end_date": date(2026, 1, 1)}, set()),
    ("reopen (no end)", AFF, {"end_date": None}, set()),
    ("start earlier", AFF, {"start_date": date(2019, 1, 1)}, set()),
    ("change the title while senior", AFF, {"title": "President"}, set()),
    ("give a title where there was none", {**OPEN, "title": None}, {"title": "Engineer"}, set()),
    ("change the kind", AFF, {"kind": "advisor"}, set()),
    ("nothing", AFF, {}, set()),
])
def test_affiliation_edits_at_a_covered_organisation(case, current, wanted, waits):
    split = split_affiliation(current, {**current, **wanted}, covered_before=True)
    assert set(split.pending) == waits, case
    assert bool(split.weakens) == bool(waits)
    for key in waits:
        assert split.now[key] == current[key], f"{case}: {key} changed before approval"
    for key, value in wanted.items():
        if key not in waits:
            assert split.now[key] == value, case


def test_tightening_parts_of_an_affiliation_edit_apply_at_once():
    split = split_affiliation(OPEN, {**OPEN, "senior_decision_maker": True,
                                     "start_date": date(2021, 1, 1)}, covered_before=True)
    assert split.now["senior_decision_maker"] is True
    assert split.now["start_date"] == OPEN["start_date"]
    assert split.pending == {"start_date": date(2021, 1, 1)}


def test_any_edit_at_an_uncovered_organisation_applies_at_once():
    wanted = {**AFF, "senior_decision_maker": False, "end_date": date(2020, 2, 1),
              "organization_id": 3}
    split = split_affiliation(AFF, wanted, covered_before=False)
    assert split.pending == {} and split.now == wanted


# --- through the API: every kind --------------------------------------------------------------

def _aff_body(org_id, start="2020-01-01", end=None, senior=False, title=None):
    return {"organization_id": org_id, "kind": "employee", "title": title,
            "senior_decision_maker": senior, "start_date": start, "end_date": end}


@pytest.fixture
def cast(api):
    lab = organization(api, "Halcyon Labs", covered_lab=True)
    ok(api.patch(f"/organizations/{lab['id']}", {"aliases": ["Halcyon"]}), 200)
    foundation = organization(api, "Halcyon Foundation", parent_id=lab["id"])
    plain = organization(api, "Plain Corp")
    morgan = person(api, "Morgan Chen")
    vp = affiliate(api, morgan["id"], lab["id"], start="2020-01-01", senior=True,
                   title="Vice President")
    return {"lab": lab, "foundation": foundation, "plain": plain, "morgan": morgan, "vp": vp}


def _org(db, org_id) -> Organization:
    db.rollback()
    return db.get(Organization, org_id)


def _aff(db, aff_id) -> Affiliation | None:
    db.rollback()
    return db.get(Affiliation, aff_id)


WEAKENING_REQUESTS = {
    "uncover a lab": lambda c: ("patch", f"/organizations/{c['lab']['id']}",
                                {"covered_lab": False}),
    "remove an affiliate's parent": lambda c: ("patch", f"/organizations/{c['foundation']['id']}",
                                               {"parent_id": None}),
    "move an affiliate to an uncovered parent": lambda c: (
        "patch", f"/organizations/{c['foundation']['id']}", {"parent_id": c["plain"]["id"]}),
    "remove a lab's alias": lambda c: ("patch", f"/organizations/{c['lab']['id']}",
                                       {"aliases": []}),
    "clear a senior flag": lambda c: ("put", f"/affiliations/{c['vp']['id']}", _aff_body(
        c["lab"]["id"], senior=False, title="Vice President")),
    "end an affiliation": lambda c: ("put", f"/affiliations/{c['vp']['id']}", _aff_body(
        c["lab"]["id"], end="2021-01-01", senior=True, title="Vice President")),
    "start an affiliation later": lambda c: ("put", f"/affiliations/{c['vp']['id']}", _aff_body(
        c["lab"]["id"], start="2024-01-01", senior=True, title="Vice President")),
    "move an affiliation away from the lab": lambda c: ("put", f"/affiliations/{c['vp']['id']}",
                                                        _aff_body(c["plain"]["id"], senior=True,
                                                                  title="Vice President")),
    "delete an affiliation": lambda c: ("delete", f"/affiliations/{c['vp']['id']}", None),
}


def _send(api, method, path, body):
    if method == "delete":
        return api.delete(path)
    return getattr(api, method)(path, body)


def _state(db, cast) -> tuple:
    lab, foundation, vp = (_org(db, cast["lab"]["id"]), _org(db, cast["foundation"]["id"]),
                           _aff(db, cast["vp"]["id"]))
    return ((lab.name, lab.covered_lab, lab.aliases), (foundation.parent_id,),
            None if vp is None else (vp.organization_id, vp.senior_decision_maker,
                                     vp.start_date, vp.end_date))


@pytest.mark.parametrize("case", sorted(WEAKENING_REQUESTS))
def test_each_weakening_request_waits_for_a_second_person(api_as, db, cast, case):
    fundraiser, reviewer = api_as("fundraiser"), api_as("reviewer")
    before = _state(db, cast)
    response = _send(fundraiser, *WEAKENING_REQUESTS[case](cast))
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["status"] == "pending_approval" and body["weakens"]
    change_id = body["change_id"]
    assert _state(db, cast) == before, "nothing changes before approval"

    listed = ok(fundraiser.get("/changes?status=pending"), 200)["items"]
    assert [c["id"] for c in listed] == [change_id]
    assert listed[0]["proposed_by"] == fundraiser.user_id and listed[0]["status"] == "pending"
    # The proposer's role may not approve, and nor may they as a person.
    assert fundraiser.post(f"/changes/{change_id}/approve").status_code == 403
    assert _state(db, cast) == before

    approved = ok(reviewer.post(f"/changes/{change_id}/approve", {"note": "checked"}), 200)
    assert approved["status"] == "approved" and approved["decided_by"] == reviewer.user_id
    assert _state(db, cast) != before, "the approved change applies"
    db.rollback()
    actions = [a for (a,) in db.execute(
        select(AuditEntry.action).where(AuditEntry.entity_type == "pending_change")
        .order_by(AuditEntry.id))]
    assert actions == ["change.proposed", "change.approved"]


TIGHTENING_REQUESTS = {
    "mark a lab covered": lambda c: ("patch", f"/organizations/{c['plain']['id']}",
                                     {"covered_lab": True}, 200),
    "put an organisation under a lab": lambda c: ("patch", f"/organizations/{c['plain']['id']}",
                                                  {"parent_id": c["lab"]["id"]}, 200),
    "add an alias": lambda c: ("patch", f"/organizations/{c['lab']['id']}",
                               {"aliases": ["Halcyon", "HL"]}, 200),
    "rename keeping the old name": lambda c: ("patch", f"/organizations/{c['lab']['id']}", {
        "name": "Halcyon Labs Inc", "aliases": ["Halcyon", "Halcyon Labs"]}, 200),
    "add a senior flag": lambda c: ("put", f"/affiliations/{c['plain_aff']['id']}", _aff_body(
        c["lab"]["id"], senior=True, title="Engineer"), 200),
    "start earlier": lambda c: ("put", f"/affiliations/{c['vp']['id']}", _aff_body(
        c["lab"]["id"], start="2018-01-01", senior=True, title="Vice President"), 200),
    "add an affiliation": lambda c: ("post", f"/donors/{c['morgan']['id']}/affiliations",
                                     _aff_body(c["foundation"]["id"], start="2022-01-01"), 201),
    "delete an affiliation at an uncovered organisation": lambda c: (
        "delete", f"/affiliations/{c['plain_only']['id']}", None, 200),
}


@pytest.mark.parametrize("case", sorted(TIGHTENING_REQUESTS))
def test_each_tightening_request_applies_at_once(api_as, api, db, cast, case):
    ana = person(api, "Ana Engineer")
    cast["plain_aff"] = affiliate(api, ana["id"], cast["lab"]["id"], title="Engineer")
    cast["plain_only"] = affiliate(api, ana["id"], cast["plain"]["id"])
    fundraiser = api_as("fundraiser")
    method, path, body, status = TIGHTENING_REQUESTS[case](cast)
    response = _send(fundraiser, method, path, body)
    assert response.status_code == status, response.get_json()
    assert "change_id" not in response.get_json()
    assert ok(fundraiser.get("/changes?status=pending"), 200)["items"] == []


def test_a_weakening_affiliation_change_rescreens_only_when_approved(api_as, api, db):
    world = World(api)
    gift(api, world.donor["id"], "10000.00", "2026-01-05")
    ada = person(api, "Ada")
    aff = affiliate(api, ada["id"], world.lab["id"], start="2020-01-01", senior=True, title="CTO")
    refused = gift(api, ada["id"], "100.00", "2026-02-01")
    assert refused["status"] == "rejected"
    fundraiser, reviewer = api_as("fundraiser"), api_as("reviewer")
    response = fundraiser.put(f"/affiliations/{aff['id']}",
                              _aff_body(world.lab["id"], start="2020-01-01", title="CTO"))
    assert response.status_code == 202
    assert response.get_json()["rescreened_gift_ids"] == []
    # The flag still stands: the same gift is refused again.
    assert gift(api, ada["id"], "100.00", "2026-02-02")["status"] == "rejected"
    ok(reviewer.post(f"/changes/{response.get_json()['change_id']}/approve"), 200)
    # The flag is cleared: no longer refused. "CTO" still reads like a senior role, so the
    # gift waits for a reviewer (rule possible_senior_decision_maker) instead of counting.
    after = gift(api, ada["id"], "100.00", "2026-02-03")
    assert after["status"] == "held"
    assert [r["rule"] for r in after["decision"]["reasons"] if r["fired"]] == [
        "possible_senior_decision_maker"]


def test_a_mixed_patch_applies_the_tightening_part_and_holds_the_rest(api_as, db, cast):
    fundraiser = api_as("fundraiser")
    response = fundraiser.patch(f"/organizations/{cast['plain']['id']}",
                                {"covered_lab": True, "name": "Plain Corporation"})
    assert response.status_code == 200
    response = fundraiser.patch(f"/organizations/{cast['lab']['id']}",
                                {"covered_lab": False, "aliases": ["Halcyon", "HL"]})
    assert response.status_code == 202
    shown = response.get_json()
    assert shown["covered_lab"] is True and shown["aliases"] == ["Halcyon", "HL"]
    assert _org(db, cast["lab"]["id"]).covered_lab is True


def test_patch_validates(api, cast):
    lab_id = cast["lab"]["id"]
    assert api.patch(f"/organizations/{lab_id}", {"name": ""}).status_code == 422
    assert api.patch(f"/organizations/{lab_id}", {"covered_lab": None}).status_code == 422
    assert api.patch(f"/organizations/{lab_id}", {"colour": "red"}).status_code == 422
    assert api.patch(f"/organizations/{lab_id}", {"parent_id": 987654}).status_code == 422
    assert api.patch(f"/organizations/{lab_id}",
                     {"parent_id": cast["foundation"]["id"]}).status_code == 422
    assert api.patch("/organizations/987654", {"name": "X"}).status_code == 404
    assert api_get_status(api, "/changes/987654") == 404
    assert api.get("/changes?status=maybe").status_code == 422


def api_get_status(api, path) -> int:
    return api.get(path).status_code


def test_the_proposer_cannot_approve_their_own_change_even_as_admin(api_as, db, cast):
    admin, other_admin = api_as("admin"), api_as("admin", "admin2")
    change_id = ok(admin.patch(f"/organizations/{cast['lab']['id']}", {"covered_lab": False}),
                   202)["change_id"]
    refused = admin.post(f"/changes/{change_id}/approve")
    assert refused.status_code == 409
    assert "second reviewer, not its proposer" in refused.get_json()["error"]
    assert _org(db, cast["lab"]["id"]).covered_lab is True
    assert ok(admin.get(f"/changes/{change_id}"), 200)["status"] == "pending"
    ok(other_admin.post(f"/changes/{change_id}/approve"), 200)
    assert _org(db, cast["lab"]["id"]).covered_lab is False
    assert other_admin.post(f"/changes/{change_id}/approve").status_code == 409  # only once


def test_decline_and_withdraw(api_as, db, cast):
    fundraiser, other, reviewer = (api_as("fundraiser"), api_as("fundraiser", "fundraiser2"),
                                   api_as("reviewer"))
    first = ok(fundraiser.patch(f"/organizations/{cast['lab']['id']}", {"covered_lab": False}),
               202)["change_id"]
    assert other.post(f"/changes/{first}/decline").status_code == 409  # not theirs, no review
    declined = ok(reviewer.post(f"/changes/{first}/decline", {"note": "no"}), 200)
    assert (declined["status"], declined["decided_by"], declined["note"]) == (
        "declined", reviewer.user_id, "no")
    assert reviewer.post(f"/changes/{first}/approve").status_code == 409
    second = ok(fundraiser.delete(f"/affiliations/{cast['vp']['id']}"), 202)["change_id"]
    withdrawn = ok(fundraiser.post(f"/changes/{second}/decline"), 200)
    assert (withdrawn["status"], withdrawn["decided_by"]) == ("declined", None)
    assert _org(db, cast["lab"]["id"]).covered_lab is True
    assert _aff(db, cast["vp"]["id"]) is not None
    assert [c["id"] for c in ok(reviewer.get("/changes?status=declined"), 200)["items"]] == [
        first, second]


def test_a_change_proposed_on_values_that_moved_since_is_refused(api_as, db, cast):
    fundraiser, reviewer = api_as("fundraiser"), api_as("reviewer")
    body = _aff_body(cast["lab"]["id"], start="2024-01-01", senior=True, title="Vice President")
    change_id = ok(fundraiser.put(f"/affiliations/{cast['vp']['id']}", body), 202)["change_id"]
    # Meanwhile someone else moves its start earlier (tightening: at once).
    ok(fundraiser.put(f"/affiliations/{cast['vp']['id']}",
                      {**body, "start_date": "2018-01-01"}), 200)
    refused = reviewer.post(f"/changes/{change_id}/approve")
    assert refused.status_code == 409 and "changed since" in refused.get_json()["error"]
    assert _aff(db, cast["vp"]["id"]).start_date == date(2018, 1, 1)


# --- issue 11, "What was seen" item 3 --------------------------------------------------------

def test_unticking_covered_lab_leaves_the_rejected_300k_gift_rejected_until_approved(
        api_as, api, db, web_as):
    """A fundraiser unticks covered_lab on a lab: the $300,000 lab-employee gift the cap
    rejected stays rejected, and a new one is still rejected, until a second person approves."""
    world = World(api)
    day = TODAY - timedelta(days=10)
    gift(api, world.donor["id"], "200000.00", day)
    big = gift(api, world.employee["id"], "300000.00", day)
    assert big["status"] == "rejected"
    assert "lab_employee_cap" in [r["rule"] for r in big["decision"]["reasons"] if r["fired"]]

    fundraiser = web_as("fundraiser")
    response = submit(fundraiser, f"/staff/organizations/{world.lab['id']}/edit", {
        "name": "Frontier Lab", "covered_lab": "", "aliases": "", "parent_id": ""})
    assert response.status_code == 302
    page = fundraiser.get(response.headers["Location"]).get_data(as_text=True)
    assert "waits for a second person" in page
    assert "Waiting for a second person:" in page  # the organisation's page says so
    assert _org(db, world.lab["id"]).covered_lab is True
    assert ok(api.get(f"/gifts/{big['id']}"), 200)["status"] == "rejected"
    preview = ok(api.post("/gifts/preview", {"donor_id": world.employee["id"],
                                             "amount": "300000.00", "currency": "USD",
                                             "received_on": day.isoformat()}), 200)
    assert preview["status"] == "rejected"

    change = ok(api.get("/changes?status=pending"), 200)["items"][0]
    assert change["kind"] == "organization" and change["proposed"] == {"covered_lab": False}
    reviewer = api_as("reviewer")
    ok(reviewer.post(f"/changes/{change['id']}/approve"), 200)
    assert _org(db, world.lab["id"]).covered_lab is False
    # The rejected gift is still rejected (decisions are appended, never rewritten); only a
    # gift recorded now is judged by the approved facts.
    assert ok(api.get(f"/gifts/{big['id']}"), 200)["status"] == "rejected"
    again = ok(api.post("/gifts/preview", {"donor_id": world.employee["id"],
                                           "amount": "300000.00", "currency": "USD",
                                           "received_on": day.isoformat()}), 200)
    assert again["status"] == "accepted"


ALL_ACCEPT = {"version": "2027.all-accept", "cap": "50", "warning": "40", "window_days": "365",
              "cooling_off_days": "365", "outcome_lab_evaluation_payment": "accept",
              "outcome_senior_decision_maker": "accept", "outcome_lab_employee_cap": "accept",
              "outcome_lab_corporate_money": "accept", "outcome_lab_in_kind": "accept",
              "outcome_large_gift": "accept"}


def test_an_all_accept_policy_version_decides_nothing_until_a_second_person_approves(
        api_as, api, db, web_as):
    world = World(api)
    day = TODAY - timedelta(days=3)
    earlier = gift(api, world.lab_donor["id"], "25000.00", day, purpose="evaluation_services")
    assert earlier["status"] == "rejected"

    admin = web_as("admin")
    response = submit(admin, "/staff/admin/policy", ALL_ACCEPT)
    assert response.status_code == 303, response.get_data(as_text=True)
    db.rollback()
    assert db.execute(select(PolicyVersion)).first() is None  # nothing stored, nothing in force

    # A minute later, a lab pays for evaluation services: still rejected.
    payment = gift(api, world.lab_donor["id"], "50000.00", TODAY, purpose="evaluation_services")
    assert payment["status"] == "rejected"
    assert payment["decision"]["policy_version"] == "2026.4"

    change = ok(api.get("/changes?status=pending"), 200)["items"][0]
    assert change["kind"] == "policy_version"
    detail = ok(api.get(f"/changes/{change['id']}"), 200)
    replay = detail["replay"]
    assert replay["proposed_version"] == "2027.all-accept"
    changed = {d["gift_id"]: d for d in replay["changed_decisions"]}
    assert changed[earlier["id"]]["outcome_in_force"] == "reject"
    assert changed[earlier["id"]]["outcome_proposed"] == "accept"
    assert changed[earlier["id"]]["rules"] == ["lab_evaluation_payment"]
    assert set(replay["in_force"]) >= {"lab_employee_share", "headroom", "cap"}

    # The admin who proposed it cannot approve it.
    admin_page = admin.get(f"/staff/changes/{change['id']}").get_data(as_text=True)
    assert "You proposed this change" in admin_page
    assert "Approve change" not in admin_page
    refused = admin.post(f"/staff/changes/{change['id']}/approve",
                         data={"csrf_token": csrf_token(admin_page)})
    assert refused.status_code == 409
    db.rollback()
    assert db.execute(select(PolicyVersion)).first() is None

    reviewer = api_as("reviewer")
    ok(reviewer.post(f"/changes/{change['id']}/approve"), 200)
    db.rollback()
    row = db.get(PendingChange, change["id"])
    version = db.execute(select(PolicyVersion).where(
        PolicyVersion.version == "2027.all-accept")).scalars().one()
    assert row.state == "approved" and row.result_id == version.id
    assert version.created_at >= row.decided_at - timedelta(seconds=1)
    effective = date.fromisoformat(tomllib.loads(version.document)["effective_from"])
    assert effective >= row.decided_at.date()
    later = gift(api, world.lab_donor["id"], "50000.00", TODAY, purpose="evaluation_services")
    assert later["decision"]["policy_version"] == "2027.all-accept"
    assert later["status"] == "accepted"


def test_a_pending_version_name_is_reserved(web_as):
    admin = web_as("admin")
    assert submit(admin, "/staff/admin/policy", ALL_ACCEPT).status_code == 303
    again = submit(admin, "/staff/admin/policy", {**ALL_ACCEPT, "cap": "45"})
    assert again.status_code == 400
    assert "this version exists" in again.get_data(as_text=True)


# --- the staff forms -------------------------------------------------------------------------

def test_staff_affiliation_edit_and_removal_wait_and_a_reviewer_approves_in_the_queue(
        api, web_as, db, cast):
    fundraiser = web_as("fundraiser")
    vp_id, morgan_id = cast["vp"]["id"], cast["morgan"]["id"]
    page = f"/staff/donors/{morgan_id}/affiliations/{vp_id}/edit"
    response = submit(fundraiser, page, {"senior_decision_maker": ""})
    assert response.status_code == 302
    assert "waits for a second person" in fundraiser.get(response.headers["Location"]).get_data(
        as_text=True)
    assert _aff(db, vp_id).senior_decision_maker is True

    plain_aff = affiliate(api, morgan_id, cast["plain"]["id"])
    removed = submit(fundraiser, f"/staff/donors/{morgan_id}/affiliations/{plain_aff['id']}/edit",
                     {}, action=f"/staff/donors/{morgan_id}/affiliations/{plain_aff['id']}/remove")
    assert removed.status_code == 303
    assert _aff(db, plain_aff["id"]) is None  # not covered: removed at once
    waiting = submit(fundraiser, page, {}, action=f"/staff/donors/{morgan_id}/affiliations/"
                                                  f"{vp_id}/remove")
    assert waiting.status_code == 303
    assert _aff(db, vp_id) is not None

    reviewer = web_as("reviewer")
    queue = reviewer.get("/staff/review/").get_data(as_text=True)
    assert "Changes pending second approval" in queue
    assert "Morgan Chen at Halcyon Labs: senior decision-maker flag cleared" in queue
    assert "Morgan Chen at Halcyon Labs: affiliation with a covered organisation deleted" in queue
    db.rollback()
    first, second = db.execute(select(PendingChange.id).order_by(PendingChange.id)).scalars()
    approved = submit(reviewer, "/staff/review/", {}, action=f"/staff/changes/{first}/approve")
    assert approved.status_code == 303
    assert _aff(db, vp_id).senior_decision_maker is False
    declined = submit(reviewer, "/staff/review/", {"note": "keep the record"},
                      action=f"/staff/changes/{second}/decline")
    assert declined.status_code == 303
    assert _aff(db, vp_id) is not None
    assert "Approve change" not in reviewer.get("/staff/review/").get_data(as_text=True)


def test_entry_points_never_apply_a_change_directly():
    """Pages, the API, the CLI and the import reach the applying functions only through
    app.ledger.changes, which decides what waits for a second person."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "app"
    callers = [*root.glob("web/*.py"), *root.glob("api/*.py"), *root.glob("payments/*.py"),
               root / "cli.py", root / "ledger" / "csv_import.py", root / "ledger" /
               "declarations.py"]
    direct = re.compile(r"parties\.(update_organization|update_affiliation|remove_affiliation)\b"
                        r"|\bsave_policy_version\b"
                        r"|from app\.ledger\.parties import[^\n]*(update_organization|"
                        r"update_affiliation|remove_affiliation)")
    found = [(p.name, m.group(0)) for p in callers for m in direct.finditer(p.read_text())]
    assert found == []


def test_a_reviewer_account_made_today_cannot_be_the_second_person(app, client, api_as, db, cast):
    from app.auth.users import create_token, create_user
    from models.schemas import UserCreate
    from tests.conftest import TEST_ACTOR, Api

    with app.extensions["armslength"].sessions() as session:
        fresh = create_user(session, UserCreate(email="fresh@example.org", role="reviewer",
                                                password="long enough password"), TEST_ACTOR)
        fresh_api = Api(client, create_token(session, "fresh@example.org", TEST_ACTOR), fresh.id)
    change_id = ok(api_as("fundraiser").patch(f"/organizations/{cast['lab']['id']}",
                                              {"covered_lab": False}), 202)["change_id"]
    refused = fresh_api.post(f"/changes/{change_id}/approve")
    assert refused.status_code == 409 and "less than 7 days" in refused.get_json()["error"]
    assert _org(db, cast["lab"]["id"]).covered_lab is True


def test_a_fundraiser_finds_their_change_under_changes_and_withdraws_it(web_as, db, cast):
    fundraiser = web_as("fundraiser")
    submit(fundraiser, f"/staff/organizations/{cast['lab']['id']}/edit",
           {"covered_lab": "", "aliases": "Halcyon"})
    listing = fundraiser.get("/staff/changes/").get_data(as_text=True)
    assert "Halcyon Labs: covered_lab true to false" in listing
    db.rollback()
    change_id = db.execute(select(PendingChange.id)).scalar_one()
    page = f"/staff/changes/{change_id}"
    assert "Approve change" not in fundraiser.get(page).get_data(as_text=True)
    response = submit(fundraiser, page, {}, action=f"/staff/changes/{change_id}/decline")
    assert response.status_code == 303
    db.rollback()
    change = db.get(PendingChange, change_id)
    assert (change.state, change.decided_by_id) == ("declined", None)
    assert _org(db, cast["lab"]["id"]).covered_lab is True


# --- pending changes expire (review finding: a proposal months old could be approved) ----------

def _age(db, change_id: int, days: float) -> None:
    """Date a change's proposal `days` back, as if it had waited that long."""
    from sqlalchemy import update

    db.rollback()  # no read snapshot held: the write must see what requests committed
    db.execute(update(PendingChange).where(PendingChange.id == change_id)
               .values(proposed_at=datetime.now(UTC) - timedelta(days=days)))
    db.commit()


@pytest.mark.parametrize(("approvals", "days"), [
    ({}, 14),
    ({"min_role_age_days": 7}, 14),
    ({"pending_change_days": 30}, 30),
    ({"pending_change_days": 1}, 1),
])
def test_pending_change_days_comes_from_the_policy_document(approvals, days):
    from policies import DEFAULT_POLICY_FILE
    from policies.document import policy_from_mapping

    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    document["approvals"] = approvals
    assert policy_from_mapping(document).pending_change_days == days


@pytest.mark.parametrize("bad", [0, -3, "14", 1.5, True])
def test_pending_change_days_must_be_a_whole_number_of_days(bad):
    from policies import DEFAULT_POLICY_FILE, PolicyError
    from policies.document import policy_from_mapping

    document = tomllib.loads(DEFAULT_POLICY_FILE.read_text())
    document["approvals"] = {"pending_change_days": bad}
    with pytest.raises(PolicyError, match="pending_change_days"):
        policy_from_mapping(document)


def test_a_change_not_approved_within_the_policy_days_expires_and_cannot_be_approved(
        api_as, db, cast):
    fundraiser, reviewer = api_as("fundraiser"), api_as("reviewer")
    lab_id = cast["lab"]["id"]
    old = ok(fundraiser.patch(f"/organizations/{lab_id}", {"covered_lab": False}),
             202)["change_id"]
    recent = ok(fundraiser.put(f"/affiliations/{cast['vp']['id']}", _aff_body(
        lab_id, senior=False, title="Vice President")), 202)["change_id"]
    _age(db, old, days=15)  # the shipped policy names no pending_change_days: 14
    _age(db, recent, days=13)

    shown = ok(reviewer.get(f"/changes/{old}"), 200)
    assert shown["status"] == "expired"
    assert shown["expires_at"] < datetime.now(UTC).isoformat()
    assert ok(reviewer.get(f"/changes/{recent}"), 200)["status"] == "pending"
    assert [c["id"] for c in ok(reviewer.get("/changes?status=pending"), 200)["items"]] == [
        recent]
    assert [c["id"] for c in ok(reviewer.get("/changes?status=expired"), 200)["items"]] == [old]

    refused = reviewer.post(f"/changes/{old}/approve", {"note": "looks fine"})
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["status"] == "expired" and body["change_id"] == old
    assert "expired" in body["error"] and "pending_change_days" in body["error"]
    assert _org(db, lab_id).covered_lab is True, "nothing of an expired change applies"
    row = db.get(PendingChange, old)
    assert (row.state, row.decided_by_id, row.decided_at) == ("expired", None, None)
    # Recorded once, by the system, naming who found it; the API says the same afterwards.
    expiries = db.execute(select(AuditEntry).where(
        AuditEntry.action == "change.expired")).scalars().all()
    assert [(e.entity_id, e.actor) for e in expiries] == [(old, "system")]
    assert expiries[0].data["noticed_by"] == reviewer_label(db, reviewer)
    assert expiries[0].data["pending_change_days"] == 14
    again = reviewer.post(f"/changes/{old}/approve")
    assert again.status_code == 409 and again.get_json()["status"] == "expired"
    declined = fundraiser.post(f"/changes/{old}/decline")
    assert declined.status_code == 409 and declined.get_json()["status"] == "expired"
    assert ok(reviewer.get(f"/changes/{old}"), 200)["status"] == "expired"
    db.rollback()
    assert len(db.execute(select(AuditEntry).where(
        AuditEntry.action == "change.expired")).scalars().all()) == 1

    # The one still within its time is approved as before.
    ok(reviewer.post(f"/changes/{recent}/approve"), 200)
    assert _aff(db, cast["vp"]["id"]).senior_decision_maker is False


def reviewer_label(db, api) -> str:
    from models import User

    db.rollback()
    return f"api:{db.get(User, api.user_id).email}"


def test_staff_pages_show_an_expired_change_without_approve_and_refuse_it(web_as, db, cast):
    fundraiser = web_as("fundraiser")
    submit(fundraiser, f"/staff/organizations/{cast['lab']['id']}/edit",
           {"covered_lab": "", "aliases": "Halcyon"})
    db.rollback()
    change_id = db.execute(select(PendingChange.id)).scalar_one()
    reviewer = web_as("reviewer")
    page = f"/staff/changes/{change_id}"
    assert "Approve change" in reviewer.get(page).get_data(as_text=True)
    token_page = reviewer.get(page).get_data(as_text=True)
    _age(db, change_id, days=20)

    detail = reviewer.get(page).get_data(as_text=True)
    assert '<span class="tag" id="change-status">expired</span>' in detail
    assert "Approve change" not in detail
    listing = reviewer.get("/staff/changes/").get_data(as_text=True)
    assert '<td class="change-status">expired</td>' in listing
    assert f"change-{change_id}" not in reviewer.get("/staff/review/").get_data(as_text=True)
    # A form loaded before the change expired is refused, with the reason.
    refused = reviewer.post(f"{page}/approve",
                            data={"csrf_token": csrf_token(token_page, page,
                                                           f"{page}/approve")})
    assert refused.status_code == 409
    assert "expired on" in refused.get_data(as_text=True)
    assert _org(db, cast["lab"]["id"]).covered_lab is True
    assert db.get(PendingChange, change_id).state == "expired"
