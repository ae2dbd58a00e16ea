"""One recorded gift's SQL statements, pinned; and the facts it reads before the lock.

A gift's request is the hottest path the system has (a giving day), and what runs while
it holds the ledger lock sets how many gifts a second the whole system takes. A change
that adds a query to it, and above all one under the lock, should be seen and argued for,
not slip in. The counter listens on the app's engine (SQLAlchemy's before_cursor_execute
event) for exactly one POST /gifts, made after a first one (caches warm, as on every
request but a process's first).

Before the lock (app.ledger.gifts.prepare_gift) the request reads its token and the facts
about people; under the lock, only what depends on other gifts. If anything but a gift was
audited in between, the facts are read again under the lock: the second test makes that
happen and checks that the gift is screened on the new facts.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import event

from app.ledger.audit import Actor
from app.ledger.gifts import prepare_gift, record_gift
from models.schemas import GiftCreate
from tests.api.helpers import gift_body
from tests.builders import World, affiliate, ok, organization, person


@contextmanager
def statements_of(app):
    engine = app.extensions["armslength"].engine
    seen: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _what(statement: str) -> str:
    """A statement's kind and table (subqueries left out), to name it in a failure."""
    words = statement.split()
    if words[0] == "INSERT":
        return f"INSERT {words[2]}"
    if "FOR UPDATE" in statement or statement == "BEGIN IMMEDIATE":
        return "LOCK"
    if words[0] == "BEGIN":
        return "BEGIN"
    outer = statement
    while (inner := re.sub(r"\([^()]*\)", "", outer)) != outer:
        outer = inner
    words = outer.split()
    return f"SELECT {words[words.index('FROM') + 1]}" if "FROM" in words else "SELECT no table"


#: Under the ledger lock, in order: the lock, the audit chain's head
#: with the check that the facts read before the lock still hold, the funding windows, the
#: four rows of the gift and the day's totals.
UNDER_THE_LOCK = [
    "LOCK", "SELECT no table", "SELECT funding_day",
    "INSERT gift", "INSERT funding_day", "INSERT attribution", "INSERT decision",
    "INSERT audit_entry",
]
#: Before it: the token; the donor with its affiliations, the newest audit entry's id, the
#: policy version in force and whether the donor was merged, in one statement; identity
#: matches among donors (read from the affiliations of namesakes) and on the rosters, in
#: one statement (app.ledger.identity).
BEFORE_THE_LOCK = [
    "SELECT api_token", "SELECT donor", "SELECT affiliation",
]


def test_a_plain_gift_costs_a_pinned_number_of_statements(app, api):
    w = World(api)
    ok(api.post("/gifts", gift_body(w.donor["id"], "10.00", "2026-03-01")))
    with statements_of(app) as seen:
        made = ok(api.post("/gifts", gift_body(w.donor["id"], "25.00", "2026-03-02")))
    assert made["status"] == "accepted"
    kinds = [_what(s) for s in seen if _what(s) != "BEGIN"]  # SQLite's deferred BEGIN
    lock = kinds.index("LOCK")
    assert kinds[lock:] == UNDER_THE_LOCK, kinds
    assert kinds[:lock] == BEFORE_THE_LOCK, kinds


def test_a_gift_request_commits_once_on_postgresql_twice_on_sqlite(app, api):
    """PostgreSQL takes the ledger lock inside the read transaction that prepared the facts
    (ledger_batch's after_reads): one transaction, one COMMIT. SQLite commits the reads and
    begins BEGIN IMMEDIATE, which a deferred read transaction cannot become."""
    w = World(api)
    ok(api.post("/gifts", gift_body(w.donor["id"], "10.00", "2026-03-01")))
    engine = app.extensions["armslength"].engine
    commits: list[object] = []

    def on_commit(conn):
        commits.append(conn)

    event.listen(engine, "commit", on_commit)
    try:
        with statements_of(app) as seen:
            made = ok(api.post("/gifts", gift_body(w.donor["id"], "25.00", "2026-03-02")))
    finally:
        event.remove(engine, "commit", on_commit)
    assert made["status"] == "accepted"
    assert len(commits) == (1 if engine.dialect.name == "postgresql" else 2), seen


def test_a_back_dated_gift_reads_every_later_window_in_the_one_funding_statement(app, api):
    """A gift dated before other accepted gifts is checked in the window ending on each of
    their dates: the day totals those windows need come with the first funding read (the
    refunds made since are read apart only when there are any)."""
    w = World(api)
    ok(api.post("/gifts", gift_body(w.donor["id"], "10.00", "2026-03-01")))
    ok(api.post("/gifts", gift_body(w.donor["id"], "10.00", "2026-03-09")))
    with statements_of(app) as seen:
        made = ok(api.post("/gifts", gift_body(w.employee["id"], "2.00", "2026-03-02")))
    assert made["status"] == "accepted"
    assert made["decision"]["figures"]["windows_checked"] == 2  # its date and 2026-03-09
    kinds = [_what(s) for s in seen if _what(s) != "BEGIN"]
    assert kinds[kinds.index("LOCK"):] == UNDER_THE_LOCK, kinds


def test_a_refused_lab_gift_costs_the_same_less_the_funding_totals(app, api):
    w = World(api)
    ok(api.post("/gifts", gift_body(w.employee["id"], "10.00", "2026-03-01")))
    with statements_of(app) as seen:
        made = ok(api.post("/gifts", gift_body(w.employee["id"], "25.00", "2026-03-02")))
    assert (made["status"], made["lab_employee_amount"]) == ("rejected", "25.00")
    kinds = [_what(s) for s in seen if _what(s) != "BEGIN"]
    refused = [k for k in UNDER_THE_LOCK if k != "INSERT funding_day"]  # counts for nothing
    assert kinds[kinds.index("LOCK"):] == refused, kinds
    assert kinds[:kinds.index("LOCK")] == BEFORE_THE_LOCK, kinds


