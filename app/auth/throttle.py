"""Sign-in throttling: growing delays per account, per client address and per known browser.

Counted per key (an account's email, a client address, a browser's device id), stored
hashed in sign_in_throttle so every worker sees the same counts. The first `free` failures
of a key cost nothing; each one after blocks the key for a delay that doubles up to a cap.
A blocked key's attempts are refused without checking the password (no Argon2 work, no
write), and are not counted: hammering a blocked key changes nothing. A quiet key is
forgotten. docs/deployment.md ("Sign-in") explains the design.

These writes never take the ledger lock, and wait for the database briefly: sign-in must
keep working while an import holds the ledger. On SQLite every write needs the one database
write lock, which an import holds throughout; a failure that cannot be written within
WRITE_WAIT_SECONDS is logged and counted in this process's memory instead (_Unwritten):
it delays further attempts on its keys as a written one would (on top of what the table
holds), and is written with the next failure that can be. Each worker process counts its
own: with W workers an attacker gets at most W times the free attempts while the import
runs, instead of unlimited ones.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from app.db import LEDGER_WRITE_OPTION
from models import SignInThrottle

log = logging.getLogger("armslength.auth")

#: How long a sign-in's own write waits for a database lock before giving up.
WRITE_WAIT_SECONDS = 2.0
#: A key with no failure for this long starts counting from zero again.
FORGET_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Limit:
    #: Failures allowed before any delay.
    free: int
    #: The delay after the first failure over `free`; it doubles with each further one.
    first_delay: timedelta
    max_delay: timedelta

    def delay_after(self, failures: int) -> timedelta | None:
        over = failures - self.free
        if over <= 0:
            return None
        return min(self.max_delay, self.first_delay * 2 ** min(over - 1, 30))


#: One account (email), from anywhere: slows down guessing one person's password.
ACCOUNT = Limit(free=5, first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=15))
#: One client address, any accounts: slows down trying many accounts (password spraying).
#: More generous, as colleagues behind one office address share it.
ADDRESS = Limit(free=20, first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=15))
#: One browser that has signed in to the account before (device cookie): the real user's
#: own typos, counted apart from whatever an attacker does elsewhere.
DEVICE = Limit(free=5, first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=15))


def key(kind: str, value: str) -> str:
    """The stored key: hashed, so the table is no list of the emails people typed."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def account_key(email: str) -> str:
    return key("account", email.strip().lower())


def address_key(address: str) -> str:
    return key("address", address)


def device_key(device_id: str) -> str:
    return key("device", device_id)


class _Unwritten:
    """Failures this process could not write (the database stayed locked), per key: how
    many, the last one's time and the key's limit. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, datetime, Limit]] = {}

    def add(self, limits: dict[str, Limit], now: datetime) -> None:
        with self._lock:
            for key_, limit in limits.items():
                count, _last, _limit = self._counts.get(key_, (0, now, limit))
                self._counts[key_] = (count + 1, now, limit)

    def of(self, keys: Iterable[str]) -> dict[str, tuple[int, datetime, Limit]]:
        with self._lock:
            return {k: self._counts[k] for k in keys if k in self._counts}

    def taken(self) -> dict[str, tuple[int, datetime, Limit]]:
        """Everything counted so far, forgotten here (the caller writes it)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            return counts

    def put_back(self, counts: dict[str, tuple[int, datetime, Limit]]) -> None:
        with self._lock:
            for key_, (count, last, limit) in counts.items():
                mine, latest, _limit = self._counts.get(key_, (0, last, limit))
                self._counts[key_] = (mine + count, max(latest, last), limit)

    def forget(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key_ in keys:
                self._counts.pop(key_, None)


_unwritten_by_engine: weakref.WeakKeyDictionary[Engine, _Unwritten] = weakref.WeakKeyDictionary()
_unwritten_made = threading.Lock()


def _unwritten(engine: Engine) -> _Unwritten:
    """The unwritten failures of one database (an app has one engine)."""
    with _unwritten_made:
        return _unwritten_by_engine.setdefault(engine, _Unwritten())


def blocked_until(conn: Connection, keys: Iterable[str], now: datetime) -> datetime | None:
    """The latest end of a block on any of the keys, if one is still running: as the
    table has it, or as failures this process could not write yet add to it."""
    keys = list(keys)
    ends = list(conn.execute(
        select(SignInThrottle.blocked_until)
        .where(SignInThrottle.key.in_(keys), SignInThrottle.blocked_until > now)
    ).scalars().all())
    for key_, (count, last, limit) in _unwritten(conn.engine).of(keys).items():
        stored, _until = failures_of(conn, key_)
        delay = limit.delay_after(stored + count)
        if delay is not None and last + delay > now:
            ends.append(last + delay)
    return max(ends, default=None)


def failures_of(conn: Connection, key_: str) -> tuple[int, datetime | None]:
    """A key's counted failures and the end of its latest block (for the admin page)."""
    row = conn.execute(
        select(SignInThrottle.failures, SignInThrottle.blocked_until)
        .where(SignInThrottle.key == key_)
    ).first()
    return (row.failures, row.blocked_until) if row else (0, None)


@contextmanager
def short_write(engine: Engine) -> Iterator[Connection]:
    """A transaction of its own that waits at most WRITE_WAIT_SECONDS for a lock.

    Raises OperationalError if the database stays locked; the caller decides what a
    write that could not be made means.
    """
    wait_ms = int(WRITE_WAIT_SECONDS * 1000)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # The pool hands this connection to others afterwards: restore its wait.
            before = conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {wait_ms}")
            conn.commit()
            # Take SQLite's write lock at BEGIN (BEGIN IMMEDIATE, see app.db), so the
            # read-then-write below cannot interleave with another sign-in's.
            conn.execution_options(**{LEDGER_WRITE_OPTION: True})
        try:
            with conn.begin():
                if not sqlite:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
                yield conn
        finally:
            if sqlite:
                conn.execution_options(**{LEDGER_WRITE_OPTION: False})
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(before)}")
                conn.commit()


