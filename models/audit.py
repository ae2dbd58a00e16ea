"""Append-only audit trail; each row's hash covers its content and the previous row's hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.base import utcnow

GENESIS_HASH = "0" * 64


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="staff_user.id")
    #: Who acted, readable without a join: "api:ana@example.org", "cli", "stripe".
    actor: str = Field(max_length=320)
    action: str = Field(max_length=60, index=True)
    entity_type: str = Field(max_length=40)
    entity_id: int | None = Field(default=None, index=True)
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: Hashes of the rows this entry wrote or changed, as written: [[table, id, sha256], ...]
    #: (app.ledger.row_hashes); None on entries that touch no sealed row.
    row_hashes: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


def _append_only() -> None:
    from models.gifts import make_append_only

    make_append_only(AuditEntry)


_append_only()
