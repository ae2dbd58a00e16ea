"""donor.possibly_covered with partial key indexes; roster entries sealed with a keyed seal

Revision ID: 0027
Revises: 0018

1. donor.possibly_covered: the record has an affiliation to a covered lab or to an
   organisation with a parent (app.ledger.identity.possibly_covered_tie), set here for
   every donor, then kept by every write of affiliations and organisations; verification
   recomputes it (app.ledger.derived_verify). Partial indexes on the four blocking keys
   hold only such records: the possible-match lookup reads them (docs/performance.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0018"
branch_labels = None
depends_on = None

_KEYS = ("name_key_a", "name_key_b", "email_key", "phone_key")

#: As app.ledger.identity.possibly_covered_tie, spelled for this revision's tables.
_TIE = """EXISTS (SELECT 1 FROM affiliation a JOIN organization o ON o.id = a.organization_id
                  WHERE a.donor_id = donor.id
                  AND (o.covered_lab = {true} OR o.parent_id IS NOT NULL))"""


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.add_column("donor", sa.Column("possibly_covered", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.execute("UPDATE donor SET possibly_covered = "
               + _TIE.format(true="true" if postgresql else "1"))
    for key in _KEYS:
        op.create_index(f"ix_donor_{key}_lab_side", "donor", [key], unique=False,
                        sqlite_where=sa.text("possibly_covered = 1"),
                        postgresql_where=sa.text("possibly_covered"))


def downgrade() -> None:
    for key in _KEYS:
        op.drop_index(f"ix_donor_{key}_lab_side", table_name="donor")
    # DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    op.execute("ALTER TABLE donor DROP COLUMN possibly_covered")
