"""job: background work (CSV imports, big exports) with its status, progress and result

Revision ID: 0030
Revises: 0034

A row per job; the queue itself lives in huey's storage (app/jobs), not here.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("started_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_by_role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("permissions", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("input_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("phase", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')",
                           name=op.f("ck_job_status")),
        sa.CheckConstraint("progress_done >= 0 AND progress_total >= 0",
                           name=op.f("ck_job_progress")),
        sa.ForeignKeyConstraint(["started_by_id"], ["staff_user.id"],
                                name=op.f("fk_job_started_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index("ix_job_started_by_id", "job", ["started_by_id"])
    op.create_index("ix_job_kind_input_sha256", "job", ["kind", "input_sha256"])


def downgrade() -> None:
    op.drop_index("ix_job_kind_input_sha256", table_name="job")
    op.drop_index("ix_job_started_by_id", table_name="job")
    op.drop_table("job")
