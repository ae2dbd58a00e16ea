"""verify_chain reads plain columns (the instant spelled by the database, JSON as text) and
checks each entry against its predecessor's stored hash; it must say exactly what the
plain walk says (ORM entries, entry_hash from the genesis hash on), whatever was edited.
On SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.ledger.audit import ChainReport, entry_hash, verify_chain
from models import GENESIS_HASH, AuditEntry
from tests.builders import World, gift
from tests.tampering import tamper_apart

DAY = "2026-03-01"


def _reference(db) -> ChainReport:
    """The plain walk: every entry as the ORM reads it, hashed from the genesis hash on."""
    prev, count = GENESIS_HASH, 0
    for entry in db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        if entry.prev_hash != prev:
            return ChainReport(False, count, entry.id, "previous-hash link does not match")
        if entry_hash(prev, entry) != entry.hash:
            return ChainReport(False, count, entry.id, "content does not match its hash")
        prev, count = entry.hash, count + 1
    return ChainReport(True, count)


def _both(db) -> tuple[ChainReport, ChainReport]:
    try:
        expected = _reference(db)
        db.rollback()
        walked = verify_chain(db, batch=3)
        noted = verify_chain(db, batch=3, note={1, 2, 10_000})
    finally:
        db.rollback()
    # Asked to note positions, the walk reads past a break, but reports the same.
    assert (noted.ok, noted.entries, noted.broken_at, noted.problem) == (
        walked.ok, walked.entries, walked.broken_at, walked.problem)
    # ... and counts every entry, for the checkpoints (verify_audit passes no positions
    # when there is no checkpoint; the count still matters: entries_after_latest).
    counted = verify_chain(db, note=set())
    db.rollback()
    assert counted.length == db.execute(select(func.count(AuditEntry.id))).scalar_one()
    return expected, walked


def _same(expected: ChainReport, walked: ChainReport) -> None:
    assert (walked.ok, walked.entries, walked.broken_at, walked.problem) == (
        expected.ok, expected.entries, expected.broken_at, expected.problem)


@pytest.fixture
def entries(api, db) -> list[int]:
    w = World(api)
    for amount in ("10.00", "20.00", "30.00"):
        gift(api, w.donor["id"], amount, DAY)
    try:
        return list(db.execute(select(AuditEntry.id).order_by(AuditEntry.id)).scalars())
    finally:
        db.rollback()


def test_an_untouched_chain_walks_as_the_plain_walk(db, entries):
    expected, walked = _both(db)
    assert expected.ok and expected.entries == len(entries)
    _same(expected, walked)
    noted = verify_chain(db, note={1, len(entries), len(entries) + 1})
    db.rollback()
    assert noted.length == len(entries)
    assert set(noted.noted) == {1, len(entries)}  # the last asked for is past the end
    assert noted.noted[1][0] == entries[0]


@pytest.mark.parametrize("edit", [
    "UPDATE audit_entry SET data = '{\"amount\": \"99.00\"}' WHERE id = {id}",
    "UPDATE audit_entry SET actor = 'someone else' WHERE id = {id}",
    "UPDATE audit_entry SET row_hashes = NULL WHERE id = {id}",
    "UPDATE audit_entry SET prev_hash = hash WHERE id = {id}",
    "DELETE FROM audit_entry WHERE id = {id}",
])
def test_an_edited_entry_is_found_where_the_plain_walk_finds_it(db, entries, database_url, edit):
    tamper_apart(database_url, edit.replace("{id}", str(entries[len(entries) // 2])))
    expected, walked = _both(db)
    assert not expected.ok
    _same(expected, walked)


# SQLite only (its dynamic typing): not parametrised over PostgreSQL at all, so no
# PostgreSQL case is skipped (CI counts those).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("at", [
    "2026-03-01 10:00:00",  # no microseconds: SQLAlchemy reads it, the SQL spelling does not
    "2026-03-01T10:00:00.000000",
    "2026-02-30 10:00:00.000000",
])
def test_sqlite_instants_stored_otherwise_are_read_as_the_orm_reads_them(db, entries,
                                                                         database_url, at):
    tamper_apart(database_url, (f"UPDATE audit_entry SET at = :at WHERE id = {entries[1]}",
                                {"at": at}))
    try:
        expected = _reference(db)
    except ValueError:  # not a date: the ORM cannot read it, nor then can the walk
        db.rollback()
        with pytest.raises(ValueError):
            verify_chain(db)
        return
    finally:
        db.rollback()
    walked = verify_chain(db)
    db.rollback()
    _same(expected, walked)


def test_an_instant_moved_by_a_microsecond_is_found(db, entries, database_url):
    moved = ("UPDATE audit_entry SET at = at + interval '1 microsecond'"
             if database_url.startswith("postgresql") else
             "UPDATE audit_entry SET at = substr(at, 1, 25) || "
             "CAST((CAST(substr(at, 26, 1) AS INTEGER) + 1) % 10 AS TEXT)")
    tamper_apart(database_url, f"{moved} WHERE id = {entries[2]}")
    expected, walked = _both(db)
    assert (expected.ok, expected.broken_at) == (False, entries[2])
    _same(expected, walked)
