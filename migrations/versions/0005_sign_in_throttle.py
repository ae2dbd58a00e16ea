"""sign_in_throttle: failed sign-ins per account, address and browser, instead of a lock

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:00:00

A staff user's failed_logins and locked_until locked the account for 15 minutes after five
failures: anyone could keep any account (an admin's too) locked, and an unknown email was
never locked, which told an attacker which accounts exist. Failures are now counted per
key (an email whether or not it is an account's, a client address, a browser that signed
in before) with growing delays (app.auth.throttle), so the two columns go.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttle")),
    )
    op.create_index(op.f("ix_sign_in_throttle_last_failure_at"), "sign_in_throttle",
                    ["last_failure_at"])
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy of the table: other
    # tables' foreign keys point at staff_user, and SQLite could not drop it to copy it.
    op.drop_column("staff_user", "locked_until")
    op.drop_column("staff_user", "failed_logins")


def downgrade() -> None:
    op.add_column("staff_user", sa.Column("failed_logins", sa.Integer(), nullable=False,
                                          server_default="0"))
    op.add_column("staff_user", sa.Column("locked_until", sqlmodel.sql.sqltypes.UTCDateTime(),
                                          nullable=True))
    op.drop_index(op.f("ix_sign_in_throttle_last_failure_at"), table_name="sign_in_throttle")
    op.drop_table("sign_in_throttle")
