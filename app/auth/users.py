"""Creating and administering users and API tokens; resolving a bearer token to its user.

An admin may not deactivate or demote themselves, and no change may leave the
organisation without an active admin: somebody must always be able to undo a change.

Every change here is an admin's (or a command's) act recorded in the hash-chained audit
trail, so it runs under the ledger lock, which serialises appends to the chain: rare, and
a busy ledger answers "retry shortly" (LedgerBusy). What runs on every request or
sign-in takes no lock: resolving a bearer token (user_for_token) is a single read, and
sign-in and sign-out write in short transactions of their own (app.auth.login).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, select
from sqlmodel import Session

from app.auth import throttle
from app.auth.passwords import hash_password
from app.db.locking import ledger_write
from app.errors import NotAllowed, NotFound, ValidationFailed
from app.ledger import audit
from app.ledger.approvers import REVIEWING_ROLES
from app.ledger.audit import Actor
from models import ROLES, ApiToken, SignInThrottle, User, utcnow
from models.schemas import UserCreate

TOKEN_PREFIX = "al_"  # noqa: S105 - a visible prefix, not a secret  # nosec B105


def token_hash(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, data: UserCreate, actor: Actor) -> User:
    with ledger_write(session):
        email = data.email.lower()
        if session.execute(select(User.id).where(User.email == email)).first():
            raise ValidationFailed({"email": ["a user with this email exists"]})
        user = User(email=email, role=data.role, password_hash=hash_password(data.password))
        session.add(user)
        session.flush()
        audit.append(session, actor, "user.created", "user", user.id,
                     {"email": email, "role": data.role}, sealed=[user])
    return user


def create_token(session: Session, email: str, actor: Actor, name: str = "api") -> str:
    """Create a token for the user and return it; only its hash is stored."""
    with ledger_write(session):
        user = session.execute(select(User).where(User.email == email.lower())).scalar_one_or_none()
        if user is None:
            raise NotFound("user", email)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = ApiToken(user_id=user.id, name=name, token_hash=token_hash(token))
        session.add(record)
        session.flush()
        audit.append(session, actor, "token.created", "user", user.id,
                     {"token_id": record.id, "name": name}, sealed=[record])
    return token


@dataclass(frozen=True)
class TokenHolder:
    """Who a live bearer token speaks for: what an API request needs of its user."""

    token_id: int
    id: int
    email: str
    role: str


#: The bearer check of every API request: one indexed read of four columns. It is not
#: cached: a revoked token or a deactivated user is refused on the very next request, in
#: every process. (Loading the token and the user as ORM objects, all 17 columns with
#: their identity-map bookkeeping, was most of the cheapest request's time.)
_TOKEN_HOLDER = (
    select(ApiToken.id, User.id, User.email, User.role)
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None),
           User.active.is_(True))
)


def token_holder(session: Session, token: str) -> TokenHolder | None:
    """The live token's holder, if the token is live and its user active; else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    # Through the session's connection: plain columns need none of the ORM's result
    # handling (about half the cost of a statement on the hot path), and nothing is pending.
    row = session.connection().execute(_TOKEN_HOLDER, {"token_hash": token_hash(token)}).first()
    return TokenHolder(*row) if row is not None else None


def user_for_token(session: Session, token: str) -> User | None:
    found = token_and_user(session, token)
    return found[1] if found else None


