"""donor identity: normalised e-mail, merged records, titles reviewed as not senior

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-04 18:00:00

- donor.email_normalized: the e-mail stripped and case-folded, indexed, so creating a person
  whose address is already on file is refused with one indexed lookup. Filled here for the
  donors already stored (in Python: str.casefold, the same function the ledger uses).
- donor_merge: a donor record merged into another keeps its row; this says where it went.
  (A table, not a donor column: SQLite adds or drops a foreign-key column only by copying
  the table, and the copy cannot replace a table that gifts, pledges... reference.)
- affiliation.title_cleared: the title a reviewer confirmed is not a senior decision-maker's.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    # Plain ADD COLUMNs, not batches: nullable columns without constraints, added in place.
    op.add_column("donor", sa.Column("email_normalized",
                                     sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
    op.add_column("affiliation", sa.Column("title_cleared",
                                           sqlmodel.sql.sqltypes.AutoString(length=200),
                                           nullable=True))
    op.create_table(
        "donor_merge",
        sa.Column("duplicate_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("survivor_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("survivor_id <> duplicate_id",
                           name=op.f("ck_donor_merge_not_into_itself")),
        sa.ForeignKeyConstraint(["duplicate_id"], ["donor.id"],
                                name=op.f("fk_donor_merge_duplicate_id_donor")),
        sa.ForeignKeyConstraint(["survivor_id"], ["donor.id"],
                                name=op.f("fk_donor_merge_survivor_id_donor")),
        sa.PrimaryKeyConstraint("duplicate_id", name=op.f("pk_donor_merge")),
    )
    op.create_index(op.f("ix_donor_merge_survivor_id"), "donor_merge", ["survivor_id"],
                    unique=False)

    donor = sa.table("donor", sa.column("id", sa.Integer), sa.column("email", sa.String),
                     sa.column("email_normalized", sa.String))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(donor.c.id, donor.c.email)
            .where(donor.c.id > last, donor.c.email.is_not(None))
            .order_by(donor.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(
            donor.update().where(donor.c.id == sa.bindparam("donor_id"))
            .values(email_normalized=sa.bindparam("normalized")),
            [{"donor_id": r.id, "normalized": r.email.strip().casefold() or None} for r in rows],
        )
        last = rows[-1].id
    op.create_index(op.f("ix_donor_email_normalized"), "donor", ["email_normalized"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_donor_email_normalized"), table_name="donor")
    op.drop_index(op.f("ix_donor_merge_survivor_id"), table_name="donor_merge")
    op.drop_table("donor_merge")
    op.drop_column("affiliation", "title_cleared")
    op.drop_column("donor", "email_normalized")
