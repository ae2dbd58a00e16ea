"""interaction, task, donor contact preferences: the relationship beyond money

Revision ID: 0026
Revises: 0021
Create Date: 2026-12-04 21:00:00

A donor's timeline of calls, meetings, e-mails and events; staff tasks with an assignee
and a due date; how a donor agreed to be contacted (and do-not-contact).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (a constant default) on both databases: a batch copy of donor would
    # have to drop a table every ledger table references.
    op.add_column("donor", sa.Column("do_not_contact", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    for column in ("email_ok", "post_ok", "phone_ok"):
        op.add_column("donor", sa.Column(column, sa.Boolean(), nullable=False,
                                         server_default=sa.true()))
    op.create_table(
        "interaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('call', 'meeting', 'email', 'event', 'letter', 'note')",
                           name=op.f("ck_interaction_kind")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_interaction_donor_id_donor")),
        sa.ForeignKeyConstraint(["author_id"], ["staff_user.id"],
                                name=op.f("fk_interaction_author_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction")),
    )
    op.create_index("ix_interaction_donor_occurred", "interaction", ["donor_id", "occurred_on"])
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f("ck_task_status")),
        sa.CheckConstraint("(status = 'done') = (done_at IS NOT NULL)",
                           name=op.f("ck_task_done_when_done")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"], name=op.f("fk_task_donor_id_donor")),
        sa.ForeignKeyConstraint(["assignee_id"], ["staff_user.id"],
                                name=op.f("fk_task_assignee_id_staff_user")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_task_created_by_id_staff_user")),
        sa.ForeignKeyConstraint(["done_by_id"], ["staff_user.id"],
                                name=op.f("fk_task_done_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    op.create_index("ix_task_donor_id", "task", ["donor_id"])
    op.create_index("ix_task_assignee_status_due", "task", ["assignee_id", "status", "due_on"])


def downgrade() -> None:
    op.drop_index("ix_task_assignee_status_due", table_name="task")
    op.drop_index("ix_task_donor_id", table_name="task")
    op.drop_table("task")
    op.drop_index("ix_interaction_donor_occurred", table_name="interaction")
    op.drop_table("interaction")
    # DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    for column in ("phone_ok", "post_ok", "email_ok", "do_not_contact"):
        op.execute(f"ALTER TABLE donor DROP COLUMN {column}")
