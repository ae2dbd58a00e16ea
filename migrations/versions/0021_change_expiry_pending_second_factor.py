"""pending_change may expire; a second factor being set up waits on the server

Revision ID: 0021
Revises: 0010
Create Date: 2026-12-04 21:00:00

A change waiting for a second person now expires after the policy's
[approvals] pending_change_days (state "expired"). The new secret of a second factor being
set up was kept in the session cookie, which is signed but readable: it now waits in
staff_user.totp_pending_secret (with totp_pending_at) until a code confirms it.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pending_change") as batch:
        batch.drop_constraint("state", type_="check")  # named by the convention
        batch.create_check_constraint(
            "state", "state IN ('pending', 'approved', 'declined', 'expired')")
    op.add_column("staff_user", sa.Column(
        "totp_pending_secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    op.add_column("staff_user", sa.Column(
        "totp_pending_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): staff_user is not copied, as other tables point at it.
    op.drop_column("staff_user", "totp_pending_at")
    op.drop_column("staff_user", "totp_pending_secret")
    # An expired change ends as declined by nobody: the audit trail says it expired.
    op.execute("UPDATE pending_change SET state = 'declined' WHERE state = 'expired'")
    with op.batch_alter_table("pending_change") as batch:
        batch.drop_constraint("state", type_="check")
        batch.create_check_constraint(
            "state", "state IN ('pending', 'approved', 'declined')")
