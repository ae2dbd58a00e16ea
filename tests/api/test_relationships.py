"""Households and relationships through the JSON API: a spouse's gift is held when the
other is a senior decision-maker at a covered lab (policy 2026.3 enables the rule); recording
a relationship re-screens at once; ending or deleting one waits for a second person; the
household view sums the members' giving with soft credits."""

from __future__ import annotations

from sqlalchemy import select

from app.ledger import row_hashes
from models import AuditEntry, PendingChange, Relationship
from tests.builders import affiliate, gift, ok, organization, person

ON = "2026-03-02"
RULE = "household_of_senior_decision_maker"


def _family(api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    senior = person(api, "Carla Chief")
    affiliate(api, senior["id"], lab["id"], start="2018-01-01", senior=True, title="CEO")
    spouse = person(api, "Sam Spouse")
    return lab, senior, spouse


def _relate(api, donor_id, other_id, kind="spouse_partner", start="2015-05-01", status=201,
            **extra):
    return ok(api.post(f"/donors/{donor_id}/relationships",
                       {"related_donor_id": other_id, "kind": kind, "start_date": start,
                        **extra}), status)


def test_a_spouses_gift_is_held_with_a_reason_naming_the_senior(api):
    _lab, senior, spouse = _family(api)
    _relate(api, spouse["id"], senior["id"])
    made = gift(api, spouse["id"], "500.00", ON)
    assert made["status"] == "held"
    (reason,) = [r for r in made["decision"]["reasons"] if r["rule"] == RULE and r["fired"]]
    assert "Sam Spouse is the spouse or partner of Carla Chief (CEO at Frontier Lab)" in \
        reason["message"]
    assert made["decision"]["figures"]["related_senior_decision_makers"] == [
        {"donor_id": spouse["id"], "related_donor_id": senior["id"],
         "relationship": "spouse_partner", "organization": "Frontier Lab"}]


def test_a_colleague_or_a_relationship_not_holding_on_the_gift_date_is_not_held(api):
    _lab, senior, spouse = _family(api)
    colleague = person(api, "Cole League")
    _relate(api, colleague["id"], senior["id"], kind="colleague")
    _relate(api, spouse["id"], senior["id"], start="2026-04-01")
    assert gift(api, colleague["id"], "10.00", ON)["status"] == "accepted"
    assert gift(api, spouse["id"], "10.00", ON)["status"] == "accepted"
    assert gift(api, spouse["id"], "10.00", "2026-04-01")["status"] == "held"


def test_recording_a_relationship_rescreens_at_once_and_is_audited_without_free_text(api, db):
    _lab, senior, spouse = _family(api)
    before = gift(api, spouse["id"], "300.00", "2026-01-10")
    other = gift(api, spouse["id"], "40.00", "2014-01-10")  # before the relationship
    assert before["status"] == other["status"] == "accepted"
    made = _relate(api, senior["id"], spouse["id"])  # from either side
    assert made["rescreened_gift_ids"] == [before["id"]]
    assert (made["donor_id"], made["related_donor_id"]) == (senior["id"], spouse["id"])
    assert ok(api.get(f"/gifts/{before['id']}"), 200)["status"] == "held"
    assert ok(api.get(f"/gifts/{other['id']}"), 200)["status"] == "accepted"
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "relationship.added")
                       ).scalar_one()
    assert set(entry.data) == {"relationship_id", "donor_id", "related_donor_id", "kind",
                               "start_date", "end_date"}
    stored = db.get(Relationship, made["id"])
    assert entry.row_hashes == row_hashes.seals_of(stored)
    assert ok(api.get("/audit/verify"), 200)["ok"] is True


def test_a_senior_flag_recorded_later_rescreens_the_spouses_gifts(api):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    partner, spouse = person(api, "Pat Partner"), person(api, "Sam Spouse")
    _relate(api, spouse["id"], partner["id"], kind="household")
    made = gift(api, spouse["id"], "75.00", ON)
    assert made["status"] == "accepted"
    aff = affiliate(api, partner["id"], lab["id"], start="2019-01-01", senior=True,
                    title="Chief Scientist")
    assert made["id"] in aff["rescreened_gift_ids"]
    assert ok(api.get(f"/gifts/{made['id']}"), 200)["status"] == "held"


