"""audit_checkpoint refuses UPDATE and DELETE on SQLite too

Revision ID: 0019
Revises: 0024
Create Date: 2026-12-04 21:00:00

Migration 0011 made audit_checkpoint append-only on PostgreSQL with a trigger of its own;
SQLite had only the ORM's guard, so anyone with the file could delete the checkpoint rows
(and then rewrite the chain) with plain SQL. The same triggers as the other append-only
tables (models.append_only) now guard it on SQLite. On PostgreSQL nothing changes: 0011's
trigger already refuses.
"""
from collections.abc import Sequence

from alembic import op

from models.append_only import create_statements, drop_statements

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in create_statements("sqlite", "audit_checkpoint"):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in drop_statements("sqlite", "audit_checkpoint"):
            op.execute(statement)
