"""relationship: household, spouse or partner, family, colleague; gift_correction

Revision ID: 0018
Revises: 0023
Create Date: 2026-12-05 00:00:00

A dated link between two donor records (stored once, smaller id first), read by the
policy's household rule; ending or removing one waits for a second person, so
pending_change gets two more kinds. gift_correction: a mistaken gift voided (reversed by a
refund row on its own date) and the gift recorded in its place, with the reason.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS_BEFORE = ("policy_version", "organization", "affiliation", "affiliation_removal",
                 "roster_entry", "roster_entry_removal", "in_kind")
_KINDS_AFTER = (*_KINDS_BEFORE, "relationship_end", "relationship_removal")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def upgrade() -> None:
    op.create_table(
        "relationship",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=False),
        sa.Column("related_donor_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('household', 'spouse_partner', 'family', 'colleague')",
                           name=op.f("ck_relationship_kind")),
        sa.CheckConstraint("donor_id < related_donor_id",
                           name=op.f("ck_relationship_ordered_pair")),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date",
                           name=op.f("ck_relationship_dates_ordered")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_relationship_donor_id_donor")),
        sa.ForeignKeyConstraint(["related_donor_id"], ["donor.id"],
                                name=op.f("fk_relationship_related_donor_id_donor")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_relationship_created_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relationship")),
    )
    op.create_index("ix_relationship_donor_id", "relationship", ["donor_id"])
    op.create_index("ix_relationship_related_donor_id", "relationship", ["related_donor_id"])
    with op.batch_alter_table("pending_change") as batch:
        batch.drop_constraint("kind", type_="check")  # named by the convention
        batch.create_check_constraint("kind", _kinds(_KINDS_AFTER))
    op.create_table(
        "gift_correction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("replacement_gift_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('void', 'correction')", name=op.f("ck_gift_correction_kind")),
        sa.CheckConstraint("kind = 'correction' OR replacement_gift_id IS NULL",
                           name=op.f("ck_gift_correction_replacement_when_corrected")),
        sa.ForeignKeyConstraint(["gift_id"], ["gift.id"],
                                name=op.f("fk_gift_correction_gift_id_gift")),
        sa.ForeignKeyConstraint(["refund_id"], ["refund.id"],
                                name=op.f("fk_gift_correction_refund_id_refund")),
        sa.ForeignKeyConstraint(["replacement_gift_id"], ["gift.id"],
                                name=op.f("fk_gift_correction_replacement_gift_id_gift")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f("fk_gift_correction_created_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_correction")),
        sa.UniqueConstraint("gift_id", name=op.f("uq_gift_correction_gift_id")),
    )


def downgrade() -> None:
    op.drop_table("gift_correction")
    # Refused (the check fails) while a relationship change is on record: those rows are
    # sealed in the audit chain and are not deleted here.
    with op.batch_alter_table("pending_change") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.create_check_constraint("kind", _kinds(_KINDS_BEFORE))
    op.drop_index("ix_relationship_related_donor_id", table_name="relationship")
    op.drop_index("ix_relationship_donor_id", table_name="relationship")
    op.drop_table("relationship")
