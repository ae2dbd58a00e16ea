"""public_note on decisions and override requests: what may be published, apart from the note

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:00:00

A reviewer's note was published word for word in the conflict-of-interest disclosure.
Decisions and override requests now carry an optional public_note, the only text the
disclosure shows; the note stays internal. Existing rows get none: the disclosure says
"no public justification given" for them (published disclosures are frozen and unchanged).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decision") as batch:
        batch.add_column(sa.Column("public_note", sa.Text(), nullable=True))
    with op.batch_alter_table("override_request") as batch:
        batch.add_column(sa.Column("public_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("override_request") as batch:
        batch.drop_column("public_note")
    with op.batch_alter_table("decision") as batch:
        batch.drop_column("public_note")
