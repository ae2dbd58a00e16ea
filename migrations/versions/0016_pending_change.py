"""pending_change: changes that weaken enforcement wait for a second person

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-04 18:00:00

A new policy version, uncovering a lab, detaching an affiliate, removing a lab's name,
clearing a senior flag, shortening or deleting an affiliation: each is stored here and
applies only when a second person (reviewer or admin, not the proposer) approves it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("proposed", sa.JSON(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("weakens", sa.JSON(), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=False),
        sa.Column("proposed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("result_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('policy_version', 'organization', 'affiliation', 'affiliation_removal')",
            name=op.f("ck_pending_change_kind")),
        sa.CheckConstraint("state IN ('pending', 'approved', 'declined')",
                           name=op.f("ck_pending_change_state")),
        sa.CheckConstraint("decided_by_id IS NULL OR decided_by_id <> proposed_by_id",
                           name=op.f("ck_pending_change_second_person")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff_user.id"],
                                name=op.f("fk_pending_change_decided_by_id_staff_user")),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["staff_user.id"],
                                name=op.f("fk_pending_change_proposed_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_change")),
    )
    op.create_index("ix_pending_change_state", "pending_change", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pending_change_state", table_name="pending_change")
    op.drop_table("pending_change")