def test_ending_or_deleting_a_screened_relationship_waits_for_a_second_person(api_as, db):
    admin, reviewer, second = api_as("admin"), api_as("reviewer"), api_as("reviewer", "r2")
    _lab, senior, spouse = _family(admin)
    rel = _relate(admin, spouse["id"], senior["id"])
    response = reviewer.post(f"/relationships/{rel['id']}/end", {"end_date": "2025-12-31"})
    assert response.status_code == 202, response.get_json()
    waiting = response.get_json()
    assert waiting["status"] == "pending_approval" and waiting["end_date"] is None
    assert gift(admin, spouse["id"], "20.00", ON)["status"] == "held"  # nothing applied
    assert reviewer.post(f"/changes/{waiting['change_id']}/approve").status_code == 409
    ok(second.post(f"/changes/{waiting['change_id']}/approve"), 200)
    db.rollback()
    assert db.get(Relationship, rel["id"]).end_date.isoformat() == "2025-12-31"
    assert gift(admin, spouse["id"], "20.00", ON)["status"] == "accepted"

    response = reviewer.delete(f"/relationships/{rel['id']}")
    assert response.status_code == 202, response.get_json()
    change_id = response.get_json()["change_id"]
    ok(second.post(f"/changes/{change_id}/approve"), 200)
    db.rollback()
    assert db.get(Relationship, rel["id"]) is None
    kinds = [c.kind for c in db.execute(select(PendingChange).order_by(PendingChange.id))
             .scalars()]
    assert kinds == ["relationship_end", "relationship_removal"]
    actions = [a for (a,) in db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "relationship").order_by(AuditEntry.id))]
    assert actions == ["relationship.added", "relationship.ended", "relationship.removed"]
    assert ok(admin.get("/audit/verify"), 200)["ok"] is True


def test_a_relationship_nobody_at_a_lab_is_in_ends_at_once(api):
    a, b = person(api, "Ann Plain"), person(api, "Ben Plain")
    rel = _relate(api, a["id"], b["id"], kind="household")
    ended = ok(api.post(f"/relationships/{rel['id']}/end", {"end_date": "2026-01-31"}), 200)
    assert ended["end_date"] == "2026-01-31" and "change_id" not in ended
    assert ok(api.delete(f"/relationships/{rel['id']}"), 200)["removed"] is True


def test_bad_relationships_are_refused(api):
    a = person(api, "Ann Plain")
    org = ok(api.post("/donors", {"type": "organization", "name": "Some Fund",
                                  "category": "foundation"}))
    assert api.post(f"/donors/{a['id']}/relationships",
                    {"related_donor_id": a["id"], "kind": "household",
                     "start_date": ON}).status_code == 422
    assert api.post(f"/donors/{a['id']}/relationships",
                    {"related_donor_id": org["id"], "kind": "household",
                     "start_date": ON}).status_code == 422
    assert api.post(f"/donors/{a['id']}/relationships",
                    {"related_donor_id": 999999, "kind": "household",
                     "start_date": ON}).status_code == 422
    b = person(api, "Ben Plain")
    assert api.post(f"/donors/{a['id']}/relationships",
                    {"related_donor_id": b["id"], "kind": "neighbour",
                     "start_date": ON}).status_code == 422
    _relate(api, a["id"], b["id"], kind="household")
    clash = api.post(f"/donors/{b['id']}/relationships",
                     {"related_donor_id": a["id"], "kind": "household", "start_date": ON})
    assert clash.status_code == 422 and "already links" in str(clash.get_json())


