"""Pledges can be cancelled with a day and a reason.

Revision ID: 0033
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pledge", sa.Column("cancelled_on", sa.Date(), nullable=True))
    op.add_column("pledge", sa.Column("cancel_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    for column in ("cancel_reason", "cancelled_on"):
        op.execute(f"ALTER TABLE pledge DROP COLUMN {column}")