def token_and_user(session: Session, token: str) -> tuple[ApiToken, User] | None:
    """The live token and its active user, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_token, user = row
    return (api_token, user) if user.active else None


def revoke_token(session: Session, token_id: int, actor: Actor) -> None:
    with ledger_write(session):
        record = session.get(ApiToken, token_id)
        if record is None:
            raise NotFound("token", token_id)
        if record.revoked_at is not None:
            raise NotAllowed("the token is already revoked")
        record.revoked_at = utcnow()
        audit.append(session, actor, "token.revoked", "user", record.user_id,
                     {"token_id": token_id}, sealed=[record])


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def _other_active_admins(session: Session, user_id: int) -> int:
    return len(session.execute(
        select(User.id).where(User.role == "admin", User.active.is_(True), User.id != user_id)
    ).all())


def change_role(session: Session, user_id: int, role: str, actor: Actor) -> User:
    """Give a user another role. Takes effect on their next request."""
    if role not in ROLES:
        raise ValidationFailed({"role": [f"must be one of: {', '.join(ROLES)}"]})
    with ledger_write(session):
        user = _user(session, user_id)
        if user.role == role:
            return user
        if user.role == "admin":
            if user.id == actor.user_id:
                raise NotAllowed("you cannot remove your own admin role; ask another admin")
            if user.active and _other_active_admins(session, user.id) == 0:
                raise NotAllowed("this is the last active admin; make someone else admin first")
        before = user.role
        user.role = role
        # The approval waiting time counts from now (app.ledger.approvers).
        user.role_since = utcnow()
        revoked = []
        if role in REVIEWING_ROLES:
            # Tokens made while the account could not review must not gain a reviewer's
            # powers: an admin may have made them (admins cannot make a reviewer's tokens).
            revoked = _revoke_all(session, user)
        audit.append(session, actor, "user.role_changed", "user", user.id,
                     {"email": user.email, "from": before, "to": role,
                      "revoked_token_ids": [t.id for t in revoked]}, sealed=[user, *revoked])
    return user


def deactivate_user(session: Session, user_id: int, actor: Actor) -> User:
    """Stop a user from signing in or using the API: ends their sessions, revokes their tokens."""
    with ledger_write(session):
        user = _user(session, user_id)
        if user.id == actor.user_id:
            raise NotAllowed("you cannot deactivate yourself; ask another admin")
        if not user.active:
            raise NotAllowed("the user is already inactive")
        if user.role == "admin" and _other_active_admins(session, user.id) == 0:
            raise NotAllowed("this is the last active admin; make someone else admin first")
        user.active = False
        user.session_nonce = secrets.token_hex(16)  # every signed-in browser is signed out
        revoked = _revoke_all(session, user)
        audit.append(session, actor, "user.deactivated", "user", user.id,
                     {"email": user.email, "revoked_token_ids": [t.id for t in revoked]},
                     sealed=[user, *revoked])
    return user


def _revoke_all(session: Session, user: User) -> list[ApiToken]:
    """Revoke the user's live tokens; the revoked rows, for the audit entry to seal."""
    tokens = session.execute(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).scalars().all()
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
    return list(tokens)


def reactivate_user(session: Session, user_id: int, actor: Actor) -> User:
    """Let an inactive user sign in again. Their old tokens stay revoked."""
    with ledger_write(session):
        user = _user(session, user_id)
        if user.active:
            raise NotAllowed("the user is already active")
        user.active = True
        _forget_failed_sign_ins(session, user)
        audit.append(session, actor, "user.reactivated", "user", user.id, {"email": user.email},
                     sealed=[user])
    return user


def unblock_sign_in(session: Session, user_id: int, actor: Actor) -> User:
    """Forget the failed sign-ins counted on the user's account, so that sign-in from any
    browser is checked again at once (the user's own known browsers never wait for the
    account's count; a new one does)."""
    with ledger_write(session):
        user = _user(session, user_id)
        failures = _forget_failed_sign_ins(session, user)
        if failures == 0:
            raise NotAllowed("no failed sign-ins are counted on this account")
        audit.append(session, actor, "user.sign_in_unblocked", "user", user.id,
                     {"email": user.email, "failures": failures})
    return user


def _forget_failed_sign_ins(session: Session, user: User) -> int:
    key = throttle.account_key(user.email)
    failures = session.execute(
        select(SignInThrottle.failures).where(SignInThrottle.key == key)
    ).scalar_one_or_none()
    session.execute(delete(SignInThrottle).where(SignInThrottle.key == key))
    return failures or 0


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    """A user's tokens, newest first. Only hashes are stored; no secret can be shown again."""
    return list(session.execute(
        select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
    ).scalars())
