"""Password sign-in and sign-out, outside the ledger lock.

Sign-in reads, checks the password (Argon2, the slow part) outside any transaction, and
writes only what it must, in a short transaction of its own (app.auth.throttle): a busy
ledger (an import) neither delays a sign-in nor makes it fail, and a flood of failed
attempts does not slow the ledger's writers.

Sign-ins and sign-outs are written to the application log (logger "armslength.auth"),
not to the hash-chained audit trail: appending to the chain takes the ledger lock, and
events an attacker can cause at will would fill it. What admins do to users (unblocking
sign-in included) stays in the audit trail (app.auth.users).

Failed attempts slow down per account, per client address and per known browser with
growing delays (app.auth.throttle); nothing is ever locked for good, and an unknown email
is answered and throttled exactly like an account's, so neither answer tells an attacker
which accounts exist.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from app.auth import throttle
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.db.locking import ledger_write
from app.errors import LedgerBusy
from models import User, utcnow

log = logging.getLogger("armslength.auth")

WRONG = "Email or password is wrong."
# Verified against when the email is unknown, so both paths cost one Argon2 check.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


@dataclass(frozen=True)
class Device:
    """A browser that signed in to an account before (the web layer's signed cookie)."""

    user_id: int
    device_id: str


@dataclass(frozen=True)
class SignIn:
    user: User | None
    message: str | None = None
    #: Set when the attempt was refused unchecked: wait this long before trying again.
    retry_after: timedelta | None = None
    #: On success: the browser's device id (kept if it had one for this account, else new).
    device_id: str | None = None


def throttled_message(wait: timedelta) -> str:
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    return f"Too many failed attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."


def authenticate(session: Session, email: str, password: str, *, address: str,
                 device: Device | None = None, now: datetime | None = None) -> SignIn:
    """Check a sign-in attempt from a client `address`, with the browser's `device` if it
    has a valid device cookie. `now` is injectable for tests."""
    now = now or utcnow()
    email = email.strip().lower()
    engine = session.get_bind()
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    device_key = throttle.device_key(device.device_id) if device else None
    conn = session.connection()
    # A browser the account's owner signed in with before is throttled on its own, so an
    # attacker elsewhere cannot shut its owner out; once it is blocked itself, the
    # cookie counts for nothing and the account's and address's limits apply.
    trusted = (device is not None and user is not None and device.user_id == user.id
               and throttle.blocked_until(conn, [device_key], now) is None)
    counted = ({device_key: throttle.DEVICE} if trusted else
               {throttle.account_key(email): throttle.ACCOUNT,
                throttle.address_key(address): throttle.ADDRESS})
    until = throttle.blocked_until(conn, counted, now)
    session.commit()  # end the read: nothing is held while Argon2 works
    if until is not None:
        log.info("sign-in throttled: %s from %s until %s", email, address, until.isoformat())
        return SignIn(None, throttled_message(until - now), retry_after=until - now)

    if user is None:
        verify_password(_DUMMY_HASH, password)
        ok = False
    else:
        ok = verify_password(user.password_hash, password) and user.active
    if not ok:
        throttle.record_failure(engine, counted, now)
        log.info("sign-in refused: %s from %s", email, address)
        return SignIn(None, WRONG)

    # A success forgets the failures of what it was counted on; never the address's,
    # or an attacker with any account of their own could reset their address's count.
    throttle.clear(engine, [device_key] if trusted else [throttle.account_key(email)])
    if needs_rehash(user.password_hash):
        _store_rehash(session, user, hash_password(password))
    log.info("signed in: %s from %s", email, address)
    return SignIn(user, device_id=device.device_id if trusted else secrets.token_urlsafe(18))


def _store_rehash(session: Session, user: User, new_hash: str) -> None:
    """Store the password's hash under today's Argon2 parameters. The hash is sealed in the
    audit chain (app.ledger.row_hashes), so this is a ledger write with its entry; it
    happens once per account when the parameters change, so sign-in stays off the lock
    otherwise. A busy ledger skips it: the next sign-in tries again."""
    from app.ledger import audit

    old_hash = user.password_hash
    try:
        with ledger_write(session):
            account = session.get(User, user.id)
            if account is None or account.password_hash != old_hash:
                return  # changed meanwhile (a reset): not ours to overwrite
            account.password_hash = new_hash
            audit.append(session, audit.Actor(f"sign-in:{account.email}", user_id=account.id,
                                              role=account.role),
                         "user.password_rehashed", "user", account.id,
                         {"email": account.email}, sealed=[account])
    except (LedgerBusy, OperationalError):
        log.warning("sign-in: a password hash was not upgraded (the database was busy); "
                    "the next sign-in tries again")


def end_sessions(session: Session, user_id: int) -> bool:
    """Rotate the user's session nonce: every cookie issued before stops working.

    False if the database stayed locked (SQLite during a long import): the caller's own
    browser is still signed out, but copies of its cookie work until the next sign-out.
    """
    engine = session.get_bind()
    session.rollback()  # the request's read (loading the user) is not held during the write
    try:
        with throttle.short_write(engine) as conn:
            email = conn.execute(
                update(User).where(User.id == user_id)
                .values(session_nonce=secrets.token_hex(16)).returning(User.email)
            ).scalar_one_or_none()
    except OperationalError:
        log.warning("sign-out: user %s's other sessions could not be ended (the database "
                    "was busy)", user_id)
        return False
    log.info("signed out: %s", email)
    return True
