"""Staff users, their role, and API tokens (stored hashed)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from models.base import in_list, utcnow

ROLES = ("viewer", "fundraiser", "reviewer", "finance", "admin")


class User(SQLModel, table=True):
    __tablename__ = "staff_user"
    __table_args__ = (CheckConstraint(in_list("role", ROLES), name="role"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    #: Argon2id hash.
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=20)
    active: bool = Field(default=True)
    #: Part of the session cookie's identity; rotated at sign-out so old cookies stop working.
    session_nonce: str = Field(default_factory=lambda: secrets.token_hex(16), max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    #: When the account got its current role. An account may approve overrides and
    #: changes only once it has held a reviewing role this long (policy: approver_min_age_days),
    #: so an admin cannot make a second reviewer and approve with it at once.
    role_since: datetime = Field(default_factory=utcnow)
    #: Base32 TOTP secret (RFC 6238) once the user has enrolled a second factor.
    totp_secret: str | None = Field(default=None, max_length=64)
    #: The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: int | None = None
    #: A second factor being set up: its new secret, kept here and never in the session
    #: cookie (signed, not encrypted: readable by whoever sees it) until a code from it
    #: confirms it. Shown once, on the page that made it (app.auth.second_factor).
    totp_pending_secret: str | None = Field(default=None, max_length=64)
    #: When that secret was made: it can be confirmed for second_factor.PENDING_VALID.
    totp_pending_at: datetime | None = None


#: What a one-time account link is for.
LINK_PURPOSES = ("invite", "reset")


class AccountLink(SQLModel, table=True):
    """A one-time link that lets a person set their own password: an admin's invitation
    of a new user, or a password reset. Only its hash is stored; it expires and works once."""

    __tablename__ = "account_link"
    __table_args__ = (CheckConstraint(in_list("purpose", LINK_PURPOSES), name="purpose"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    purpose: str = Field(max_length=10)
    #: SHA-256 of the link's secret part.
    token_hash: str = Field(max_length=64, unique=True)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    name: str = Field(default="api", max_length=100)
    #: SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per key, for growing delays (app.auth.throttle)."""

    __tablename__ = "sign_in_throttle"
    #: SHA-256 of "account:<email>", "address:<client address>" or "device:<browser id>":
    #: the same for unknown emails as for known ones, and no list of what people typed.
    key: str = Field(primary_key=True, max_length=64)
    #: Failures counted since the key was last cleared or forgotten.
    failures: int = Field(default=0)
    last_failure_at: datetime = Field(index=True)
    #: Until then, attempts on this key are refused without checking the password.
    blocked_until: datetime | None = None
