"""Password sign-in with lockout after repeated failures."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.db.locking import ledger_write
from app.ledger import audit
from app.ledger.audit import Actor
from models import User, utcnow

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
# Verified against when the email is unknown, so both paths cost one Argon2 check.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


@dataclass(frozen=True)
class SignIn:
    user: User | None
    message: str | None = None


def authenticate(session: Session, email: str, password: str, now: datetime | None = None) -> SignIn:
    now = now or utcnow()
    refused = SignIn(None, "Email or password is wrong.")
    with ledger_write(session):
        user = session.execute(
            select(User).where(User.email == email.strip().lower())
        ).scalar_one_or_none()
        if user is None:
            verify_password(_DUMMY_HASH, password)
            return refused
        if user.locked_until is not None and user.locked_until > now:
            return SignIn(None, "Too many failed attempts. Try again in 15 minutes.")
        actor = Actor(f"web:{user.email}", user.id, user.role)
        if not user.active or not verify_password(user.password_hash, password):
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILURES:
                user.locked_until = now + LOCKOUT
                user.failed_logins = 0
                audit.append(session, actor, "user.locked_out", "user", user.id, {})
            return refused
        user.failed_logins = 0
        user.locked_until = None
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        audit.append(session, actor, "user.signed_in", "user", user.id, {})
    return SignIn(user)


def end_sessions(session: Session, user_id: int) -> None:
    """Rotate the user's session nonce: every cookie issued before stops working."""
    with ledger_write(session):
        user = session.get(User, user_id)
        if user is not None:
            user.session_nonce = secrets.token_hex(16)
            audit.append(session, Actor(f"web:{user.email}", user.id, user.role),
                         "user.signed_out", "user", user.id, {})
