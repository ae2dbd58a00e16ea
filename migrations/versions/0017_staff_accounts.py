"""staff accounts: invitations and reset links, a second factor, and how long a role is held

Revision ID: 0017
Revises: 0008
Create Date: 2026-12-04 18:00:00

An admin created staff users with a password of the admin's choosing, so one admin could
make a second reviewer, sign in as it and approve their own override. Admins now invite:
account_link holds one-time links (invitation or password reset, stored hashed) with
which people set their own password. staff_user.role_since says when the account got its
role (an account approves overrides and changes only after holding a reviewing role for
the policy's approver_min_age_days; existing accounts count from their creation), and
totp_secret / totp_last_step hold the second factor (RFC 6238) of those who enrolled.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NOT NULL needs a value for the rows there: a constant first (SQLite cannot add a
    # column with a computed default, nor copy staff_user, which other tables point at),
    # then each account's creation time.
    op.add_column("staff_user", sa.Column("role_since", sqlmodel.sql.sqltypes.UTCDateTime(),
                                          nullable=False,
                                          server_default="1970-01-01 00:00:00"))
    op.execute("UPDATE staff_user SET role_since = created_at")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("staff_user", "role_since", server_default=None)
    op.add_column("staff_user", sa.Column("totp_secret",
                                          sqlmodel.sql.sqltypes.AutoString(length=64),
                                          nullable=True))
    op.add_column("staff_user", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.create_table(
        "account_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.CheckConstraint("purpose IN ('invite', 'reset')", name=op.f("ck_account_link_purpose")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_account_link_created_by_id_staff_user")),
        sa.ForeignKeyConstraint(["user_id"], ["staff_user.id"],
                                name=op.f("fk_account_link_user_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_link_token_hash")),
    )
    op.create_index(op.f("ix_account_link_user_id"), "account_link", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_account_link_user_id"), table_name="account_link")
    op.drop_table("account_link")
    op.drop_column("staff_user", "totp_last_step")
    op.drop_column("staff_user", "totp_secret")
    op.drop_column("staff_user", "role_since")
