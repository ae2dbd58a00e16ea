"""Someone with database access edits the ledger's rows directly; verification names them.

Each edit goes through a connection of its own (tests.tampering.tamper_apart: raw SQL, the
append-only triggers lifted as the schema owner could), never through the app. Then
GET /api/v1/audit/verify, `armslength verify-audit` and the staff check must fail and say
which row: its content differs from the hash its latest audit entry recorded, it has no
entry, or its entry's row is gone. On SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from app.cli import MIGRATIONS
from app.ledger import disclosure, parties
from app.ledger.policy_store import register_file_policy
from models import Attribution, AuditEntry, Decision, Organization, Refund
from models.schemas import OrganizationCreate
from tests.builders import World, affiliate, gift, ok, organization, person
from tests.conftest import TEST_ACTOR
from tests.empty_db import BACKENDS, empty_database
from tests.tampering import tamper_apart, upgrade_watermark

DAY = "2026-03-01"


def _verify(api) -> dict:
    response = api.get("/audit/verify")
    assert response.status_code == 200
    return response.get_json()


def _findings(report: dict) -> set[tuple[str, int, str]]:
    return {(f["table"], f["id"], f["problem"]) for f in report["row_findings"]}


def _ids(db, model, **where) -> list[int]:
    try:
        query = select(model.id).order_by(model.id)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return list(db.execute(query).scalars())
    finally:
        db.rollback()


@pytest.fixture
def rejected(api):
    """A lab's payment for evaluations (rejected) among ordinary gifts."""
    w = World(api)
    gift(api, w.donor["id"], "100.00", DAY)
    made = gift(api, w.lab_donor["id"], "50000.00", DAY, purpose="evaluation_services")
    assert made["status"] == "rejected"
    gift(api, w.employee["id"], "10.00", DAY)
    return made


def test_an_untouched_ledger_verifies(api, rejected):
    report = _verify(api)
    assert (report["ok"], report["chain_ok"], report["rows_ok"]) == (True, True, True)
    assert report["row_findings"] == []
    # 2 organisations, 3 donors, 1 affiliation, 3 gifts with a decision and an attribution
    # each, and the admin's staff account with its API token.
    assert report["rows_checked"] == 2 + 3 + 1 + 3 * 3 + 1 + 1


def test_a_rejected_decision_turned_into_accept_is_named(api, db, database_url, rejected):
    (decision_id,) = _ids(db, Decision, gift_id=rejected["id"])
    tamper_apart(database_url, f"UPDATE decision SET outcome = 'accept' WHERE id = {decision_id}")
    report = _verify(api)
    assert report["ok"] is False and report["chain_ok"] is True  # the chain alone misses it
    assert _findings(report) == {("decision", decision_id, "content differs")}
    assert report["row_problems"] == {"content differs": 1, "no audit entry": 0, "row gone": 0}


def test_a_rejected_gift_marked_accepted_is_named(api, database_url, rejected):
    tamper_apart(database_url, f"UPDATE gift SET status = 'accepted' WHERE id = {rejected['id']}")
    report = _verify(api)
    assert report["ok"] is False
    assert _findings(report) == {("gift", rejected["id"], "content differs")}


def test_both_edits_together_name_both_rows(api, db, database_url, rejected):
    (decision_id,) = _ids(db, Decision, gift_id=rejected["id"])
    tamper_apart(database_url,
                 f"UPDATE decision SET outcome = 'accept' WHERE id = {decision_id}",
                 f"UPDATE gift SET status = 'accepted' WHERE id = {rejected['id']}")
    assert _findings(_verify(api)) == {("gift", rejected["id"], "content differs"),
                                       ("decision", decision_id, "content differs")}


def test_an_accepting_decision_slipped_in_after_the_reject_is_named(api, db, database_url,
                                                                      rejected):
    """Decisions are append-only, so an insider appends one instead of editing: the latest
    decision now says accept. It has no audit entry."""
    tamper_apart(database_url,
                 "INSERT INTO decision (gift_id, outcome, kind, policy_version, reasons, figures, "
                 "created_at) SELECT gift_id, 'accept', 'review', policy_version, reasons, figures, "
                 f"created_at FROM decision WHERE gift_id = {rejected['id']}",
                 f"UPDATE gift SET status = 'accepted' WHERE id = {rejected['id']}")
    forged = _ids(db, Decision, gift_id=rejected["id"])[-1]
    assert _findings(_verify(api)) == {("gift", rejected["id"], "content differs"),
                                       ("decision", forged, "no audit entry")}


