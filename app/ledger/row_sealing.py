"""Sealing rows that no audit entry recorded because they were written before their table
was sealed. `armslength seal-rows` runs it once after an upgrade that seals more.

Only rows that an upgrade found already there are sealed: each migration that seals more
tables (0028 on: every table then sealed) appends a "ledger.seal_watermark" entry to the
chain that records, per sealed table, its largest id and its number of rows at the upgrade
(append_watermark). A row with no entry is sealed, as it is now, only if its id is at most
its table's watermark, and only while the table holds no more rows up to that id than it
did then (a row slipped into a gap of the ids below it would otherwise pass). Any other
unsealed row, one inserted behind the app's back after the upgrade above all, is reported
and left a finding: the command cannot launder it.

The watermark is in the chain, not in a table: an insider who edits it breaks the chain
(and its signed checkpoints); one who appends a watermark entry of their own gains nothing,
since a table's watermark is the lowest any entry gives it. A row whose content differs
from its entry, or an entry whose row is gone, is never papered over either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from app.db.locking import ledger_batch
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.row_hashes import SEALED, Sealed, read_columns, stored_row_hash
from app.ledger.row_verify import _LATEST_SEALS, unsealed_rows
from models import GENESIS_HASH, AuditEntry

#: Rows sealed per audit entry.
PER_ENTRY = 1000

WATERMARK_ACTION = "ledger.seal_watermark"


@dataclass(frozen=True)
class Watermark:
    #: The largest id of the table's rows when the upgrade recorded it (None: no rows).
    max_id: int | None
    #: How many rows the table had then.
    rows: int


@dataclass
class SealResult:
    #: Rows sealed.
    sealed: int = 0
    #: [table, id, why] of rows with no entry that were not sealed.
    refused: list[tuple[str, int, str]] = field(default_factory=list)


def watermarks(session: Session) -> dict[str, Watermark]:
    """Each table's watermark: the lowest any "ledger.seal_watermark" entry records."""
    found: dict[str, Watermark] = {}
    for data in session.execute(select(AuditEntry.data).where(
            AuditEntry.action == WATERMARK_ACTION).order_by(AuditEntry.id)).scalars():
        for table, mark in (data.get("tables") or {}).items():
            new = Watermark(mark.get("max_id"), int(mark.get("rows") or 0))
            old = found.get(table)
            if old is None or _below(new, old):
                found[table] = new
    return found


def _below(new: Watermark, old: Watermark) -> bool:
    if new.max_id is None or old.max_id is None:
        return new.max_id is None
    return (new.max_id, new.rows) < (old.max_id, old.rows)


def _rows_up_to(session: Session, table: str, max_id: int) -> int:
    sealed = SEALED[table]
    key = sealed.model.__table__.c[sealed.key]
    return session.execute(select(sa.func.count()).select_from(key.table)
                           .where(key <= max_id)).scalar_one()


def seal_unsealed_rows(session: Session, actor: Actor) -> SealResult:
    """Append entries sealing every row with no entry that an upgrade found already there
    (see the module); the others are returned as refused."""
    result = SealResult()
    with ledger_batch(session):
        marks = watermarks(session)
        crowded: dict[str, bool] = {}
        pending = []
        for table, row_id, digest in unsealed_rows(session):
            mark = marks.get(table)
            if mark is None or mark.max_id is None or row_id > mark.max_id:
                result.refused.append((table, row_id, "written after the upgrade that sealed "
                                       "its table, with no audit entry"))
                continue
            if table not in crowded:
                crowded[table] = _rows_up_to(session, table, mark.max_id) > mark.rows
            if crowded[table]:
                result.refused.append((table, row_id, "its table has more rows up to the "
                                       "upgrade's largest id than it had then"))
                continue
            pending.append([table, row_id, digest])
        for start in range(0, len(pending), PER_ENTRY):
            chunk = pending[start:start + PER_ENTRY]
            audit.append(session, actor, "ledger.rows_sealed", "ledger", None, {
                "rows": len(chunk),
                "why": "rows written before their table was sealed",
            }, sealed=chunk)
    result.sealed = len(pending)
    return result