def record_failure(engine: Engine, limits: dict[str, Limit], now: datetime) -> bool:
    """Count one failed attempt on each key (key -> its limit), with any this process could
    not write before. False if it could not be written (the database stayed locked): then
    it is counted in this process's memory (see the module's docstring) and logged."""
    unwritten = _unwritten(engine)
    earlier = unwritten.taken()
    try:
        with short_write(engine) as conn:
            # Forget keys quiet for a day, so the table stays as small as the attacks are.
            conn.execute(delete(SignInThrottle).where(
                SignInThrottle.last_failure_at < now - FORGET_AFTER,
                or_(SignInThrottle.blocked_until.is_(None), SignInThrottle.blocked_until < now),
            ))
            for key_, (count, _last, limit) in earlier.items():
                for _ in range(count):  # counted as of now: their blocks run from now
                    _count(conn, key_, limit, now)
            for key_, limit in limits.items():
                _count(conn, key_, limit, now)
        return True
    except OperationalError:
        unwritten.put_back(earlier)
        unwritten.add(limits, now)
        log.warning("sign-in: a failed attempt could not be written (the database was busy); "
                    "counted in this process until it can be")
        return False


def _count(conn: Connection, key_: str, limit: Limit, now: datetime) -> None:
    # Make sure the row exists, then lock it: two failures at once on one key both count.
    upsert = (postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert)
    conn.execute(upsert(SignInThrottle)
                 .values(key=key_, failures=0, last_failure_at=now)
                 .on_conflict_do_nothing(index_elements=["key"]))
    row = conn.execute(
        select(SignInThrottle.failures, SignInThrottle.last_failure_at)
        .where(SignInThrottle.key == key_).with_for_update()
    ).one()
    failures = 1 if row.last_failure_at < now - FORGET_AFTER else row.failures + 1
    delay = limit.delay_after(failures)
    conn.execute(update(SignInThrottle).where(SignInThrottle.key == key_).values(
        failures=failures, last_failure_at=now, blocked_until=now + delay if delay else None))


def clear(engine: Engine, keys: Iterable[str]) -> bool:
    """Forget the keys' failures (a successful sign-in, an admin's unblock). Writes only if
    there is something to forget, so an ordinary sign-in writes nothing."""
    keys = list(keys)
    _unwritten(engine).forget(keys)
    with engine.connect() as conn:
        present = conn.execute(
            select(SignInThrottle.key).where(SignInThrottle.key.in_(keys))
        ).first()
    if present is None:
        return True
    try:
        with short_write(engine) as conn:
            conn.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(keys)))
        return True
    except OperationalError:
        log.warning("sign-in: failed attempts could not be cleared (the database was busy)")
        return False
