"""Rotating the key of the keyed row seals (app.ledger.seal_key) in one audited step.

Every keyed seal (a donor's identity, a roster entry's, a staff account's password hash) is
an HMAC under the seal key. A new key means a new seal of every such row, and only of rows
that are as their latest seal says under the old key: re-sealing a row edited behind the
app's back would launder the edit. So the rotation first checks every keyed seal under the
old key and, if any row differs or has none, writes nothing and names them. Otherwise it
appends entries sealing every such row under the new key, then one "ledger.seal_key_rotated"
entry naming both keys by their ids (seal_key.key_id: a hash, never the key), all in one
transaction under the ledger lock. Both keys come from files or the environment, never from
the database (docs/verify.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from app.db.locking import ledger_batch
from app.ledger import audit, seal_key
from app.ledger.audit import Actor
from app.ledger.row_hashes import keyed_digest, keyed_seals, read_columns
from app.ledger.row_sealing import PER_ENTRY
from app.ledger.row_verify import _LATEST_SEALS

ROTATED_ACTION = "ledger.seal_key_rotated"


@dataclass
class Rotation:
    #: Keyed seals made under the new key (0 if refused).
    resealed: int = 0
    #: [seal, id, why] of rows whose keyed seal does not hold under the old key: the
    #: rotation wrote nothing.
    refused: list[tuple[str, int, str]] = field(default_factory=list)


def rotate_seal_key(session: Session, old_key: bytes, new_key: bytes, actor: Actor) -> Rotation:
    """Re-seal every keyed seal under new_key (see the module); refused, with nothing
    written, if any row's keyed seal does not hold under old_key."""
    if old_key == new_key:
        raise ValueError("the new seal key is the key in use")
    result = Rotation()
    with ledger_batch(session):
        conn = session.connection()
        keyed = {s.table: s for s in keyed_seals()}
        latest = {(table, int(row_id)): digest for table, row_id, _entry, digest
                  in conn.execute(_LATEST_SEALS[conn.dialect.name]) if table in keyed}
        fresh: list[list] = []
        for name, sealed in keyed.items():
            at = sealed.columns.index(sealed.key)
            columns = sealed.model.__table__.c
            for row in conn.execute(select(*read_columns(sealed)).order_by(columns[sealed.key])):
                row = tuple(row)
                have = latest.get((name, row[at]))
                if have is None:
                    result.refused.append((name, row[at], "no keyed seal"))
                elif keyed_digest(sealed, row, old_key) != have:
                    result.refused.append((name, row[at], "differs from its keyed seal "
                                                          "under the old key"))
                else:
                    fresh.append([name, row[at], keyed_digest(sealed, row, new_key)])
        if result.refused:
            return result
        for start in range(0, len(fresh), PER_ENTRY):
            chunk = fresh[start:start + PER_ENTRY]
            audit.append(session, actor, "ledger.rows_resealed", "ledger", None, {
                "rows": len(chunk), "why": "seal key rotated",
                "key_id": seal_key.key_id(new_key)}, sealed=chunk)
        audit.append(session, actor, ROTATED_ACTION, "ledger", None, {
            "old_key_id": seal_key.key_id(old_key), "new_key_id": seal_key.key_id(new_key),
            "resealed": len(fresh), "seals": sorted(keyed)})
    result.resealed = len(fresh)
    return result
