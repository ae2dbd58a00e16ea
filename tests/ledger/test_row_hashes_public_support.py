"""The public-support facts are sealed in the audit chain (issue 16 review): donors treated
as one contributor (support_link), donors not limited to 2% (support_class), gifts left out
as unusual grants (unusual_grant) and the record of a removed one (support_fact_removal).
Each is written through the API, then edited, deleted or slipped in directly through a
connection of its own (tests.tampering.tamper_apart): verification names the row. The
reasons people type stay on the rows, never in the audit entries. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from models import AuditEntry, SupportFactRemoval
from tests.builders import gift, ok, person
from tests.tampering import tamper_apart

DAY = "2026-03-02"
#: Words people typed: none of them may reach an audit entry.
WORDS = ("married in 2019 (Sam's note)", "IRS determination letter 2020",
         "bequest from a stranger", "they divorced", "no longer a charity",
         "not unusual after all", "changed: a governmental unit")


@dataclass
class Facts:
    link_id: int
    other_link_id: int
    class_donor_id: int
    grant_gift_id: int
    removal_id: int
    ana_id: int
    sam_id: int


def _verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def _findings(report: dict) -> set[tuple[str, int, str]]:
    return {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]}


@pytest.fixture
def facts(api, api_as, db) -> Facts:
    reviewer = api_as("reviewer")
    ana, sam, kim = person(api, "Ana Aster"), person(api, "Sam Aster"), person(api, "Kim")
    council = person(api, "City Council")
    link = ok(reviewer.post("/public-support/links", {
        "donor_id": ana["id"], "other_donor_id": sam["id"], "relation": "spouse",
        "reason": WORDS[0]}))
    other = ok(reviewer.post("/public-support/links", {
        "donor_id": kim["id"], "other_donor_id": sam["id"], "relation": "family",
        "reason": "siblings"}))
    ok(reviewer.post("/public-support/classes", {
        "donor_id": council["id"], "support_class": "public_charity", "reason": WORDS[1]}))
    big = gift(api, kim["id"], "90000.00", DAY)
    ok(reviewer.post("/public-support/unusual-grants", {"gift_id": big["id"],
                                                        "reason": WORDS[2]}))
    # A removed fact and a replaced one: their words go to support_fact_removal rows.
    ok(reviewer.delete(f"/public-support/links/{other['id']}", json={"reason": WORDS[3]}), 200)
    ok(reviewer.post("/public-support/classes", {
        "donor_id": council["id"], "support_class": "governmental_unit", "reason": WORDS[6]}))
    try:
        removal_id = db.execute(select(SupportFactRemoval.id).where(
            SupportFactRemoval.fact == "support_link")).scalar_one()
    finally:
        db.rollback()
    return Facts(link_id=link["id"], other_link_id=other["id"], class_donor_id=council["id"],
                 grant_gift_id=big["id"], removal_id=removal_id, ana_id=ana["id"],
                 sam_id=sam["id"])


def test_the_facts_written_through_the_app_verify_and_no_words_reach_the_audit(api, db, facts):
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]
    try:
        entries = db.execute(select(AuditEntry.action, AuditEntry.data, AuditEntry.row_hashes)
                             .where(AuditEntry.action.like("public_support.%"))
                             .order_by(AuditEntry.id)).all()
    finally:
        db.rollback()
    assert [a for a, _, _ in entries] == [
        "public_support.linked", "public_support.linked", "public_support.class_set",
        "public_support.unusual_grant", "public_support.unlinked", "public_support.class_set"]
    text = json.dumps([data for _, data, _ in entries])
    for words in WORDS + ("siblings",):
        assert words not in text
    # Every entry seals the rows it wrote or removed.
    sealed = [{(t, i) for t, i, _ in seals} for _, _, seals in entries]
    assert ("support_link", facts.link_id) in sealed[0]
    assert ("support_class", facts.class_donor_id) in sealed[2]
    assert ("unusual_grant", facts.grant_gift_id) in sealed[3]
    assert sealed[4] == {("support_link", facts.other_link_id),
                         ("support_fact_removal", facts.removal_id)}
    assert ("support_class", facts.class_donor_id) in sealed[5]


def test_the_removed_words_are_kept_on_their_rows(db, facts):
    try:
        rows = db.execute(select(SupportFactRemoval).order_by(SupportFactRemoval.id)
                          ).scalars().all()
        assert [(r.fact, r.row_key, r.was, r.was_because, r.reason) for r in rows] == [
            ("support_link", facts.other_link_id, "family", "siblings", WORDS[3]),
            ("support_class", facts.class_donor_id, "public_charity", WORDS[1], WORDS[6])]
    finally:
        db.rollback()


@pytest.mark.parametrize(("table", "edit", "key"), [
    # A spouse link turned into something else, or pointed at another donor: the 2% limit
    # then groups other people.
    ("support_link", "UPDATE support_link SET relation = 'family' WHERE id = {link}", "link"),
    ("support_link", "UPDATE support_link SET reason = 'edited' WHERE id = {link}", "link"),
    # A class changed in place: which donors are unlimited.
    ("support_class", "UPDATE support_class SET support_class = 'public_charity' "
                      "WHERE donor_id = {cls}", "cls"),
    ("unusual_grant", "UPDATE unusual_grant SET marked_by_id = NULL WHERE gift_id = {grant}",
     "grant"),
    ("support_fact_removal", "UPDATE support_fact_removal SET reason = 'x' WHERE id = {removal}",
     "removal"),
])
def test_an_edited_fact_is_named(api, database_url, facts, table, edit, key):
    ids = {"link": facts.link_id, "cls": facts.class_donor_id, "grant": facts.grant_gift_id,
           "removal": facts.removal_id}
    tamper_apart(database_url, edit.format(**ids))
    report = _verify(api)
    assert report["ok"] is False and report["chain_ok"] is True
    assert _findings(report) == {(table, ids[key], "content differs")}


def test_a_deleted_fact_is_named(api, database_url, facts):
    """An unusual grant deleted behind the app's back would put the grant back into the
    computation; a link deleted would split a couple into two contributors."""
    tamper_apart(database_url,
                 f"DELETE FROM unusual_grant WHERE gift_id = {facts.grant_gift_id}",
                 f"DELETE FROM support_link WHERE id = {facts.link_id}")
    assert _findings(_verify(api)) == {("unusual_grant", facts.grant_gift_id, "row gone"),
                                       ("support_link", facts.link_id, "row gone")}


def test_a_fact_slipped_in_is_named(api, database_url, facts):
    """A gift marked unusual, or a donor made unlimited, with no audit entry."""
    tamper_apart(
        database_url,
        f"INSERT INTO support_class (donor_id, support_class, reason, set_at) VALUES "
        f"({facts.ana_id}, 'governmental_unit', 'x', '2026-03-02 00:00:00.000000')")
    assert _findings(_verify(api)) == {("support_class", facts.ana_id, "no audit entry")}


def test_a_removed_fact_brought_back_is_named(api, database_url, facts):
    """The app removed the link (its latest seal says gone): a row with its id again reads
    as changed from that seal."""
    tamper_apart(
        database_url,
        f"INSERT INTO support_link (id, donor_id, other_donor_id, relation, reason, created_at) "
        f"VALUES ({facts.other_link_id}, {facts.ana_id}, {facts.class_donor_id}, 'family', "
        f"'x', '2026-03-02 00:00:00.000000')")
    assert _findings(_verify(api)) == {("support_link", facts.other_link_id, "content differs")}


def test_a_merge_carries_the_facts_and_still_verifies(api, api_as, db, facts):
    """Merging Sam into Ana: their link disappears (one donor now) and is recorded as
    removed; the merge's entry seals what it moved and removed."""
    ok(api_as("reviewer").post(f"/donors/{facts.ana_id}/merge",
                               {"duplicate_id": facts.sam_id}), 200)
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]
    try:
        removal = db.execute(select(SupportFactRemoval).where(
            SupportFactRemoval.row_key == facts.link_id,
            SupportFactRemoval.fact == "support_link")).scalar_one()
        assert (removal.was, removal.was_because) == ("spouse", WORDS[0])
        assert (removal.donor_id, removal.other_donor_id) == (facts.ana_id, facts.sam_id)
    finally:
        db.rollback()