#: audit_entry's columns as the watermark entry writes them: a table of its own here, so a
#: migration writes the columns its revision has, whatever later revisions add.
_AUDIT = sa.table(
    "audit_entry",
    *(sa.column(name, AuditEntry.__table__.c[name].type) for name in (
        "id", "at", "actor_id", "actor", "action", "entity_type", "entity_id", "data",
        "row_hashes", "prev_hash", "hash")))


def append_migration_entry(conn: Connection, revision: str, action: str, data: dict,
                           sealed: list[list] | None = None) -> None:
    """For a migration: append one entry to the chain, sealing `sealed` ([table, id, hash])."""
    prev = conn.execute(select(_AUDIT.c.hash).order_by(_AUDIT.c.id.desc()).limit(1)
                        ).scalar_one_or_none() or GENESIS_HASH
    at = datetime.now(UTC)
    actor = f"migration {revision}"
    # The data as the chain hashes it: what the JSON column gives back.
    data = json.loads(json.dumps(data))
    digest = audit.chain_hash(prev, at.isoformat(timespec="microseconds"), actor, None,
                              action, "ledger", None, data, sealed)
    conn.execute(sa.insert(_AUDIT).values(
        at=at, actor_id=None, actor=actor, action=action, entity_type="ledger",
        entity_id=None, data=data, row_hashes=sealed, prev_hash=prev, hash=digest))


def reseal_for_migration(conn: Connection, revision: str, before: Sealed,
                         after: tuple[Sealed, ...]) -> tuple[int, int]:
    """For a migration that changes how a table is sealed (`before`: its seal until then,
    columns fixed by the migration; `after`: its seals from then on, keyed ones under the
    process's seal key): append entries sealing each row anew, but only rows that still
    match their latest seal under `before`. A row edited behind the app's back before the
    upgrade, or never sealed, is not laundered: it stays a finding. Returns (resealed, left)."""
    latest: dict[int, str | None] = {}
    for table, row_id, _entry, digest in conn.execute(_LATEST_SEALS[conn.dialect.name]):
        if table == before.table:
            latest[int(row_id)] = digest
    key_at = before.columns.index(before.key)
    fresh: dict[int, list[list]] = {}
    left = 0
    for row in conn.execute(select(*read_columns(before))):
        row_id = row[key_at]
        if latest.get(row_id) == stored_row_hash(before, tuple(row)):
            fresh[row_id] = []
        else:
            left += 1
    for sealed in after:
        at = sealed.columns.index(sealed.key)
        for row in conn.execute(select(*read_columns(sealed))):
            if row[at] in fresh:
                fresh[row[at]].append([sealed.table, row[at], stored_row_hash(sealed, tuple(row))])
    pending = [seal for row_id in sorted(fresh) for seal in fresh[row_id]]
    per_entry = PER_ENTRY * len(after)
    for start in range(0, len(pending), per_entry):
        chunk = pending[start:start + per_entry]
        append_migration_entry(conn, revision, "ledger.rows_resealed", {
            "table": before.table, "rows": len(chunk) // len(after),
            "seals": [s.table for s in after],
            "why": f"revision {revision} seals {before.table} otherwise"}, chunk)
    return len(fresh), left


def append_watermark(conn: Connection, revision: str,
                     tables: dict[str, tuple[str, str]]) -> None:
    """For a migration: append a "ledger.seal_watermark" entry recording, per sealed table
    (name -> (the database table, its key column)), its largest id and row count now. On
    an empty database too: the first entry of the chain then says that nothing was there,
    and no entry appended later can raise that."""
    marks = {}
    for name, (table, key) in sorted(tables.items()):
        max_id, rows = conn.execute(sa.text(
            f'SELECT max("{key}"), count(*) FROM "{table}"')).one()  # noqa: S608  # nosec B608
        marks[name] = {"max_id": max_id, "rows": rows}
    append_migration_entry(conn, revision, WATERMARK_ACTION,
                           {"revision": revision, "tables": marks})
