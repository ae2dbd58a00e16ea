"""refund: a refund Stripe reports as failed later is reversed by a row of its own

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-04 18:00:00

A reversal is a refund row with the negated amounts and reverses_refund_id naming the
refund it takes back (unique: one reversal per refund). The amount check becomes a sign
check: positive for a refund, negative for a reversal. Existing rows are all refunds.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGN = ("(reverses_refund_id IS NULL AND amount_minor > 0 AND reporting_amount_minor >= 0)"
        " OR (reverses_refund_id IS NOT NULL AND amount_minor < 0"
        " AND reporting_amount_minor <= 0)")


def upgrade() -> None:
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reverses_refund_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_refund_reverses_refund_id_refund"),
                                    "refund", ["reverses_refund_id"], ["id"])
        batch_op.create_unique_constraint(batch_op.f("uq_refund_reverses_refund_id"),
                                          ["reverses_refund_id"])
        batch_op.drop_constraint(batch_op.f("ck_refund_amount_positive"), type_="check")
        batch_op.create_check_constraint("amount_sign", SIGN)


def downgrade() -> None:
    # Reversals cannot be expressed without the column: refuse rather than lose them.
    if op.get_bind().execute(sa.text(
            "SELECT count(*) FROM refund WHERE reverses_refund_id IS NOT NULL")).scalar_one():
        raise RuntimeError("refund reversals are recorded: downgrading would lose them")
    with op.batch_alter_table("refund", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_refund_amount_sign"), type_="check")
        batch_op.create_check_constraint("amount_positive", "amount_minor > 0")
        batch_op.drop_constraint(batch_op.f("uq_refund_reverses_refund_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_refund_reverses_refund_id_refund"),
                                 type_="foreignkey")
        batch_op.drop_column("reverses_refund_id")
