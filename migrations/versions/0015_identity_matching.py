"""identity matching: donors' blocking keys, phone and address; rosters; verdicts on pairs

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-04 18:00:00

A gift is screened against every record that is probably the same person (issue 11 A).
Donors gain phone and postal_address (where known) and four indexed blocking keys
(policies.identity): the candidates for a match are the few records sharing a key, found
by index. The keys of donors already stored are computed here, in batches. roster_entry
holds people known to work at covered labs who are not donors; identity_verdict a
reviewer's answer per pair of records.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from policies.identity import block_keys, email_key

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no constraint), which SQLite does in place: a batch
    # copy of donor would have to drop a table other tables' foreign keys point at.
    op.add_column("donor", sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=40),
                                     nullable=True))
    op.add_column("donor", sa.Column("postal_address",
                                     sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    for name, length in (("email_key", 320), ("name_key_a", 200), ("name_key_b", 200),
                         ("phone_key", 10)):
        op.add_column("donor", sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length),
                                         nullable=True))

    op.create_table(
        "roster_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("senior_decision_maker", sa.Boolean(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("name_key_a", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("name_key_b", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date",
                           name=op.f("ck_roster_entry_dates_ordered")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_roster_entry_created_by_id_staff_user")),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"],
                                name=op.f("fk_roster_entry_organization_id_organization")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_entry")),
    )
    with op.batch_alter_table("roster_entry", schema=None) as batch_op:
        for name in ("organization_id", "name_key_a", "name_key_b"):
            batch_op.create_index(batch_op.f(f"ix_roster_entry_{name}"), [name], unique=False)

    op.create_table(
        "identity_verdict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("other_donor_id", sa.Integer(), nullable=True),
        sa.Column("roster_entry_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("verdict IN ('different', 'same')",
                           name=op.f("ck_identity_verdict_verdict")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["staff_user.id"],
                                name=op.f("fk_identity_verdict_decided_by_id_staff_user")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_identity_verdict_donor_id_donor")),
        sa.ForeignKeyConstraint(["other_donor_id"], ["donor.id"],
                                name=op.f("fk_identity_verdict_other_donor_id_donor")),
        sa.ForeignKeyConstraint(["roster_entry_id"], ["roster_entry.id"],
                                name=op.f("fk_identity_verdict_roster_entry_id_roster_entry")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_verdict")),
        sa.UniqueConstraint("pair", name=op.f("uq_identity_verdict_pair")),
    )
    with op.batch_alter_table("identity_verdict", schema=None) as batch_op:
        for name in ("donor_id", "other_donor_id", "roster_entry_id"):
            batch_op.create_index(batch_op.f(f"ix_identity_verdict_{name}"), [name], unique=False)

    _backfill_donor_keys()
    for name in ("email_key", "name_key_a", "name_key_b", "phone_key"):
        op.create_index(op.f(f"ix_donor_{name}"), "donor", [name], unique=False)


def _backfill_donor_keys() -> None:
    conn = op.get_bind()
    donor = sa.table("donor", sa.column("id"), sa.column("name"), sa.column("email"),
                     sa.column("email_key"), sa.column("name_key_a"), sa.column("name_key_b"))
    last = 0
    while True:
        batch = conn.execute(sa.select(donor.c.id, donor.c.name, donor.c.email)
                             .where(donor.c.id > last).order_by(donor.c.id).limit(BATCH)).all()
        if not batch:
            return
        update = (donor.update().where(donor.c.id == sa.bindparam("b_id"))
                  .values(email_key=sa.bindparam("b_email"), name_key_a=sa.bindparam("b_a"),
                          name_key_b=sa.bindparam("b_b")))
        values = []
        for donor_id, name, email in batch:
            a, b = block_keys(name)
            values.append({"b_id": donor_id, "b_email": email_key(email), "b_a": a, "b_b": b})
        conn.execute(update, values)
        last = batch[-1][0]


def downgrade() -> None:
    op.drop_table("identity_verdict")
    op.drop_table("roster_entry")
    for name in ("phone_key", "name_key_b", "name_key_a", "email_key"):
        op.drop_index(op.f(f"ix_donor_{name}"), table_name="donor")
    # DROP COLUMN in place (SQLite 3.35+), for the same reason as ADD COLUMN above.
    for name in ("phone_key", "name_key_b", "name_key_a", "email_key", "postal_address",
                 "phone"):
        op.execute(f"ALTER TABLE donor DROP COLUMN {name}")
