"""The row check compares rows and seals in the database (app.ledger.row_verify): the seals
in a temporary table, each table's rows joined with their latest seals there, only the rows
that differ coming back; where the role may not create a temporary table, the older way
(every latest seal in one sorted stream, merged in Python) answers instead.

Both ways are run here on the same tampered ledger, on SQLite and PostgreSQL: a row edited,
a row deleted, a row inserted with no entry, a keyed seal broken (a donor renamed), and a
row the app changed and sealed again (its older seal must not count). Each must name
exactly those rows, and the two must agree finding for finding, hash for hash.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text

from app.ledger import row_verify
from app.ledger.row_verify import CONTENT_DIFFERS, NO_ENTRY, ROW_GONE, RowsReport
from models import Attribution, Decision
from tests.builders import World, gift, ok
from tests.tampering import tamper_apart

DAY = "2026-03-01"


def _walked(database_url: str, walk) -> tuple[list[tuple], RowsReport]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            report = RowsReport()
            row_verify.row_sql.prepare(conn)
            found = [(f.table, f.id, f.problem, f.entry_id, digest)
                     for f, digest in walk(conn, 1000, report)]
            return found, report
    finally:
        engine.dispose()


@pytest.fixture
def tampered(api, db, database_url):
    """A ledger with one of each problem, and a gift the app refunded (sealed twice)."""
    w = World(api)
    kept = gift(api, w.donor["id"], "100.00", DAY)
    edited = gift(api, w.donor["id"], "200.00", DAY)
    deleted = gift(api, w.employee["id"], "30.00", DAY)
    refunded = gift(api, w.donor["id"], "400.00", DAY)
    ok(api.post(f"/gifts/{refunded['id']}/refund", {"amount": "40.00", "refunded_on": DAY,
                                                     "reason": "asked"}))
    try:
        (decision_id,) = db.execute(select(Decision.id).where(
            Decision.gift_id == edited["id"])).scalars()
        (attribution_id,) = db.execute(select(Attribution.id).where(
            Attribution.gift_id == deleted["id"])).scalars()
    finally:
        db.rollback()
    tamper_apart(database_url,
                 f"UPDATE decision SET outcome = 'reject' WHERE id = {decision_id}",
                 f"DELETE FROM attribution WHERE id = {attribution_id}",
                 "INSERT INTO decision (gift_id, outcome, kind, policy_version, reasons, "
                 "figures, created_at) SELECT gift_id, 'accept', 'review', policy_version, "
                 f"reasons, figures, created_at FROM decision WHERE id = {decision_id}",
                 f"UPDATE donor SET name = 'Someone Else' WHERE id = {w.donor['id']}")
    try:
        forged = db.execute(select(Decision.id).order_by(Decision.id.desc())).scalars().first()
    finally:
        db.rollback()
    return {"decision": decision_id, "attribution": attribution_id, "forged": forged,
            "donor": w.donor["id"], "kept": kept["id"], "refunded": refunded["id"]}


def test_the_database_comparison_names_each_tampered_row(database_url, tampered):
    found, report = _walked(database_url, row_verify._walk_in_database)
    assert {(table, row_id, problem) for table, row_id, problem, _, _ in found} == {
        ("decision", tampered["decision"], CONTENT_DIFFERS),
        ("attribution", tampered["attribution"], ROW_GONE),
        ("decision", tampered["forged"], NO_ENTRY),
        ("donor.identity", tampered["donor"], CONTENT_DIFFERS),
    }
    gone = next(f for f in found if f[2] == ROW_GONE)
    assert gone[3] is not None and gone[4] is None  # the entry that sealed it; no hash now
    unsealed = next(f for f in found if f[2] == NO_ENTRY)
    assert unsealed[3] is None and len(unsealed[4]) == 64  # its hash as it is now
    assert report.rows > 0


def test_the_sorted_merge_gives_the_same_answer(database_url, tampered):
    """The older way, for a role without TEMPORARY: finding for finding, hash for hash, and
    the same count of rows checked."""
    in_db, in_db_report = _walked(database_url, row_verify._walk_in_database)
    merged, merged_report = _walked(database_url, row_verify._walk_sorted)
    assert in_db == merged
    assert in_db_report.rows == merged_report.rows
    assert in_db_report.counts == merged_report.counts


def test_verify_rows_uses_the_database_comparison_and_leaves_no_table(app, db, database_url,
                                                                      tampered):
    report = row_verify.verify_rows(db)
    assert report.counts == {CONTENT_DIFFERS: 2, NO_ENTRY: 1, ROW_GONE: 1}
    # In the caller's own transaction (seal-rows holds the ledger lock): twice in a row,
    # the temporary table made and dropped each time.
    conn = db.connection()
    assert row_verify._may_create_temporary(conn)
    first = row_verify.unsealed_rows(db)
    assert first == row_verify.unsealed_rows(db)
    assert [row[:2] for row in first] == [["decision", tampered["forged"]]]
    dialect = conn.dialect.name
    exists = ("SELECT count(*) FROM pg_tables WHERE tablename = 'armslength_seal'"
              if dialect == "postgresql" else
              "SELECT count(*) FROM sqlite_temp_master WHERE name = 'armslength_seal'")
    assert conn.execute(text(exists)).scalar_one() == 0
    db.rollback()


def test_an_honest_ledger_with_a_refund_verifies_both_ways(api, database_url):
    """A refunded gift is sealed twice (recorded, then refunded): only the latest seal
    counts, in the database as in the merge."""
    w = World(api)
    made = gift(api, w.donor["id"], "400.00", DAY)
    ok(api.post(f"/gifts/{made['id']}/refund", {"amount": "40.00", "refunded_on": DAY,
                                                 "reason": "asked"}))
    for walk in (row_verify._walk_in_database, row_verify._walk_sorted):
        found, report = _walked(database_url, walk)
        assert found == [] and report.ok


def test_a_read_only_transaction_falls_back_to_the_merge_and_finds_the_same(database_url,
                                                                           tampered):
    """A read-only auditor's session (or a standby) may not create a temporary table: the
    check chooses the sorted merge there and names the same rows (review finding 4)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                assert not row_verify._may_create_temporary(conn)
            report = RowsReport()
            found = {(f.table, f.id, f.problem) for f, _ in row_verify._walk(conn, 1000, report)}
    finally:
        engine.dispose()
    assert found == {
        ("decision", tampered["decision"], CONTENT_DIFFERS),
        ("attribution", tampered["attribution"], ROW_GONE),
        ("decision", tampered["forged"], NO_ENTRY),
        ("donor.identity", tampered["donor"], CONTENT_DIFFERS),
    }


def test_a_table_of_the_same_name_first_on_the_search_path_is_not_read(database_url,
                                                                        tampered):
    """PostgreSQL: someone with database access makes public.armslength_seal (empty) and
    puts public before pg_temp on the search path; the check names its own temporary table
    in every statement, so it neither fills nor reads that table, and still finds every
    tampered row (review finding 4)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    "CREATE TABLE public.armslength_seal (t text, row_id bigint, "
                    "entry_id bigint, hash text)")
                conn.exec_driver_sql("SET LOCAL search_path = public, pg_temp")
            report = RowsReport()
            row_verify.row_sql.prepare(conn)
            found = {(f.table, f.id, f.problem)
                     for f, _ in row_verify._walk_in_database(conn, 1000, report)}
            if conn.dialect.name == "postgresql":  # never written to, never read
                assert conn.exec_driver_sql(
                    "SELECT count(*) FROM public.armslength_seal").scalar_one() == 0
            conn.rollback()
    finally:
        engine.dispose()
    assert ("decision", tampered["decision"], CONTENT_DIFFERS) in found
    assert ("attribution", tampered["attribution"], ROW_GONE) in found