def test_facts_changed_after_the_prepared_read_are_read_again_under_the_lock(app, api, db,
                                                                             policy):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    donor = person(api, "Ada Example")
    data = GiftCreate.model_validate(gift_body(donor["id"], "100.00", "2026-03-01"))
    actor = Actor("test", user_id=api.user_id, role="admin")
    prepared = prepare_gift(db, data, actor, "USD", app.extensions["armslength"].policies.current)
    assert prepared is not None and prepared.gift.lab_minor == 0
    db.rollback()
    # Between the read and the lock, another request makes the donor a lab employee.
    affiliate(api, donor["id"], lab["id"])
    recorded = record_gift(db, data, actor, policy, "USD", prepared=prepared)
    assert recorded.gift.lab_minor == 10000  # screened on the affiliation, not the old read
    assert "lab_employee_cap" in {r["rule"] for r in recorded.decision.reasons}


def test_facts_still_current_are_used_and_gifts_in_between_do_not_invalidate_them(
        app, api, db, policy):
    w = World(api)
    data = GiftCreate.model_validate(gift_body(w.employee["id"], "100.00", "2026-03-01"))
    actor = Actor("test", user_id=api.user_id, role="admin")
    prepared = prepare_gift(db, data, actor, "USD", app.extensions["armslength"].policies.current)
    db.rollback()
    ok(api.post("/gifts", gift_body(w.donor["id"], "40.00", "2026-03-01")))  # only a gift
    with statements_of(app) as seen:
        recorded = record_gift(db, data, actor, policy, "USD", prepared=prepared)
    assert recorded.gift.lab_minor == 10000
    assert not any(s.startswith("SELECT donor.") for s in seen), seen  # not read again


def test_a_designated_gift_reads_its_designation_before_the_lock_and_adds_one_insert(app, api):
    """Campaign, appeal and fund are read with the facts about people (their writes are
    audited, so a change sends the gift down the full path); under the lock the gift adds
    only its designation row."""
    w = World(api)
    campaign = ok(api.post("/campaigns", {"code": "spring", "name": "Spring",
                                          "starts_on": "2026-01-01"}))
    fund = ok(api.post("/funds", {"code": "ops", "name": "Operations"}))
    designated = {"campaign_id": campaign["id"], "fund_id": fund["id"]}
    ok(api.post("/gifts", gift_body(w.donor["id"], "10.00", "2026-03-01", **designated)))
    with statements_of(app) as seen:
        made = ok(api.post("/gifts", gift_body(w.donor["id"], "25.00", "2026-03-02",
                                               **designated)))
    assert (made["campaign_id"], made["fund_id"]) == (campaign["id"], fund["id"])
    kinds = [_what(s) for s in seen if _what(s) != "BEGIN"]
    lock = kinds.index("LOCK")
    under = UNDER_THE_LOCK[:]
    under.insert(under.index("INSERT audit_entry"), "INSERT gift_designation")
    assert kinds[lock:] == under, kinds
    before = BEFORE_THE_LOCK[:]
    before.insert(before.index("SELECT donor") + 1, "SELECT campaign")  # one UNION
    assert kinds[:lock] == before, kinds


def test_a_donor_with_relationships_costs_one_read_of_them_before_the_lock(app, api):
    w = World(api)
    partner = person(api, "Pat Partner")
    ok(api.post(f"/donors/{w.donor['id']}/relationships",
                {"related_donor_id": partner["id"], "kind": "household",
                 "start_date": "2020-01-01"}))
    ok(api.post("/gifts", gift_body(w.donor["id"], "10.00", "2026-03-01")))
    with statements_of(app) as seen:
        ok(api.post("/gifts", gift_body(w.donor["id"], "25.00", "2026-03-02")))
    kinds = [_what(s) for s in seen if _what(s) != "BEGIN"]
    lock = kinds.index("LOCK")
    assert kinds[lock:] == UNDER_THE_LOCK, kinds
    # The first read said the donor has relationships: they are read (once, from both ends
    # of each: a UNION in a subquery, which _what names "SELECT AS"), still before the lock.
    assert kinds[:lock] == [*BEFORE_THE_LOCK, "SELECT AS"], kinds


def test_a_relationship_recorded_after_the_prepared_read_is_seen_under_the_lock(app, api, db,
                                                                                policy):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    senior, spouse = person(api, "Carla Chief"), person(api, "Sam Spouse")
    affiliate(api, senior["id"], lab["id"], senior=True, title="CEO")
    data = GiftCreate.model_validate(gift_body(spouse["id"], "100.00", "2026-03-01"))
    actor = Actor("test", user_id=api.user_id, role="admin")
    prepared = prepare_gift(db, data, actor, "USD", app.extensions["armslength"].policies.current)
    assert prepared is not None and prepared.facts.payer.relatives == ()
    db.rollback()
    ok(api.post(f"/donors/{spouse['id']}/relationships",
                {"related_donor_id": senior["id"], "kind": "spouse_partner",
                 "start_date": "2020-01-01"}))
    recorded = record_gift(db, data, actor, policy, "USD", prepared=prepared)
    assert recorded.gift.status == "held"
    assert "household_of_senior_decision_maker" in {
        r["rule"] for r in recorded.decision.reasons if r["fired"]}