def test_the_household_view_sums_members_giving_with_soft_credits(api):
    ann, ben, cal = person(api, "Ann Home"), person(api, "Ben Home"), person(api, "Cal Kid")
    outsider = person(api, "Otto Side")
    _relate(api, ann["id"], ben["id"])
    _relate(api, ben["id"], cal["id"], kind="household")
    _relate(api, ann["id"], outsider["id"], kind="family")  # family is not the household
    gift(api, ann["id"], "100.00", "2026-01-05")
    gift(api, ann["id"], "50.00", "2026-02-05")
    gift(api, ben["id"], "30.00", "2026-02-07")
    gift(api, outsider["id"], "999.00", "2026-02-07")
    # The outsider's gift, 25% attributed to Cal: a soft credit from outside.
    gift(api, outsider["id"], "200.00", "2026-02-08", attributions=[
        {"donor_id": outsider["id"], "fraction": "0.75"},
        {"donor_id": cal["id"], "fraction": "0.25"}])
    for member in (ann, ben, cal):
        found = ok(api.get(f"/households/{member['id']}"), 200)
        assert found["id"] == ann["id"]
    assert [m["donor_id"] for m in found["members"]] == [ann["id"], ben["id"], cal["id"]]
    assert (found["combined_giving"], found["attributed_from_outside"], found["total"],
            found["gift_count"]) == ("180.00", "50.00", "230.00", 3)
    by_id = {m["donor_id"]: m for m in found["members"]}
    assert (by_id[ann["id"]]["given"], by_id[ann["id"]]["soft_credit"]) == ("150.00", "30.00")
    assert (by_id[ben["id"]]["given"], by_id[ben["id"]]["soft_credit"]) == ("30.00", "150.00")
    assert (by_id[cal["id"]]["given"], by_id[cal["id"]]["soft_credit"]) == ("0.00", "230.00")
    assert len(found["relationships"]) == 2
    listed = ok(api.get(f"/donors/{ann['id']}/relationships"), 200)["relationships"]
    assert {r["other"]["name"] for r in listed} == {"Ben Home", "Otto Side"}
    alone = ok(api.get(f"/households/{outsider['id']}"), 200)
    assert [m["donor_id"] for m in alone["members"]] == [outsider["id"]]


def test_a_viewer_reads_but_cannot_record(api_as):
    admin, viewer = api_as("admin"), api_as("viewer")
    a, b = person(admin, "Ann Plain"), person(admin, "Ben Plain")
    assert viewer.post(f"/donors/{a['id']}/relationships",
                       {"related_donor_id": b["id"], "kind": "household",
                        "start_date": ON}).status_code == 403
    assert ok(viewer.get(f"/donors/{a['id']}/relationships"), 200) == {"relationships": []}


def test_a_later_end_applies_at_once_and_rescreens_the_days_it_adds(api):
    _lab, senior, spouse = _family(api)
    rel = _relate(api, spouse["id"], senior["id"], end_date="2026-01-31")
    made = gift(api, spouse["id"], "30.00", ON)
    assert made["status"] == "accepted"  # after the relationship ended
    longer = ok(api.post(f"/relationships/{rel['id']}/end", {"end_date": "2026-12-31"}), 200)
    assert longer["end_date"] == "2026-12-31" and "change_id" not in longer
    assert longer["rescreened_gift_ids"] == [made["id"]]
    assert ok(api.get(f"/gifts/{made['id']}"), 200)["status"] == "held"


def test_a_merge_moves_relationships_to_the_survivor_and_rescreens(api_as, db):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    _lab, senior, spouse = _family(admin)
    second = person(admin, "Sam Spouse (old record)")
    other = person(admin, "Ola Other")
    _relate(admin, second["id"], senior["id"])
    _relate(admin, second["id"], spouse["id"], kind="family")  # between the two records
    _relate(admin, second["id"], other["id"], kind="colleague")
    made = gift(admin, spouse["id"], "45.00", ON)
    assert made["status"] == "accepted"
    merged = ok(reviewer.post(f"/donors/{spouse['id']}/merge", {"duplicate_id": second["id"]}),
                200)
    assert made["id"] in merged["rescreened_gift_ids"]
    assert ok(admin.get(f"/gifts/{made['id']}"), 200)["status"] == "held"
    listed = ok(admin.get(f"/donors/{spouse['id']}/relationships"), 200)["relationships"]
    assert sorted((r["other"]["name"], r["kind"]) for r in listed) == [
        ("Carla Chief", "spouse_partner"), ("Ola Other", "colleague")]
    assert ok(admin.get(f"/donors/{second['id']}/relationships"), 200) == {"relationships": []}
    assert ok(admin.get("/audit/verify"), 200)["ok"] is True