def test_a_gift_deleted_with_its_rows_is_named(api, db, database_url, rejected):
    """The whole gift goes: its decision, its attribution, the gift itself. The audit entry
    that recorded it stays (deleting it breaks the chain: test_audit.py), and says what is
    gone."""
    gift_id = rejected["id"]
    (decision_id,) = _ids(db, Decision, gift_id=gift_id)
    (attribution_id,) = _ids(db, Attribution, gift_id=gift_id)
    (entry_id,) = _ids(db, AuditEntry, entity_type="gift", entity_id=gift_id)
    tamper_apart(database_url,
                 f"DELETE FROM decision WHERE gift_id = {gift_id}",
                 f"DELETE FROM attribution WHERE gift_id = {gift_id}",
                 f"DELETE FROM gift WHERE id = {gift_id}")
    report = _verify(api)
    assert report["chain_ok"] is True and report["ok"] is False
    assert _findings(report) == {("gift", gift_id, "row gone"),
                                 ("decision", decision_id, "row gone"),
                                 ("attribution", attribution_id, "row gone")}
    assert {f["entry_id"] for f in report["row_findings"]} == {entry_id}


def test_deleting_the_last_fifty_entries_leaves_rows_with_no_entry(api, db, database_url):
    """A truncated tail is a valid shorter chain (signed checkpoints catch that); but the
    rows its entries recorded are still there, now with no entry, or with an older one that
    no longer matches."""
    w = World(api)
    held = gift(api, w.lab_donor["id"], "5000.00", DAY)  # lab corporate money: held
    assert held["status"] == "held"
    made = [gift(api, w.donor["id"], f"{n}.00", DAY) for n in range(1, 50)]
    ok(api.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "fine"}))
    assert _verify(api)["ok"] is True
    tail = _ids(db, AuditEntry)[-50:]
    tamper_apart(database_url, f"DELETE FROM audit_entry WHERE id >= {tail[0]}")
    report = _verify(api)
    assert report["chain_ok"] is True  # what is left is a valid chain
    found = _findings(report)
    for made_gift in made:  # each of these 49 gifts was recorded by an entry of the tail
        assert ("gift", made_gift["id"], "no audit entry") in found
        (decision_id,) = _ids(db, Decision, gift_id=made_gift["id"])
        assert ("decision", decision_id, "no audit entry") in found
    # The reviewed gift keeps its first entry, which recorded it held: it is accepted now.
    assert ("gift", held["id"], "content differs") in found
    review = _ids(db, Decision, gift_id=held["id"])[-1]
    assert ("decision", review, "no audit entry") in found
    assert report["row_problems"]["no audit entry"] == 49 * 3 + 1


def test_an_edited_refund_is_named(api, api_as, db, database_url):
    w = World(api)
    made = gift(api, w.donor["id"], "100.00", DAY)
    ok(api_as("finance").post(f"/gifts/{made['id']}/refund",
                              {"amount": "10.00", "refunded_on": DAY}))
    (refund_id,) = _ids(db, Refund, gift_id=made["id"])
    assert _verify(api)["ok"] is True
    tamper_apart(database_url, f"UPDATE refund SET amount_minor = 100, reporting_amount_minor = "
                               f"100 WHERE id = {refund_id}",
                 f"UPDATE gift SET refunded_minor = 100 WHERE id = {made['id']}")
    assert _findings(_verify(api)) == {("refund", refund_id, "content differs"),
                                       ("gift", made["id"], "content differs")}


def test_a_cleared_senior_flag_is_named(api, database_url):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    boss = person(api, "Vera Vice-President")
    aff = affiliate(api, boss["id"], lab["id"], senior=True, title="VP")
    assert gift(api, boss["id"], "500.00", DAY)["status"] == "rejected"
    tamper_apart(database_url,
                 f"UPDATE affiliation SET senior_decision_maker = false WHERE id = {aff['id']}")
    assert _findings(_verify(api)) == {("affiliation", aff["id"], "content differs")}


