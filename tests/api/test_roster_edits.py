"""Editing and ending roster entries (PUT/DELETE /api/v1/rosters/{id}): what tightens applies
at once; ending an entry at a covered lab early, deleting it, or another weakening edit
waits for a second person (202 pending_approval), as an affiliation's does."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry, PendingChange, RosterEntry
from tests.builders import gift, ok, organization, person

ON = "2026-03-02"
ROSTER = ("name,title,organisation,start,end,source\n"
          "Avery Stone,Chief Scientist,Halcyon Labs,2024-01-01,,halcyon leadership page\n")


def _import(api) -> dict:
    response = api.client.post("/api/v1/rosters", data=ROSTER.encode(),
                               headers={**api.headers, "Content-Type": "text/csv"})
    [entry] = ok(response)["entries"]
    return entry


def _body(entry: dict, **changes) -> dict:
    keys = ("name", "title", "organization_id", "start_date", "end_date",
            "senior_decision_maker", "source")
    return {**{k: entry[k] for k in keys}, **changes}


def _stored(db, entry_id: int) -> RosterEntry | None:
    db.rollback()
    found = db.get(RosterEntry, entry_id)
    db.rollback()
    return found


def _actions(db, entry_id: int) -> list[str]:
    db.rollback()
    return list(db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "roster_entry", AuditEntry.entity_id == entry_id)
        .order_by(AuditEntry.id)).scalars())


def test_extending_or_flagging_senior_applies_at_once_and_rescreens(api_as, db):
    admin, reviewer = api_as("admin"), api_as("reviewer")
    organization(admin, "Halcyon Labs", covered_lab=True)
    donor = person(admin, "Avery Stone")
    entry = _import(reviewer)
    # An earlier start reaches a gift from before the entry's first day: held at once.
    early = gift(admin, donor["id"], "100.00", "2023-06-01")
    assert early["status"] == "accepted"
    body = ok(reviewer.put(f"/rosters/{entry['id']}",
                           _body(entry, start_date="2023-01-01", senior_decision_maker=True,
                                 source="annual report 2023")), 200)
    assert body["start_date"] == "2023-01-01" and body["senior_decision_maker"] is True
    assert early["id"] in body["rescreened_gift_ids"] and "change_id" not in body
    stored = _stored(db, entry["id"])
    assert (stored.start_date.isoformat(), stored.senior_decision_maker, stored.source) == (
        "2023-01-01", True, "annual report 2023")
    assert "roster.changed" in _actions(db, entry["id"])


def test_ending_an_entry_early_waits_for_a_second_person(api_as, db):
    admin, reviewer, second = api_as("admin"), api_as("reviewer"), api_as("reviewer", "r2")
    organization(admin, "Halcyon Labs", covered_lab=True)
    donor = person(admin, "Avery Stone")
    entry = _import(reviewer)
    response = reviewer.put(f"/rosters/{entry['id']}",
                            _body(entry, end_date="2024-06-30", source="left, press 2024"))
    assert response.status_code == 202, response.get_json()
    waiting = response.get_json()
    assert waiting["status"] == "pending_approval"
    assert waiting["weakens"] == ["end date set on an open affiliation"]
    # The source (neutral) applied; the end did not: a gift now is still held.
    stored = _stored(db, entry["id"])
    assert (stored.end_date, stored.source) == (None, "left, press 2024")
    assert gift(admin, donor["id"], "50.00", ON)["status"] == "held"
    # The proposer cannot approve their own change; a second reviewer can.
    assert reviewer.post(f"/changes/{waiting['change_id']}/approve").status_code == 409
    ok(second.post(f"/changes/{waiting['change_id']}/approve", {"note": "checked"}), 200)
    assert _stored(db, entry["id"]).end_date.isoformat() == "2024-06-30"
    db.rollback()
    change = db.get(PendingChange, waiting["change_id"])
    assert (change.kind, change.state) == ("roster_entry", "approved")
    db.rollback()
    # Ended mid-2024 with a 365-day cooling-off: a gift in March 2026 is no longer held.
    assert gift(admin, donor["id"], "50.00", ON)["status"] == "accepted"
    assert ok(admin.get("/audit/verify"), 200)["ok"] is True


def test_deleting_an_entry_at_a_covered_lab_waits_and_elsewhere_applies(api_as, db):
    admin, reviewer, second = api_as("admin"), api_as("reviewer"), api_as("reviewer", "r2")
    organization(admin, "Halcyon Labs", covered_lab=True)
    entry = _import(reviewer)
    response = reviewer.delete(f"/rosters/{entry['id']}")
    assert response.status_code == 202, response.get_json()
    change_id = response.get_json()["change_id"]
    assert _stored(db, entry["id"]) is not None
    ok(second.post(f"/changes/{change_id}/approve"), 200)
    assert _stored(db, entry["id"]) is None
    assert _actions(db, entry["id"])[-1] == "roster.removed"

    plain = organization(admin, "Plain Corp")
    other = _import_at(reviewer, "Plain Corp")
    assert other["organization_id"] == plain["id"]
    removed = ok(reviewer.delete(f"/rosters/{other['id']}"), 200)
    assert removed == {"id": other["id"], "removed": True, "rescreened_gift_ids": []}
    assert _stored(db, other["id"]) is None
    # Every change and removal is sealed in the chain as made.
    assert ok(admin.get("/audit/verify"), 200)["ok"] is True


def _import_at(api, org_name: str) -> dict:
    text = f"name,organisation,start,source\nSam Lee,{org_name},2024-01-01,filing\n"
    response = api.client.post("/api/v1/rosters", data=text.encode(),
                               headers={**api.headers, "Content-Type": "text/csv"})
    [entry] = ok(response)["entries"]
    return entry


def test_a_fundraiser_cannot_edit_rosters_and_a_bad_edit_stores_nothing(api_as, db):
    admin, reviewer, fundraiser = api_as("admin"), api_as("reviewer"), api_as("fundraiser")
    organization(admin, "Halcyon Labs", covered_lab=True)
    entry = _import(reviewer)
    assert fundraiser.put(f"/rosters/{entry['id']}", _body(entry, source="x")).status_code == 403
    assert fundraiser.delete(f"/rosters/{entry['id']}").status_code == 403
    bad = reviewer.put(f"/rosters/{entry['id']}", _body(entry, end_date="2020-01-01"))
    assert bad.status_code == 422
    assert reviewer.put("/rosters/999999", _body(entry)).status_code == 404
    assert _stored(db, entry["id"]).end_date is None
    assert _actions(db, entry["id"]) == []
