"""public support: donors treated as one, unlimited donor classes, unusual grants

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-04 21:00:00

The public-support test (Form 990 Schedule A, Part II; policies/public_support.py) needs
three facts the ledger did not hold: support_link (two donors treated as one contributor:
spouses, family, a controlled entity), support_class (a donor that is a governmental unit
or a publicly supported charity, whose gifts are not limited to 2%) and unusual_grant (a
gift a reviewer excluded as an unusual grant). New tables only.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("other_donor_id", sa.Integer(), nullable=False),
        sa.Column("relation", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("donor_id < other_donor_id", name=op.f("ck_support_link_ordered_pair")),
        sa.CheckConstraint("relation IN ('spouse', 'family', 'controlled_entity')",
                           name=op.f("ck_support_link_relation")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_support_link_created_by_id_staff_user")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_support_link_donor_id_donor")),
        sa.ForeignKeyConstraint(["other_donor_id"], ["donor.id"],
                                name=op.f("fk_support_link_other_donor_id_donor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_link")),
        sa.UniqueConstraint("donor_id", "other_donor_id", name=op.f("uq_support_link_donor_id")),
    )
    op.create_index(op.f("ix_support_link_donor_id"), "support_link", ["donor_id"])
    op.create_index(op.f("ix_support_link_other_donor_id"), "support_link", ["other_donor_id"])
    op.create_table(
        "support_class",
        sa.Column("donor_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("support_class", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("set_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("support_class IN ('governmental_unit', 'public_charity')",
                           name=op.f("ck_support_class_class")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_support_class_donor_id_donor")),
        sa.ForeignKeyConstraint(["set_by_id"], ["staff_user.id"],
                                name=op.f("fk_support_class_set_by_id_staff_user")),
        sa.PrimaryKeyConstraint("donor_id", name=op.f("pk_support_class")),
    )
    op.create_table(
        "unusual_grant",
        sa.Column("gift_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("marked_by_id", sa.Integer(), nullable=True),
        sa.Column("marked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["gift_id"], ["gift.id"],
                                name=op.f("fk_unusual_grant_gift_id_gift")),
        sa.ForeignKeyConstraint(["marked_by_id"], ["staff_user.id"],
                                name=op.f("fk_unusual_grant_marked_by_id_staff_user")),
        sa.PrimaryKeyConstraint("gift_id", name=op.f("pk_unusual_grant")),
    )


def downgrade() -> None:
    op.drop_table("unusual_grant")
    op.drop_table("support_class")
    op.drop_index(op.f("ix_support_link_other_donor_id"), table_name="support_link")
    op.drop_index(op.f("ix_support_link_donor_id"), table_name="support_link")
    op.drop_table("support_link")