def test_a_flipped_covered_lab_flag_is_named(api, database_url):
    w = World(api)
    tamper_apart(database_url,
                 f"UPDATE organization SET covered_lab = false WHERE id = {w.lab['id']}")
    assert _findings(_verify(api)) == {("organization", w.lab["id"], "content differs")}


def test_a_changed_row_gets_a_new_entry_and_still_verifies(api, api_as, db, policy):
    """Changes made through the app re-seal their rows: an affiliation ended, a covered flag
    flipped (re-screening gifts), a held gift reviewed, an override requested and approved."""
    w = World(api)
    reviewer, second = api_as("reviewer"), api_as("reviewer", "second")
    gift(api, w.employee["id"], "100.00", DAY)
    held = gift(api, w.lab_donor["id"], "5000.00", DAY)
    ok(reviewer.post(f"/gifts/{held['id']}/review", {"outcome": "accept", "reason": "fine by me"}))
    boss = person(api, "Bo Boss")
    aff = affiliate(api, boss["id"], w.lab["id"], senior=True)
    rejected = gift(api, boss["id"], "300.00", DAY)
    request = ok(reviewer.post(f"/gifts/{rejected['id']}/override",
                               {"outcome": "accept", "reason": "board says yes"}))
    ok(second.post(f"/overrides/{request['id']}/approve", {}))
    # Ending an open affiliation weakens the policy's facts: a second person approves it.
    pending = ok(api.put(f"/affiliations/{aff['id']}", {
        "organization_id": w.lab["id"], "kind": "employee", "title": None,
        "senior_decision_maker": True, "start_date": "2020-01-01", "end_date": "2025-01-01"}),
        202)
    ok(second.post(f"/changes/{pending['change_id']}/approve", {}), 200)
    ok(api.delete(f"/affiliations/{affiliate(api, boss['id'], w.other_org['id'])['id']}"), 200)
    parties.update_organization(db, w.other_org["id"], OrganizationCreate(
        name="Plain Corp", covered_lab=True), TEST_ACTOR, policy)
    parties.update_organization(db, w.lab["id"], OrganizationCreate(
        name="Frontier Lab", covered_lab=False), TEST_ACTOR, policy)
    report = _verify(api)
    assert report["ok"] is True, report["row_findings"]


def test_verify_audit_command_names_the_row(app, db, database_url, rejected):
    (decision_id,) = _ids(db, Decision, gift_id=rejected["id"])
    runner = app.test_cli_runner()
    assert runner.invoke(args=["verify-audit"]).exit_code == 0
    tamper_apart(database_url, f"UPDATE decision SET outcome = 'accept' WHERE id = {decision_id}")
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert "entries link up, but:" in result.stderr  # the chain itself is intact
    assert "ledger rows DO NOT match the audit trail" in result.stderr
    assert f"decision {decision_id}: content differs (audit entry #" in result.stderr


def test_the_staff_check_names_the_row(web_as, database_url, rejected):
    viewer = web_as("viewer")
    html = viewer.get("/staff/audit/verify").get_data(as_text=True)
    assert "Every row matches the audit trail" in html
    tamper_apart(database_url, f"UPDATE gift SET status = 'accepted' WHERE id = {rejected['id']}")
    html = viewer.get("/staff/audit/verify").get_data(as_text=True)
    assert "Rows do not match the audit trail" in html
    assert f"<td>gift</td><td>{rejected['id']}</td><td>content differs</td>" in html


