"""donor_segment, donor_tag: saved donor searches and simple tags

Revision ID: 0034
Revises: 0027

A segment stores its filter (JSON), never a frozen list of donors; tags are words staff
put on donors for segments to find them by.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0034"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "donor_segment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_donor_segment_created_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donor_segment")),
        sa.UniqueConstraint("name", name=op.f("uq_donor_segment_name")),
    )
    op.create_table(
        "donor_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("tag", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("length(tag) BETWEEN 1 AND 40", name=op.f("ck_donor_tag_tag_length")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_donor_tag_donor_id_donor")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_donor_tag_created_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_donor_tag")),
        sa.UniqueConstraint("donor_id", "tag", name=op.f("uq_donor_tag_donor_id")),
    )
    op.create_index("ix_donor_tag_tag_donor", "donor_tag", ["tag", "donor_id"])


def downgrade() -> None:
    op.drop_index("ix_donor_tag_tag_donor", table_name="donor_tag")
    op.drop_table("donor_tag")
    op.drop_table("donor_segment")