def test_a_merge_never_drops_a_current_relationship_for_an_ended_one(api_as):
    """The survivor's spouse relationship with the senior decision-maker ended long ago; the
    duplicate's is current. The merge keeps both: dropping the current one as a "same"
    relationship would end it without a second person, and the spouse's gifts would pass."""
    admin, reviewer = api_as("admin"), api_as("reviewer")
    _lab, senior, spouse = _family(admin)
    duplicate = person(admin, "Sam Spouse (2)")
    _relate(admin, spouse["id"], senior["id"], start="2010-01-01", end_date="2011-01-01")
    _relate(admin, duplicate["id"], senior["id"], start="2020-01-01")
    assert gift(admin, duplicate["id"], "10.00", ON)["status"] == "held"
    ok(reviewer.post(f"/donors/{spouse['id']}/merge", {"duplicate_id": duplicate["id"]}), 200)
    assert gift(admin, spouse["id"], "10.00", ON)["status"] == "held"
    listed = ok(admin.get(f"/donors/{spouse['id']}/relationships"), 200)["relationships"]
    assert sorted((r["start_date"], r["end_date"]) for r in listed) == [
        ("2010-01-01", "2011-01-01"), ("2020-01-01", None)]
    assert ok(admin.get("/audit/verify"), 200)["ok"] is True


def test_ending_or_deleting_a_relationship_rescreens_what_it_held_and_keeps_it_held(api_as,
                                                                                    db):
    """Shortening or deleting a relationship takes a reason for a hold away: each gift it
    held in the days released gets a new decision showing the policy's answer without it,
    and stays held for a reviewer (never released as a side effect). Gifts dated while the
    relationship still holds are not touched."""
    admin, reviewer, second = api_as("admin"), api_as("reviewer"), api_as("reviewer", "r2")
    _lab, senior, spouse = _family(admin)
    rel = _relate(admin, spouse["id"], senior["id"])
    kept = gift(admin, spouse["id"], "30.00", "2025-06-01")
    released = gift(admin, spouse["id"], "20.00", ON)
    assert kept["status"] == released["status"] == "held"

    waiting = reviewer.post(f"/relationships/{rel['id']}/end", {"end_date": "2025-12-31"})
    assert waiting.status_code == 202, waiting.get_json()
    approved = ok(second.post(f"/changes/{waiting.get_json()['change_id']}/approve"), 200)
    assert approved["rescreened_gift_ids"] == [released["id"]]
    after = ok(admin.get(f"/gifts/{released['id']}"), 200)
    assert after["status"] == "held"
    rescreen = after["decisions"][-1]
    assert rescreen["kind"] == "rescreen" and rescreen["outcome"] == "hold"
    assert not [r for r in rescreen["reasons"] if r["fired"]]  # the policy alone would accept
    assert "Relationship ended on 2025-12-31" in rescreen["note"]
    assert len(ok(admin.get(f"/gifts/{kept['id']}"), 200)["decisions"]) == 1

    response = reviewer.delete(f"/relationships/{rel['id']}")
    assert response.status_code == 202, response.get_json()
    approved = ok(second.post(f"/changes/{response.get_json()['change_id']}/approve"), 200)
    assert approved["rescreened_gift_ids"] == [kept["id"]]
    rescreen = ok(admin.get(f"/gifts/{kept['id']}"), 200)["decisions"][-1]
    assert rescreen["kind"] == "rescreen" and not [r for r in rescreen["reasons"] if r["fired"]]
    assert "Relationship deleted" in rescreen["note"]
    assert ok(admin.get("/audit/verify"), 200)["ok"] is True
