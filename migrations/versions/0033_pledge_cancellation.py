"""Pledges can be cancelled (a day and a reason); in-kind edits can wait for a second person.

Revision ID: 0033
Revises: 0022

pending_change may hold an in-kind arrangement's edit (kind in_kind): at a covered lab, an
edit that would take disclosed support out of the conflict-of-interest disclosure waits
for a second person (app.ledger.weakening.split_in_kind).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0022"
branch_labels = None
depends_on = None

_OLD_KINDS = ("('policy_version', 'organization', 'affiliation', 'affiliation_removal', "
              "'roster_entry', 'roster_entry_removal')")
_NEW_KINDS = ("('policy_version', 'organization', 'affiliation', 'affiliation_removal', "
              "'roster_entry', 'roster_entry_removal', 'in_kind')")


def _change_kinds(kinds: str) -> None:
    with op.batch_alter_table("pending_change", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pending_change_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_pending_change_kind"), f"kind IN {kinds}")


def upgrade() -> None:
    op.add_column("pledge", sa.Column("cancelled_on", sa.Date(), nullable=True))
    op.add_column("pledge", sa.Column("cancel_reason", sa.String(length=500), nullable=True))
    _change_kinds(_NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM pending_change WHERE kind = 'in_kind'")
    _change_kinds(_OLD_KINDS)
    # DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    for column in ("cancel_reason", "cancelled_on"):
        op.execute(f"ALTER TABLE pledge DROP COLUMN {column}")
