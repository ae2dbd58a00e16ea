"""Every policy document that has been in force, kept verbatim.

Decisions name the version that produced them; this table keeps the text of
each version, so an old decision can always be read against its own rules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.base import utcnow


class PolicyVersion(SQLModel, table=True):
    __tablename__ = "policy_version"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=50, unique=True)
    #: The policy document as TOML, exactly as it was in force.
    document: str = Field(sa_column=Column(Text, nullable=False))
    #: "file" (shipped or POLICY_FILE, registered by init-db) or "admin" (edited in the app).
    source: str = Field(default="file", max_length=10)
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="staff_user.id")
