"""One-time links with which people set their own password: an admin's invitation of a
new user, and a password reset.

The admin never chooses or learns a staff member's password: an invitation creates the
account with no usable password and a link; whoever opens the link sets one. A link is
256 random bits, stored only as its SHA-256, works once, and expires (invitations after
INVITE_VALID, resets after RESET_VALID). A new link for an account cancels its unused
older ones. Every step is in the hash-chained audit trail.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from app.auth.passwords import hash_password
from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.audit import Actor
from models import ROLES, AccountLink, User, utcnow

INVITE_VALID = timedelta(days=7)
RESET_VALID = timedelta(hours=24)
MIN_PASSWORD = 12
MAX_PASSWORD = 200


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationFailed({"password": [
            f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"]})


def _new_link(session: Session, user: User, purpose: str, valid: timedelta,
              actor: Actor) -> str:
    now = utcnow()
    # An account has at most one working link: a new one cancels the unused older ones.
    cancelled = _cancel_unused_links(session, user.id, now)
    secret = secrets.token_urlsafe(32)
    link = AccountLink(user_id=user.id, purpose=purpose, token_hash=_hash(secret),
                       created_by_id=actor.user_id, created_at=now, expires_at=now + valid)
    session.add(link)
    session.flush()
    audit.append(session, actor, f"user.{purpose}_link_created", "user", user.id,
                 {"email": user.email, "link_id": link.id,
                  "expires_at": link.expires_at.isoformat()}, sealed=[link, *cancelled])
    return secret


def _cancel_unused_links(session: Session, user_id: int, now: datetime) -> list[AccountLink]:
    """Expire the account's unused links that still work; the rows, for the entry to seal
    (links are sealed: one inserted or revived behind the app's back would let an insider
    set the account's password)."""
    links = session.execute(select(AccountLink).where(
        AccountLink.user_id == user_id, AccountLink.used_at.is_(None),
        AccountLink.expires_at > now)).scalars().all()
    for link in links:
        link.expires_at = now
    return list(links)


def invite_user(session: Session, email: str, role: str, actor: Actor) -> tuple[User, str]:
    """Create an account with no usable password and return it with its invitation secret."""
    email = email.strip().lower()
    if role not in ROLES:
        raise ValidationFailed({"role": [f"must be one of: {', '.join(ROLES)}"]})
    with ledger_write(session):
        if session.execute(select(User.id).where(User.email == email)).first():
            raise ValidationFailed({"email": ["a user with this email exists"]})
        # A hash of a password nobody knows: the account cannot sign in until the link is used.
        user = User(email=email, role=role, password_hash=hash_password(secrets.token_hex(32)))
        session.add(user)
        session.flush()
        audit.append(session, actor, "user.invited", "user", user.id,
                     {"email": email, "role": role}, sealed=[user])
        secret = _new_link(session, user, "invite", INVITE_VALID, actor)
    return user, secret


def reset_link(session: Session, user_id: int, actor: Actor) -> tuple[User, str]:
    """A password-reset link for an active account (sent to its own address by the caller)."""
    with ledger_write(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        if not user.active:
            raise NotAllowed("the user is inactive; reactivate the account first")
        secret = _new_link(session, user, "reset", RESET_VALID, actor)
    return user, secret


def open_link(session: Session, secret: str, now: datetime | None = None) -> AccountLink | None:
    """The working link with this secret, or None (unknown, used or expired)."""
    if not secret or len(secret) > 100:
        return None
    link = session.execute(
        select(AccountLink).where(AccountLink.token_hash == _hash(secret))
    ).scalar_one_or_none()
    if link is None or link.used_at is not None or link.expires_at <= (now or utcnow()):
        return None
    return link


def use_link(session: Session, secret: str, password: str) -> User:
    """Set the account's password from a working link; the link is spent, and every
    session signed in before ends."""
    check_password_rules(password)
    new_hash = hash_password(password)  # the slow part, before the lock
    with ledger_write(session):
        link = open_link(session, secret)
        if link is None:
            raise NotAllowed("this link is not valid: it was used, replaced or has expired")
        user = session.get(User, link.user_id)
        if not user.active:
            raise NotAllowed("the account is inactive")
        link.used_at = utcnow()
        user.password_hash = new_hash
        user.session_nonce = secrets.token_hex(16)
        audit.append(session, Actor(f"link:{user.email}", user_id=user.id, role=user.role),
                     f"user.password_set_by_{link.purpose}", "user", user.id,
                     {"email": user.email, "link_id": link.id}, sealed=[user, link])
    return user


def set_password(session: Session, user_id: int, password: str, actor: Actor,
                 *, clear_second_factor: bool = False) -> User:
    """Set a password directly: the user changing their own (after checking the current
    one), or the server's operator (armslength reset-password). Ends every session."""
    check_password_rules(password)
    new_hash = hash_password(password)
    with ledger_write(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        user.password_hash = new_hash
        user.session_nonce = secrets.token_hex(16)
        if clear_second_factor:
            user.totp_secret = None
            user.totp_last_step = None
            user.totp_pending_secret = None
            user.totp_pending_at = None
        if actor.user_id != user.id:
            # Someone else set the password (whoever runs the server): until the waiting
            # time has passed again, the account is not a second person
            # (app.ledger.approvers), or the operator could approve as it at once.
            user.role_since = utcnow()
        # Unused links stop working: the password they would set has been set.
        cancelled = _cancel_unused_links(session, user.id, utcnow())
        audit.append(session, actor, "user.password_changed", "user", user.id,
                     {"email": user.email, "second_factor_cleared": clear_second_factor},
                     sealed=[user, *cancelled])
    return user
