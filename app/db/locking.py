"""One writer of money at a time.

SQLite: a ledger write begins its transaction with BEGIN IMMEDIATE (app.db), which
takes the database write lock; plain reads begin DEFERRED. PostgreSQL: lock the
single ledger_lock row FOR UPDATE, so concurrent writers queue there and each then
reads the totals the previous one committed (READ COMMITTED takes a fresh snapshot
per statement).

ledger_batch() runs many ledger writes as one transaction under one lock (a CSV
import: all rows or none). Inside it, ledger_write() neither locks nor commits; it
joins the batch's transaction, and the batch commits or rolls back once at the end.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from app.db import LEDGER_WRITE_OPTION
from app.errors import CommitUncertain, LedgerBusy, LedgerError, StillRunning
from models import LedgerLock

LOCK_ROW_ID = 1

log = logging.getLogger(__name__)


def ensure_lock_row(session: Session) -> None:
    if session.get(LedgerLock, LOCK_ROW_ID) is None:
        session.add(LedgerLock(id=LOCK_ROW_ID))
        session.commit()


#: The lock row, FOR UPDATE: run on the session's connection (a plain statement, nothing
#: pending before a lock is taken), without the ORM's per-statement work.
_LOCK_ROW = select(LedgerLock.id).where(LedgerLock.id == LOCK_ROW_ID).with_for_update()


def lock_ledger(session: Session) -> None:
    """Take the ledger lock for the rest of the current transaction."""
    if session.get_bind().dialect.name == "sqlite":
        # Opening the transaction with this option makes app.db emit BEGIN IMMEDIATE,
        # which takes the database write lock (waiting up to the busy timeout).
        session.connection(execution_options={LEDGER_WRITE_OPTION: True})
        return
    row = session.connection().execute(_LOCK_ROW).first()
    if row is None:
        raise RuntimeError("ledger_lock row missing: run `armslength init-db`")


@contextmanager
def ledger_write(session: Session):
    """A locked transaction that commits on success and rolls back on any error.

    Inside ledger_batch() it joins the batch's transaction instead (see there).
    """
    batch = session.info.get(_BATCH_KEY)
    if batch is not None:
        if batch.exclusive is not None:
            raise RuntimeError(f"{batch.exclusive} is open in this batch: close it before "
                               "any other ledger write")
        with batch.joined(session):
            yield session
        return
    if session.in_transaction():
        # Settle whatever read-only work came before, so the lock covers the whole write.
        session.commit()
    try:
        lock_ledger(session)
        # Sessions keep their objects across commits (expire_on_commit=False), so one
        # loaded by an earlier transaction may hold values another writer has since
        # changed (a gift's refunded_minor, a day's funding totals). Everything this
        # write reads must come from the database, under the lock.
        session.expire_all()
        yield session
        commit(session)
    except OperationalError as error:
        session.rollback()
        if _is_retryable(error):
            raise LedgerBusy("the ledger is busy; retry shortly") from error
        raise
    except BaseException:
        session.rollback()
        raise


class BatchAborted(LedgerError):
    """A ledger_batch could not commit: a write inside it failed, or its transaction ended early."""


#: session.info key of the running batch; its presence is what makes ledger_write join.
_BATCH_KEY = "armslength.ledger_batch"


@dataclass
class _Batch:
    #: The root transaction the batch began; every joined write must still be inside it.
    transaction: object
    #: Set when a joined write raised. Even if the caller swallowed the error, whatever
    #: that write flushed before failing is still in the transaction, so the batch must
    #: not commit.
    failed: str | None = None
    #: A writer that must be the batch's only one while it is open (see exclusive_writer).
    exclusive: str | None = None
    #: What waits for the batch's commit (once_committed).
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    def intact(self, session: Session) -> bool:
        return session.get_transaction() is self.transaction

    @contextmanager
    def joined(self, session: Session):
        if self.failed is not None:
            raise BatchAborted(f"an earlier write in this batch failed: {self.failed}")
        if not self.intact(session):
            # Someone committed or rolled back inside the batch: its writes are no
            # longer all-or-nothing, and the lock may be gone.
            self.failed = "the batch's transaction ended early (commit or rollback inside it)"
            raise BatchAborted(self.failed)
        try:
            yield
        except BaseException as error:
            self.failed = f"{type(error).__name__}: {error}"
            raise
        if not self.intact(session):
            self.failed = "the batch's transaction ended early (commit or rollback inside it)"
            raise BatchAborted(self.failed)


@contextmanager
def ledger_batch(session: Session, *, advisory_key: str | None = None,
                 growing: bool = True, after_reads: bool = False):
    """One locked transaction around many ledger writes: all of them commit, or none.

    Every ledger_write() inside joins this transaction: no lock of its own, no commit.
    On leaving the block normally the batch commits once; on an exception it rolls
    everything back. If a write inside failed but the caller caught the error, or the
    transaction was committed or rolled back from inside, the batch rolls back and
    raises BatchAborted rather than commit a partial result. A batch opened inside
    another joins it, as a ledger_write does (an API request's batch around a service
    that batches its own writes): the outer one commits, once.

    The lock is held for the whole batch, so other money writers wait: keep batches to
    work that must be atomic (an import), not to a user's think time.

    advisory_key (PostgreSQL): before queueing for the ledger lock, take a lock on this
    name for the transaction without waiting; StillRunning if another transaction holds
    it (an API request with the same idempotency key: app.api.idempotency). SQLite has
    nothing to take without waiting: its writers queue at BEGIN IMMEDIATE.
    growing: the batch may grow tables by orders of magnitude (an import): plan its
    statements for the tables as they are (see _plan_for_growing_tables). A batch of a
    few writes (one API request) says False and keeps the cached plans.
    after_reads: the session's open transaction has only read (a request's preparation
    before the lock, app.api.idempotency). On PostgreSQL the lock is then taken inside it
    instead of after a COMMIT: under READ COMMITTED every statement after the lock takes a
    fresh snapshot, so it sees whatever the lock's previous holder committed, exactly as
    in a new transaction; it saves the COMMIT, a BEGIN and the pool's ping of a second
    connection checkout. SQLite commits it first as always: a deferred read transaction
    cannot become the BEGIN IMMEDIATE that is its lock.
    """
    outer = session.info.get(_BATCH_KEY)
    if outer is not None:
        if outer.exclusive is not None:
            raise RuntimeError(f"{outer.exclusive} is open in this batch: close it before "
                               "any other ledger write")
        with outer.joined(session):
            yield session
        return
    if session.in_transaction() and not (
            after_reads and session.get_bind().dialect.name == "postgresql"):
        session.commit()
    try:
        if advisory_key is not None:
            _try_advisory_lock(session, advisory_key)
        lock_ledger(session)
        if growing:
            _plan_for_growing_tables(session)
        session.expire_all()
        batch = _Batch(transaction=session.get_transaction())
        session.info[_BATCH_KEY] = batch
        try:
            yield session
        finally:
            session.info.pop(_BATCH_KEY, None)
        if batch.failed is not None or not batch.intact(session):
            raise BatchAborted(batch.failed or "the batch's transaction ended early")
        commit(session)
    except OperationalError as error:
        session.rollback()
        if _is_retryable(error):
            raise LedgerBusy("the ledger is busy; retry shortly") from error
        raise
    except BaseException:
        session.rollback()
        raise
    for callback in batch.on_commit:
        _run_committed(callback)


def commit(session: Session) -> None:
    """Commit a ledger write. A failure before the COMMIT (the flush) means nothing was
    written; the connection lost during the COMMIT itself leaves the outcome unknown (the
    server may have committed and the answer been lost): CommitUncertain, so that no
    caller tells a client "nothing was saved" when it may have been."""
    session.flush()
    try:
        session.commit()
    except DBAPIError as error:
        if error.connection_invalidated:
            raise CommitUncertain("the database connection was lost while committing; the "
                                  "change may have been saved") from error
        raise


def once_committed(session: Session, callback: Callable[[], None]) -> None:
    """Run callback once the ledger write just made is committed: now, after a
    ledger_write of its own (it has committed), or when the enclosing ledger_batch
    commits (never, if it rolls back). For what must follow a commit and never precede
    it, such as asking a payment processor to return money. A failing callback is
    logged: what was committed stands, and its caller's answer must say so."""
    batch = session.info.get(_BATCH_KEY)
    if batch is None:
        _run_committed(callback)
    else:
        batch.on_commit.append(callback)


