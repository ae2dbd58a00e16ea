"""Roster entries are sealed as donors are (issue 11): a plain seal of what the policy reads
(organisation, dates, senior flag) and a keyed seal, "roster_entry.identity", of who the
person is (name, title, source, matching keys), an HMAC under the seal key. An insider who
renames a lab executive on the roster, so that a donor who is probably them no longer
matches, is named by verification; the chain holds no name, nor a plain hash of one. The
app's own writes (import, edit, removal) verify clean. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from app.ledger import row_hashes
from models import AuditEntry, RosterEntry
from tests.builders import gift, ok, organization, person
from tests.tampering import tamper_apart

ON = "2026-03-02"
ROSTER = ("name,title,organisation,start,end,source\n"
          "Avery Stone,Chief Scientist,Halcyon Labs,2024-01-01,,halcyon leadership page\n")


def _findings(api) -> set[tuple[str, int, str]]:
    report = ok(api.get("/audit/verify"), 200)
    return {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]}


@pytest.fixture
def entry(api_as) -> dict:
    reviewer = api_as("reviewer")
    organization(api_as("admin"), "Halcyon Labs", covered_lab=True)
    [made] = ok(reviewer.client.post("/api/v1/rosters", data=ROSTER.encode(), headers={
        **reviewer.headers, "Content-Type": "text/csv"}))["entries"]
    return made


@pytest.mark.parametrize("edit", [
    "UPDATE roster_entry SET name = 'Avery Stonne' WHERE id = {id}",
    "UPDATE roster_entry SET name_key_a = 'zzzz', name_key_b = 'zzzz' WHERE id = {id}",
    "UPDATE roster_entry SET title = 'Engineer' WHERE id = {id}",
    "UPDATE roster_entry SET source = 'nowhere' WHERE id = {id}",
])
def test_who_is_on_the_roster_edited_is_named_by_the_keyed_seal(api, database_url, entry, edit):
    assert _findings(api) == set()
    tamper_apart(database_url, edit.format(id=entry["id"]))
    assert _findings(api) == {("roster_entry.identity", entry["id"], "content differs")}


def test_what_the_policy_reads_edited_is_named_by_the_plain_seal(api, database_url, entry):
    tamper_apart(database_url, "UPDATE roster_entry SET end_date = '2024-01-02' "
                               f"WHERE id = {entry['id']}")
    assert _findings(api) == {("roster_entry", entry["id"], "content differs")}


def test_the_roster_sidestep_is_caught(api, database_url, entry):
    """The sidestep itself: the executive's roster entry is renamed, a donor who is probably
    them is no longer held, and verification names the entry."""
    donor = person(api, "Avery Stone")
    assert gift(api, donor["id"], "100.00", ON)["status"] == "held"  # possible_match
    tamper_apart(database_url, "UPDATE roster_entry SET name = 'Pat Q', name_key_a = 'q|p', "
                               f"name_key_b = 'q|p' WHERE id = {entry['id']}")
    assert gift(api, donor["id"], "100.00", ON)["status"] == "accepted"
    assert _findings(api) == {("roster_entry.identity", entry["id"], "content differs")}


def test_the_chain_holds_no_name_of_the_roster(api, db, entry):
    entries = db.execute(select(AuditEntry.row_hashes, AuditEntry.data)).all()
    values = dict(db.get(RosterEntry, entry["id"]).__dict__)
    db.rollback()
    assert "Avery" not in json.dumps([list(e) for e in entries])
    seals = {(t, i): h for rows, _ in entries for t, i, h in (rows or [])}
    keyed = row_hashes.SEALED["roster_entry.identity"]
    canonical = row_hashes.canonical(keyed, values)
    assert seals[("roster_entry.identity", entry["id"])] == row_hashes.row_hash(keyed, values)
    assert seals[("roster_entry.identity", entry["id"])] != hashlib.sha256(
        canonical.encode()).hexdigest()
    # The plain seal covers no personal column.
    assert not {"name", "title", "source", "name_key_a", "name_key_b"} & set(
        row_hashes.SEALED["roster_entry"].columns)


def test_the_apps_roster_writes_verify(api, api_as, db, entry):
    reviewer = api_as("reviewer")
    body = {"name": "Avery J. Stone", "title": "Chief Scientist", "organization_id":
            entry["organization_id"], "start_date": "2023-01-01", "end_date": None,
            "senior_decision_maker": True, "source": "filing"}
    # The dates and the senior flag tighten and apply at once; the new name waits for a
    # second person.
    change = ok(reviewer.put(f"/rosters/{entry['id']}", body), 202)["change_id"]
    assert _findings(api) == set()
    ok(api_as("admin").post(f"/changes/{change}/approve"), 200)
    assert db.get(RosterEntry, entry["id"]).name == "Avery J. Stone"
    db.rollback()
    assert _findings(api) == set()
    plain = organization(api_as("admin"), "Plain Corp")
    [other] = ok(reviewer.client.post("/api/v1/rosters", data=(
        b"name,title,organisation,start,end,source\nRiley Park,Analyst,Plain Corp,2024-01-01,,"
        b"a list\n"), headers={**reviewer.headers, "Content-Type": "text/csv"}))["entries"]
    assert other["organization_id"] == plain["id"]
    response = reviewer.delete(f"/rosters/{other['id']}")  # not covered: at once
    assert response.status_code in (200, 204), response.get_json()
    assert db.get(RosterEntry, other["id"]) is None
    db.rollback()
    assert _findings(api) == set()
