"""The chain walked in parts (app.ledger.chain_walk): every part checked on its own and the
parts joined at their boundaries must report exactly what one walk reports, whether the
parts run in this process or in the helper process (app/ledger/chain_part.py), and wherever
the edit falls: inside the helper's parts, on the first or last entry of a part, on the
link across a boundary. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.ledger import chain_walk
from app.ledger.audit import verify_chain
from models import AuditEntry
from tests.builders import World, gift
from tests.ledger.test_chain_walk import _reference
from tests.tampering import tamper_apart

DAY = "2026-03-01"
PARTS = 4


def _report(report):
    return (report.ok, report.entries, report.broken_at, report.problem)


def _walks(db) -> list:
    """One walk, all parts in this process, and this process with the helper; each with the
    positions noted (reading past a break) and without."""
    conn = db.connection()
    todo, total = chain_walk.cuts(conn, PARTS)
    assert len(todo) == PARTS and total > 2 * PARTS
    everywhere = set(range(1, total + 2))
    reports = []
    for note in (None, everywhere):
        wanted = sorted(note or ())
        reports += [
            verify_chain(db, note=note),
            chain_walk.walk_in_parts(conn, note, PARTS, batch=2),
            chain_walk.walk_on_two(conn, wanted, note is not None, batch=2, todo=todo),
        ]
    db.rollback()
    return reports


def _all_same(db) -> list:
    expected = _reference(db)
    db.rollback()
    reports = _walks(db)
    for report in reports:
        assert _report(report) == _report(expected)
    single_noted, parts_noted, two_noted = reports[3:]
    # Every position noted, in every way of walking, the same (id, hash).
    assert single_noted.noted == parts_noted.noted == two_noted.noted
    assert single_noted.length == parts_noted.length == two_noted.length
    return reports


@pytest.fixture
def entries(api, db) -> list[int]:
    w = World(api)
    for amount in ("10.00", "20.00", "30.00", "40.00", "50.00", "60.00"):
        gift(api, w.donor["id"], amount, DAY)
    try:
        return list(db.execute(select(AuditEntry.id).order_by(AuditEntry.id)).scalars())
    finally:
        db.rollback()


def _part_firsts(db, entries) -> list[int]:
    """The first entry id of each part after the first."""
    todo, _ = chain_walk.cuts(db.connection(), PARTS)
    db.rollback()
    return [min(i for i in entries if i > lo) for lo, _hi, _start in todo[1:]]


def test_an_untouched_chain_walks_in_parts_as_in_one(db, entries):
    reports = _all_same(db)
    assert reports[0].ok and reports[0].entries == len(entries)
    assert reports[3].noted[len(entries)] == (entries[-1], reports[3].noted[len(entries)][1])


@pytest.mark.parametrize("edit", [
    "UPDATE audit_entry SET data = '{\"amount\": \"99.00\"}' WHERE id = {id}",
    "UPDATE audit_entry SET prev_hash = hash WHERE id = {id}",
    "UPDATE audit_entry SET hash = '" + "f" * 64 + "' WHERE id = {id}",
    "DELETE FROM audit_entry WHERE id = {id}",
])
@pytest.mark.parametrize("where", ["last part (the helper's)", "first of a part",
                                   "last of a part"])
def test_an_edit_anywhere_is_found_as_one_walk_finds_it(db, entries, database_url, edit,
                                                       where):
    firsts = _part_firsts(db, entries)
    target = {"last part (the helper's)": entries[-2],
              "first of a part": firsts[1],
              "last of a part": entries[entries.index(firsts[1]) - 1]}[where]
    tamper_apart(database_url, edit.replace("{id}", str(target)))
    reports = _all_same(db)
    assert not reports[0].ok
    # The break is at the edited entry, or (its hash rewritten, or it deleted) the next one.
    assert reports[0].broken_at in (target, entries[entries.index(target) + 1])


def test_a_rewritten_part_is_found_at_its_boundary(db, entries, database_url):
    """A whole part re-hashed consistently from its first entry on (its own links hold) is
    found where it joins the part before it."""
    first = _part_firsts(db, entries)[1]
    tamper_apart(database_url,
                 f"UPDATE audit_entry SET prev_hash = '{'0' * 64}' WHERE id = {first}")
    reports = _all_same(db)
    assert (reports[0].broken_at, reports[0].problem) == (
        first, "previous-hash link does not match")
