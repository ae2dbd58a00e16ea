"""Idempotency keys of the JSON API: the first answer to a recording request, kept so that
a client that lost it (a dropped connection after the commit) gets it again instead of
recording twice. Written in the same transaction as what the request recorded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.base import utcnow


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"

    #: Keys are per token: two clients may use the same key for different requests.
    token_id: int = Field(foreign_key="api_token.id", primary_key=True)
    #: The client's Idempotency-Key header, as sent.
    key: str = Field(primary_key=True, max_length=255)
    #: SHA-256 of the method, path and body of the first request (app.api.idempotency):
    #: the same key with another request is refused, never answered with this response.
    fingerprint: str = Field(max_length=64)
    #: The first response's status and JSON body, replayed as they were.
    status: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    #: After this instant the key is forgotten (and purged): at least 24 hours.
    expires_at: datetime = Field(index=True)
