"""Creating users and API tokens; resolving a bearer token to its user."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlmodel import Session

from app.auth.passwords import hash_password
from app.ledger import audit
from app.ledger.audit import Actor
from app.ledger.errors import NotFound, ValidationFailed
from app.ledger.locking import ledger_write
from models import ApiToken, User, utcnow
from models.schemas import UserCreate

TOKEN_PREFIX = "al_"  # noqa: S105 - a visible prefix, not a secret


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
                     {"email": email, "role": data.role})
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
                     {"token_id": record.id, "name": name})
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    _token, user = row
    return user if user.active else None


def revoke_token(session: Session, token_id: int, actor: Actor) -> None:
    with ledger_write(session):
        record = session.get(ApiToken, token_id)
        if record is None:
            raise NotFound("token", token_id)
        record.revoked_at = utcnow()
        audit.append(session, actor, "token.revoked", "user", record.user_id,
                     {"token_id": token_id})
