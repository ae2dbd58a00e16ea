"""acknowledgement.channel: a letter e-mailed from the app, or posted and recorded by staff

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:00:00

Every acknowledgement recorded before this revision was e-mailed from the app.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("acknowledgement") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=10), nullable=False,
                                   server_default="email"))
        batch.create_check_constraint("channel", "channel IN ('email', 'post')")


def downgrade() -> None:
    with op.batch_alter_table("acknowledgement") as batch:
        batch.drop_constraint("channel", type_="check")  # named by the convention
        batch.drop_column("channel")
