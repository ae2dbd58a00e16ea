"""Sealing rows that no audit entry recorded: a ledger written before row hashes existed
(migration 0010). `armslength seal-rows` runs it once after the upgrade.

Only rows with no entry at all are sealed, as they are now, by entries "ledger.rows_sealed"
that say so; a row whose content differs from its entry, or an entry whose row is gone, is
never papered over: those stay findings until someone explains them.
"""

from __future__ import annotations

from sqlmodel import Session

from app.db.locking import ledger_batch
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.row_verify import unsealed_rows

#: Rows sealed per audit entry.
PER_ENTRY = 1000


def seal_unsealed_rows(session: Session, actor: Actor) -> int:
    """Append entries sealing every row that has none; returns how many rows were sealed."""
    with ledger_batch(session):
        pending = unsealed_rows(session)
        for start in range(0, len(pending), PER_ENTRY):
            chunk = pending[start:start + PER_ENTRY]
            audit.append(session, actor, "ledger.rows_sealed", "ledger", None, {
                "rows": len(chunk),
                "why": "rows written before their audit entries carried row hashes",
            }, sealed=chunk)
    return len(pending)