def _run_committed(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # noqa: BLE001 - the commit stands; the failure is logged
        log.exception("a follow-up of a committed ledger write failed")


def advisory_lock_number(name: str) -> int:
    """PostgreSQL's advisory locks are named by signed 64-bit numbers: this name's."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


def _try_advisory_lock(session: Session, name: str) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    if not session.execute(text("SELECT pg_try_advisory_xact_lock(:n)"),
                           {"n": advisory_lock_number(name)}).scalar():
        raise StillRunning("a request with this key is still being processed")


@contextmanager
def exclusive_writer(session: Session, name: str):
    """Inside ledger_batch(): make `name` the batch's only writer until the block ends;
    ledger_write() refuses meanwhile. For a writer that keeps part of the ledger in memory
    and writes its rows later (GiftIntake): any other write would read a ledger without
    those rows, or change what the writer holds. Yields the batch, whose joined() the writer
    wraps each of its writes in, so that a failure still stops the batch from committing.
    """
    batch = session.info.get(_BATCH_KEY)
    if batch is None:
        raise RuntimeError(f"{name} runs only inside ledger_batch()")
    if batch.exclusive is not None:
        raise RuntimeError(f"{batch.exclusive} is already open in this batch")
    batch.exclusive = name
    try:
        yield batch
    finally:
        batch.exclusive = None


def _plan_for_growing_tables(session: Session) -> None:
    """PostgreSQL: plan every statement of this transaction for the tables as they are now.

    A batch (an import of 100,000 gifts) grows the ledger's tables by orders of magnitude
    inside one transaction, and no ANALYZE can see rows that are not committed. PostgreSQL
    caches a generic plan for a statement run over and over: psycopg prepares the
    service's statements after a few runs, and the foreign-key checks (decision and
    attribution to gift) are cached plans too. Planned while the gift table was empty or
    tiny, "SELECT ... WHERE external_ref = $1" and the key checks became sequential scans
    and stayed so: every row read the whole table again, ~13 ms a row at 100,000. A custom
    plan per execution sizes the tables as they are (their physical size), so the indexes
    are used once the tables grow; planning these small statements costs microseconds.
    SET LOCAL: only for this transaction; the setting ends with the commit or rollback.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


@contextmanager
def plans_for_point_writes(session: Session):
    """PostgreSQL, inside ledger_batch(): reuse index plans while a bulk writer runs.

    What the batch's force_custom_plan (see _plan_for_growing_tables) costs in a bulk
    write: every foreign-key check of every copied row (a gift's donor; an attribution's
    gift and donor; a decision's gift) is planned again, about a third of the time a
    100,000-gift import spent in the database. Everything a GiftIntake runs is a lookup or
    write by key, so here generic plans are allowed again (planned once, reused), and
    sequential scans are priced out so that a generic plan made while a table is still
    nearly empty is an index scan, the plan that stays right as it grows. Both settings go
    back when the block ends; SET LOCAL ends with the transaction in any case.
    """
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(text("SET LOCAL plan_cache_mode = auto"))
        session.execute(text("SET LOCAL enable_seqscan = off"))
    yield
    if postgresql:
        session.execute(text("SET LOCAL enable_seqscan = on"))
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _is_retryable(error: DBAPIError) -> bool:
    text = str(error.orig).lower() if error.orig else str(error).lower()
    code = getattr(error.orig, "sqlstate", None)
    return code in {"40001", "40P01", "55P03"} or "locked" in text or "busy" in text
