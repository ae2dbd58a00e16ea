"""funding_day keeps its gifts' refunds; refunds are indexed by refund date

Window sums then read no refund rows for a window ending today (see app.ledger.windows).
The new columns are filled from the existing gifts and refunds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 23:05:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("funding_day") as batch:
        batch.add_column(sa.Column("refunded_minor", sa.BigInteger(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("refunded_lab_minor", sa.BigInteger(), nullable=False,
                                   server_default="0"))
    op.create_index("ix_refund_refunded_on", "refund", ["refunded_on"])
    backfill(op.get_bind())


def backfill(conn) -> None:
    """Fill the refunded columns from the refunds of counted (accepted cash) gifts.

    The lab part is computed per gift as app.ledger.windows.refunded_lab does (refunded x
    lab / total, rounded down), in Python: its product can exceed a 64-bit integer, which
    SQLite would silently turn into a float. Only refunded gifts are read.
    """
    per_day: dict = {}
    rows = conn.execute(sa.text(
        "SELECT g.received_on, g.lab_minor, g.reporting_amount_minor, r.refunded "
        "FROM gift g JOIN (SELECT gift_id, sum(reporting_amount_minor) AS refunded "
        "FROM refund GROUP BY gift_id) r ON r.gift_id = g.id "
        "WHERE g.status = 'accepted' AND g.kind = 'cash'"))
    for day, lab, total, refunded in rows:
        refunded = int(refunded)
        lab_part = refunded * lab // total if total else 0
        day_total, day_lab = per_day.get(day, (0, 0))
        per_day[day] = (day_total + refunded, day_lab + lab_part)
    update = sa.text("UPDATE funding_day SET refunded_minor = :refunded, "
                     "refunded_lab_minor = :lab WHERE day = :day")
    for day, (refunded, lab) in per_day.items():
        conn.execute(update, {"day": day, "refunded": refunded, "lab": lab})


def downgrade() -> None:
    op.drop_index("ix_refund_refunded_on", table_name="refund")
    with op.batch_alter_table("funding_day") as batch:
        batch.drop_column("refunded_lab_minor")
        batch.drop_column("refunded_minor")