# --- the database refuses edits of append-only tables ---------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE decision SET outcome = 'accept'",
    "DELETE FROM decision",
    "UPDATE audit_entry SET actor = 'someone else'",
    "DELETE FROM audit_entry",
    "UPDATE refund SET amount_minor = 1",
    "DELETE FROM refund",
    "UPDATE published_disclosure SET content = '{}'",
    "DELETE FROM published_disclosure",
    "UPDATE policy_version SET document = ''",
    "DELETE FROM policy_version",
    "UPDATE audit_checkpoint SET length = 2",
    "DELETE FROM audit_checkpoint",
])
def test_append_only_tables_refuse_update_and_delete(app, api, api_as, db, policy, database_url,
                                                     audit_key, statement):
    w = World(api)
    made = gift(api, w.donor["id"], "100.00", DAY)
    ok(api_as("finance").post(f"/gifts/{made['id']}/refund",
                              {"amount": "1.00", "refunded_on": DAY}))
    # Signed: its checkpoint is an audit_checkpoint row.
    disclosure.publish(db, date(2026, 1, 1), date(2026, 3, 31), policy, "USD", "Org", TEST_ACTOR,
                       keys=app.extensions["audit_keys"])
    register_file_policy(db, app.extensions["armslength"].policies, TEST_ACTOR)
    table = statement.split()[2 if statement.startswith("DELETE") else 1]
    assert db.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() >= 1
    db.rollback()
    engine = create_engine(database_url)  # a connection of its own, plain SQL
    try:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()
    assert _verify(api)["ok"] is True


def test_migrations_install_the_triggers(tmp_path):
    """A database built by the migrations (production's way) refuses the edits as well."""
    for backend in BACKENDS:
        with empty_database(backend, tmp_path, "row_hash_triggers") as url:
            engine = create_engine(url)
            try:
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["engine"] = engine
                command.upgrade(config, "head")
                with engine.begin() as conn:
                    conn.execute(text(
                        "INSERT INTO audit_entry (at, actor, action, entity_type, data, "
                        "prev_hash, hash) VALUES (CURRENT_TIMESTAMP, 'x', 'x', 'x', '{}', 'p', "
                        "'h')"))
                    conn.execute(text(
                        "INSERT INTO audit_checkpoint (length, entry_id, head, signed_at, key_id, "
                        "public_key, signature) VALUES (1, 1, 'h', CURRENT_TIMESTAMP, 'k', 'p', "
                        "'s')"))
                for statement in ("UPDATE audit_entry SET actor = 'y'", "DELETE FROM audit_entry",
                                  # 0011 on PostgreSQL, 0019 on SQLite
                                  "UPDATE audit_checkpoint SET length = 2",
                                  "DELETE FROM audit_checkpoint"):
                    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                        conn.execute(text(statement))
                command.downgrade(config, "0019-1")
                if backend == "sqlite":
                    with engine.begin() as conn:  # 0019's guards are gone
                        conn.execute(text("DELETE FROM audit_checkpoint"))
                command.downgrade(config, "0015")  # the revision before 0010
                with engine.begin() as conn:
                    conn.execute(text("DELETE FROM audit_entry"))  # the guards are gone with 0010
            finally:
                engine.dispose()


def test_seal_rows_records_rows_with_no_entry_and_nothing_else(app, api, db, database_url):
    """After the upgrade a ledger's older rows have no entry: `armslength seal-rows` records
    them as they are (those the upgrade found: tests/ledger/test_row_hashes_more.py). A row
    that differs from its entry is not re-sealed."""
    w = World(api)
    tamper_apart(database_url,
                 "INSERT INTO organization (name, covered_lab, aliases, created_at) "
                 "SELECT 'Older Org', covered_lab, aliases, created_at FROM organization "
                 f"WHERE id = {w.other_org['id']}",
                 f"UPDATE organization SET covered_lab = false WHERE id = {w.lab['id']}")
    older = _ids(db, Organization)[-1]
    upgrade_watermark(database_url)  # the upgrade that seals them finds them there
    assert _findings(_verify(api)) == {("organization", older, "no audit entry"),
                                       ("organization", w.lab["id"], "content differs")}
    result = app.test_cli_runner().invoke(args=["seal-rows"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "sealed 1 rows that had no audit entry"
    report = _verify(api)
    assert report["chain_ok"] is True
    assert _findings(report) == {("organization", w.lab["id"], "content differs")}
    entry = db.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).scalar_one()
    assert (entry.action, entry.entity_type, entry.data["rows"]) == ("ledger.rows_sealed",
                                                                    "ledger", 1)
