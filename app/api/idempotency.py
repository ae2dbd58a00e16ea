"""Exactly once, whatever the network does: recording requests and the Idempotency-Key.

Every API request that records money or ledger facts (a view marked @recording) runs as
one locked ledger transaction (ledger_batch) that also builds its response. Nothing
reads the database after the commit, so a connection lost after it cannot turn a
recorded gift into an error: the client gets the response of what was committed.

With an `Idempotency-Key` header the response is also stored, by one INSERT in that same
transaction: the key and what it recorded commit together or not at all. A retry with
the same key (per token) and the same request gets the stored response again, marked
`Idempotent-Replayed: true`; with another request, a 422. Only committed responses are
stored: a refused request (4xx) wrote nothing and may simply be sent again.

The first request pays one INSERT and nothing else (PostgreSQL: also a lock taken
without waiting, before the ledger lock, so that a second request with the same key while
the first is running gets a 409 at once). No lookup precedes the work: a retry runs
again under the lock, and its key INSERT (or an earlier refusal, such as the external_ref
already recorded) finds the first request's key; the retry's transaction is rolled back
and the stored response read instead. Retries are rare; first requests are the load.
On SQLite a second request waits for the first's write lock and then gets its replay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime, timedelta
from functools import cache, wraps

from flask import Response, g, make_response, request
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.api.access import ApiError
from app.db import get_session
from app.db.locking import ledger_batch
from app.errors import StillRunning
from app.extensions import state
from models import IdempotencyKey, utcnow

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
#: Set on a response that is the stored answer of an earlier request.
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
#: How long a key is kept: a retry within this time gets the first response.
KEEP_FOR = timedelta(hours=24)
#: Expired keys are purged after a keyed request at most this often per process (and by
#: `armslength purge-idempotency-keys`).
PURGE_EVERY_SECONDS = 300

_next_purge = 0.0


class _KeyTaken(Exception):
    """The key INSERT found a live key: this request is a retry of a committed one."""


def recording(view=None, *, prepare=None):
    """Mark an API view that records money or ledger facts (inside @require, which sets the
    token): its writes and its response form one transaction, and it honours
    Idempotency-Key.

    prepare (optional): called with the view's arguments before the ledger lock is taken,
    to read what does not depend on other writes of money (the view must check, under the
    lock, that what it read is still current: app.ledger.gifts.PreparedGift). It may only
    read; its transaction ends when the lock's begins. Whatever it raises is ignored here:
    the view, under the lock, meets the same problem and answers it as it always has."""
    if view is None:
        return lambda view: recording(view, prepare=prepare)

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = idempotency_key()
        session = get_session()
        # Whether the session's open transaction has only read (the preparation): the lock
        # may then be taken inside it (ledger_batch's after_reads).
        after_reads = False
        if prepare is not None:
            try:
                prepare(*args, **kwargs)
                after_reads = True
            except Exception:  # noqa: BLE001 - the view meets it again, under the lock
                log.debug("preparing a recording request failed", exc_info=True)
                session.rollback()
        if key is None:
            with ledger_batch(session, growing=False, after_reads=after_reads):
                return make_response(view(*args, **kwargs))
        token_id = g.api_token_id
        fingerprint = request_fingerprint()
        try:
            with ledger_batch(session, advisory_key=f"idempotency:{token_id}:{key}",
                              growing=False, after_reads=after_reads):
                response = make_response(view(*args, **kwargs))
                if not store(session, token_id, key, fingerprint, response):
                    raise _KeyTaken
        except StillRunning:
            raise
        except Exception as error:
            # Rolled back. Was this key's request committed before (this is a retry), or
            # even by this very request (the commit's answer lost with the connection)?
            stored = _stored_quietly(session, token_id, key)
            if stored is None:
                if isinstance(error, _KeyTaken):  # expired in between: as good as running
                    raise StillRunning("a request with this key is still being processed") \
                        from None
                raise
            return replay(stored, fingerprint)
        _purge_now_and_then(session)
        return response

    wrapper.records = True
    return wrapper


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, or None; a 422 if it cannot be one."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise ApiError(422, "invalid input", {HEADER: [
            f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID will do)"]})
    return key


def request_fingerprint() -> str:
    """SHA-256 of what makes two requests the same: method, path, query and body (its JSON
    with sorted keys, so a client may serialise the same body differently on a retry)."""
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.query_string, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@cache
def _upsert(dialect: str):
    """INSERT the key; over an expired one (not yet purged) too, never over a live one.
    Returns no row when the key is live."""
    table = IdempotencyKey.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c.token_id, table.c.key],
        set_={name: insert.excluded[name]
              for name in ("fingerprint", "status", "body", "created_at", "expires_at")},
        where=table.c.expires_at <= insert.excluded.created_at,
    ).returning(table.c.token_id)


def store(session: Session, token_id: int, key: str, fingerprint: str,
          response: Response) -> bool:
    """Store the response under the key, in the session's transaction. False: the key is
    live already (a committed request had it)."""
    now = utcnow()
    result = session.execute(_upsert(session.get_bind().dialect.name), {
        "token_id": token_id, "key": key, "fingerprint": fingerprint,
        "status": response.status_code, "body": response.get_data(as_text=True),
        "created_at": now, "expires_at": now + KEEP_FOR,
    })
    return result.first() is not None


def stored_answer(session: Session, token_id: int, key: str,
                  now: datetime | None = None) -> IdempotencyKey | None:
    """The live stored answer of a key, or None."""
    return session.execute(
        select(IdempotencyKey).where(IdempotencyKey.token_id == token_id,
                                     IdempotencyKey.key == key,
                                     IdempotencyKey.expires_at > (now or utcnow()))
    ).scalar_one_or_none()


def _stored_quietly(session: Session, token_id: int, key: str) -> IdempotencyKey | None:
    try:
        return stored_answer(session, token_id, key)
    except Exception:  # noqa: BLE001 - the request's own error is the answer then
        log.warning("could not look up idempotency key after a failed request", exc_info=True)
        return None


def replay(stored: IdempotencyKey, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise ApiError(422, "invalid input", {HEADER: [
            "this key was used for a different request (another method, path or body); "
            "use a new key for a new request"]})
    return Response(stored.body, stored.status, mimetype="application/json",
                    headers={REPLAYED_HEADER: "true"})


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Delete the keys kept long enough; returns how many. Commits."""
    result = session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.expires_at <= (now or utcnow())))
    session.commit()
    return result.rowcount


def _purge_now_and_then(session: Session) -> None:
    """After a keyed request's commit, at most every PURGE_EVERY_SECONDS per process, in a
    transaction of its own and outside the ledger lock. Its failure never changes the
    response: that is what was committed."""
    global _next_purge
    now = time.monotonic()
    if now < _next_purge:
        return
    _next_purge = now + PURGE_EVERY_SECONDS
    try:
        purge_expired(session)
    except Exception:  # noqa: BLE001 - logged; the committed response stands
        log.warning("purging expired idempotency keys failed", exc_info=True)
        try:
            session.rollback()
        except Exception:  # noqa: BLE001
            log.debug("rollback after a failed purge failed", exc_info=True)


def purge_all_expired() -> int:
    """For the CLI: purge in the app's database."""
    with state().sessions() as session:
        return purge_expired(session)
