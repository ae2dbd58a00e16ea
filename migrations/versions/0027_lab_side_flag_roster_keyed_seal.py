"""donor.possibly_covered with partial key indexes; roster entries sealed with a keyed seal

Revision ID: 0027
Revises: 0032

1. donor.possibly_covered: the record has an affiliation to a covered lab or to an
   organisation with a parent (app.ledger.identity.possibly_covered_tie), set here for
   every donor, then kept by every write of affiliations and organisations; verification
   recomputes it (app.ledger.derived_verify). Partial indexes on the four blocking keys
   hold only such records: the possible-match lookup reads them (docs/performance.md).
2. roster_entry is sealed as donor is: a plain seal of what the policy reads (organisation,
   dates, senior flag, who entered it and when) and a keyed seal, "roster_entry.identity",
   of who the person is (name, title, source, matching keys), an HMAC under the seal key
   (app.ledger.seal_key) instead of a plain SHA-256 the chain kept of the name. Every row
   that still matches its seal as it was is sealed anew, both ways, in "ledger.rows_resealed"
   entries; one that does not (edited behind the app's back before the upgrade) is left a
   finding, never laundered. The keyed seals are made with this process's key: upgrade
   through `armslength init-db` with AUDIT_SEAL_KEY_FILE set, as the app runs.
   Downgrading leaves the entries (the chain is append-only): the roster's latest plain
   seals are then the narrower ones, which an older revision reads as changed rows, so do
   not downgrade past this on real data.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.ledger.row_hashes import SEALED, Sealed
from app.ledger.row_sealing import reseal_for_migration
from models import RosterEntry

revision = "0027"
down_revision = "0032"
branch_labels = None
depends_on = None

_KEYS = ("name_key_a", "name_key_b", "email_key", "phone_key")

#: As app.ledger.identity.possibly_covered_tie, spelled for this revision's tables.
_TIE = """EXISTS (SELECT 1 FROM affiliation a JOIN organization o ON o.id = a.organization_id
                  WHERE a.donor_id = donor.id
                  AND (o.covered_lab = {true} OR o.parent_id IS NOT NULL))"""


#: roster_entry's seal before this revision: every column, in this order.
_ROSTER_BEFORE = Sealed(RosterEntry, (
    "id", "name", "title", "organization_id", "start_date", "end_date",
    "senior_decision_maker", "source", "name_key_a", "name_key_b", "created_by_id",
    "created_at"), "roster_entry", ())


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
    reseal_for_migration(bind, revision, _ROSTER_BEFORE,
                         (SEALED["roster_entry"], SEALED["roster_entry.identity"]))


def downgrade() -> None:
    for key in _KEYS:
        op.drop_index(f"ix_donor_{key}_lab_side", table_name="donor")
    # DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    op.execute("ALTER TABLE donor DROP COLUMN possibly_covered")
