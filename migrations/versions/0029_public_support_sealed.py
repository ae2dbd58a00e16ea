"""public support facts sealed; one waiting refused declaration per e-mail and claim

Revision ID: 0029
Revises: 0033
Create Date: 2026-12-05 00:00:00

The public-support facts (support_link, support_class, unusual_grant) are now sealed in
the audit chain, and the reasons people type stay on the rows instead of in the audit
entries. A fact removed, replaced or dropped by a merge leaves a support_fact_removal row
(what it said, the reason it was recorded with, why it went). New table only; rows written
before this revision have no seal: `armslength seal-rows` seals them once (docs/verify.md).

refused_declaration: anyone can submit the donate form, so the database now keeps one
waiting row per e-mail and claim (lab, senior): a partial unique index. The app already
kept one under the ledger lock; any duplicate left by an older version is removed first
(the lowest id of each claim stays).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "support_fact_removal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fact", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("row_key", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=True),
        sa.Column("other_donor_id", sa.Integer(), nullable=True),
        sa.Column("was", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("was_because", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("removed_by_id", sa.Integer(), nullable=True),
        sa.Column("removed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("fact IN ('support_link', 'support_class', 'unusual_grant')",
                           name=op.f("ck_support_fact_removal_fact")),
        sa.ForeignKeyConstraint(["donor_id"], ["donor.id"],
                                name=op.f("fk_support_fact_removal_donor_id_donor")),
        sa.ForeignKeyConstraint(["other_donor_id"], ["donor.id"],
                                name=op.f("fk_support_fact_removal_other_donor_id_donor")),
        sa.ForeignKeyConstraint(["removed_by_id"], ["staff_user.id"],
                                name=op.f("fk_support_fact_removal_removed_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_fact_removal")),
    )
    op.create_index(op.f("ix_support_fact_removal_row_key"), "support_fact_removal",
                    ["row_key"])
    op.execute("DELETE FROM refused_declaration WHERE state = 'waiting' AND id NOT IN ("
               "SELECT min(id) FROM refused_declaration WHERE state = 'waiting' "
               "GROUP BY email_key, declared_lab_id, declared_senior)")
    op.create_index("uq_refused_declaration_waiting_claim", "refused_declaration",
                    ["email_key", "declared_lab_id", "declared_senior"], unique=True,
                    sqlite_where=sa.text("state = 'waiting'"),
                    postgresql_where=sa.text("state = 'waiting'"))


def downgrade() -> None:
    op.drop_index("uq_refused_declaration_waiting_claim", table_name="refused_declaration")
    op.drop_index(op.f("ix_support_fact_removal_row_key"), table_name="support_fact_removal")
    op.drop_table("support_fact_removal")
