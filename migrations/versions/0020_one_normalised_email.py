"""one normalised e-mail column: donor.email_key; donor.email_normalized dropped

Revision ID: 0020
Revises: 0026
Create Date: 2026-12-04 20:45:00

donor.email_normalized (0014: refusing a second person record with an address on file) and
donor.email_key (0015: the e-mail blocking key of identity matching) held the same value,
the address stripped and case-folded, kept by two functions. One column is left:
email_key, computed by policies.identity.email_key, which both uses now read. Its value is
recomputed here from each donor's e-mail (rows written around the ledger, e.g. by a bulk
load, may lack it), then email_normalized and its index are dropped.

Plain DROP COLUMN, not a batch: SQLite (3.35+) drops an unindexed, unconstrained column in
place, as 0014's downgrade does; a batch would copy donor, a table that gifts, pledges and
others reference.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from policies.identity import email_key

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

donor = sa.table("donor", sa.column("id", sa.Integer), sa.column("email", sa.String),
                 sa.column("email_key", sa.String), sa.column("email_normalized", sa.String))


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(donor.update().where(donor.c.email.is_(None), donor.c.email_key.is_not(None))
                 .values(email_key=None))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(donor.c.id, donor.c.email, donor.c.email_key)
            .where(donor.c.id > last, donor.c.email.is_not(None))
            .order_by(donor.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        stale = [{"donor_id": r.id, "key": email_key(r.email)} for r in rows
                 if email_key(r.email) != r.email_key]
        if stale:
            conn.execute(
                donor.update().where(donor.c.id == sa.bindparam("donor_id"))
                .values(email_key=sa.bindparam("key")), stale)
        last = rows[-1].id
    op.drop_index(op.f("ix_donor_email_normalized"), table_name="donor")
    op.drop_column("donor", "email_normalized")


def downgrade() -> None:
    op.add_column("donor", sa.Column("email_normalized",
                                     sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
    op.get_bind().execute(donor.update().values(email_normalized=donor.c.email_key))
    op.create_index(op.f("ix_donor_email_normalized"), "donor", ["email_normalized"],
                    unique=False)
