"""Engine and sessions. On SQLite a ledger write takes the database write lock at
BEGIN (BEGIN IMMEDIATE) so read-then-write checks (the lab-employee cap) cannot
interleave; PostgreSQL serialises money writers on a locked row instead (see
app.db.locking)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, g
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, create_engine

#: Connection execution option that marks a transaction as a ledger write (see app.db.locking).
LEDGER_WRITE_OPTION = "armslength_ledger_write"

#: How long a writer waits for the database/ledger lock before giving up (LedgerBusy, 503).
DEFAULT_LOCK_WAIT_SECONDS = 30


def make_engine(url: str) -> Engine:
    """The lock wait can be shortened in DATABASE_URL itself: SQLite takes pysqlite's own
    `?timeout=<seconds>`; PostgreSQL takes libpq's `?options=-c lock_timeout=<ms>`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        wait = float(parsed.query.get("timeout", DEFAULT_LOCK_WAIT_SECONDS))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": wait})
        _sqlite_begin_immediate(engine, busy_timeout_ms=int(wait * 1000))
        return engine
    # Without a lock_timeout a writer queued on the ledger lock row would wait forever.
    connect_args = {} if "options" in parsed.query else {
        "options": f"-c lock_timeout={DEFAULT_LOCK_WAIT_SECONDS * 1000}"
    }
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args=connect_args)


def _unicode_lower(value):
    return value.lower() if isinstance(value, str) else value


def _sqlite_begin_immediate(engine: Engine, busy_timeout_ms: int) -> None:
    """SQLAlchemy's documented recipe: let SQLAlchemy, not pysqlite, emit BEGIN."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's lower() folds ASCII only; searches use this (app.ledger.search).
        dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # Ledger writes take the write lock at BEGIN, so their read-then-write check
        # cannot interleave with another writer; plain reads stay DEFERRED and do not
        # block anyone (WAL lets them read while a writer works).
        if connection.get_execution_options().get(LEDGER_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def session_factory(engine: Engine, timezone: ZoneInfo = UTC) -> sessionmaker:
    """Sessions that know the organisation's time zone (`org_today`): the ledger's dates,
    such as "no gift received after today", are the organisation's local dates."""
    return sessionmaker(engine, class_=Session, expire_on_commit=False,
                        info={"org_timezone": timezone})


def org_today(session: Session) -> date:
    """Today's date in the organisation's time zone (ORG_TIMEZONE), for this session."""
    return datetime.now(session.info.get("org_timezone", UTC)).date()


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["armslength"].sessions()
    return g.db_session


def close_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        discard(session, close=True)


def discard(session: Session, *, close: bool = False) -> None:
    """Roll back (and close) a request's session, for an error answer or the teardown.
    On a dead connection that rollback fails too; it must never replace the response,
    which may report what was already committed: the failure is logged instead."""
    try:
        if close:
            session.close()
        else:
            session.rollback()
    except Exception:  # noqa: BLE001 - see above
        logging.getLogger(__name__).warning("discarding the request's session failed",
                                            exc_info=True)
