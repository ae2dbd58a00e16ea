"""online_donation: the donate form's declaration is a claim, kept with the donation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:00:00

The donate form wrote a declared lab role onto the donor record found by e-mail, before
any payment. The declaration now stays on the donation: donor_created says whether the
form created the donor record (then the declaration becomes its affiliation when the
payment arrives), declaration_state what became of it, declaration_gift_id the gift held
for a reviewer when it differs from an existing donor's record. Donations stored before
this revision already wrote their declaration: their state is "recorded".
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("donor_created", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("declaration_state",
                                      sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column("declaration_gift_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_online_donation_declaration_gift_id_gift"),
                                    "gift", ["declaration_gift_id"], ["id"])
        batch_op.create_check_constraint(
            "declaration_state",
            "declaration_state IN ('declared', 'recorded', 'to_review', 'applied', 'dismissed')")
    op.execute("UPDATE online_donation SET declaration_state = 'recorded' "
               "WHERE declared_lab_id IS NOT NULL")
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.alter_column("donor_created", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_online_donation_declaration_state"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_online_donation_declaration_gift_id_gift"),
                                 type_="foreignkey")
        batch_op.drop_column("declaration_gift_id")
        batch_op.drop_column("declaration_state")
        batch_op.drop_column("donor_created")
