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
    #: Consecutive failed sign-ins; reset on success. Too many lock the account for a while.
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = None
    #: Part of the session cookie's identity; rotated at sign-out so old cookies stop working.
    session_nonce: str = Field(default_factory=lambda: secrets.token_hex(16), max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


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
