"""funding_mix_day: organisations' credited funding per gift date and category

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 03:15:00

The dashboard's funding mix summed, on every view, the gifts credited to organisations
in the range (about 24,000 a year in a 1,000,000-gift ledger). This table keeps those sums
per day and donor category, maintained by the ledger as gifts start and stop counting.
Filled here from the gifts, their attributions and the donors' categories.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "funding_mix_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("credited_ppm", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "category", name=op.f("pk_funding_mix_day")),
    )
    # Self-contained on purpose (the app's code may change after this revision): the same
    # sums app.ledger.funding keeps, from the accepted cash gifts as they stand.
    op.execute("""
        INSERT INTO funding_mix_day (day, category, credited_ppm)
        SELECT g.received_on, d.category, SUM(g.reporting_amount_minor * a.fraction_ppm)
        FROM gift g
        JOIN attribution a ON a.gift_id = g.id
        JOIN donor d ON d.id = a.donor_id
        WHERE g.status = 'accepted' AND g.kind = 'cash'
          AND d.category IN ('foundation', 'company', 'daf_sponsor', 'other')
        GROUP BY g.received_on, d.category
    """)


def downgrade() -> None:
    op.drop_table("funding_mix_day")
