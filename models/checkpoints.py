"""Signed checkpoints of the audit chain: an anchor outside the database's control.

A checkpoint records the chain's length and head hash at a moment, signed with an Ed25519
key that lives in a file or the environment, never in the database. Someone who can edit
the database can rewrite every audit hash, but not sign the rewritten head: verification
trusts only public keys from the configuration (app.ledger.signing), never the one stored
here, which is kept so that a reader knows which key signed and can check offline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from models.base import utcnow


class AuditCheckpoint(SQLModel, table=True):
    __tablename__ = "audit_checkpoint"
    __table_args__ = (
        CheckConstraint("length >= 1", name="length_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: How many audit entries the chain had: the head is the length-th entry in id order.
    length: int
    #: The id of that entry (a shortcut to find it; the signature covers length and head).
    #: No foreign key: a deleted entry must show up as a failed checkpoint, not be blocked
    #: by a constraint whoever deletes it can drop.
    entry_id: int
    #: Hash of that entry.
    head: str = Field(max_length=64)
    #: When it was signed (UTC); part of the signed message.
    signed_at: datetime = Field(default_factory=utcnow)
    #: The published disclosure this checkpoint was taken for, and that disclosure's content
    #: hash (signed too, so the disclosure can be checked offline). None for a scheduled one.
    disclosure_id: int | None = Field(default=None, foreign_key="published_disclosure.id",
                                      index=True)
    content_hash: str | None = Field(default=None, max_length=64)
    #: First 16 hex digits of SHA-256 of the raw public key.
    key_id: str = Field(max_length=16)
    #: The raw 32-byte Ed25519 public key, hex. Informative only: verification trusts keys
    #: from the configuration, never this column alone.
    public_key: str = Field(max_length=64)
    #: The Ed25519 signature of the checkpoint's message (app.ledger.checkpoints), hex.
    signature: str = Field(max_length=128)


def _append_only() -> None:
    from models.gifts import make_append_only

    make_append_only(AuditCheckpoint)


_append_only()
