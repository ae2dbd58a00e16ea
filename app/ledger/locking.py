"""One writer of money at a time.

SQLite: every transaction already began with BEGIN IMMEDIATE (app.db), which takes
the database write lock. PostgreSQL: lock the single ledger_lock row FOR UPDATE, so
concurrent writers queue there and each then reads the totals the previous one
committed (READ COMMITTED takes a fresh snapshot per statement).
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from app.ledger.errors import LedgerBusy
from models import LedgerLock

LOCK_ROW_ID = 1


def ensure_lock_row(session: Session) -> None:
    if session.get(LedgerLock, LOCK_ROW_ID) is None:
        session.add(LedgerLock(id=LOCK_ROW_ID))
        session.commit()


def lock_ledger(session: Session) -> None:
    """Take the ledger lock for the rest of the current transaction."""
    if session.get_bind().dialect.name == "sqlite":
        # BEGIN IMMEDIATE already holds the write lock; make sure a transaction is open.
        session.connection()
        return
    row = session.execute(
        select(LedgerLock.id).where(LedgerLock.id == LOCK_ROW_ID).with_for_update()
    ).first()
    if row is None:
        raise RuntimeError("ledger_lock row missing: run `armslength init-db`")


@contextmanager
def ledger_write(session: Session):
    """A locked transaction that commits on success and rolls back on any error."""
    if session.in_transaction():
        # Settle whatever read-only work came before, so the lock covers the whole write.
        session.commit()
    try:
        lock_ledger(session)
        yield session
        session.commit()
    except OperationalError as error:
        session.rollback()
        if _is_retryable(error):
            raise LedgerBusy("the ledger is busy; retry shortly") from error
        raise
    except BaseException:
        session.rollback()
        raise


def _is_retryable(error: DBAPIError) -> bool:
    text = str(error.orig).lower() if error.orig else str(error).lower()
    code = getattr(error.orig, "sqlstate", None)
    return code in {"40001", "40P01", "55P03"} or "locked" in text or "busy" in text
