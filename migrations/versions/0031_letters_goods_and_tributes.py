"""gift.goods_description and goods_value_minor; gift_tribute

Revision ID: 0031
Revises: 0030 (main's head when rebased; reserved for the letters work, written after 0018)
Create Date: 2026-12-05 03:10:00

The goods or services a gift bought (the acknowledgement's quid-pro-quo statement) are
facts of the gift, sealed with it; the gift's row hash includes them only when set
(app.ledger.row_hashes.Sealed.later), so no gift sealed before this migration changes hash
and nothing needs sealing here. Tribute gifts ("in honour of", "in memory of") get a row
of their own, written and sealed with the gift; the table starts empty.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


_GOODS_CHECK = ("(goods_description IS NULL) = (goods_value_minor IS NULL) "
                "AND (goods_value_minor IS NULL OR goods_value_minor >= 0)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Rebuilding gift (batch) would drop a table every ledger row references, which
        # SQLite's foreign keys refuse: the CHECK rides on the added column instead.
        op.execute("ALTER TABLE gift ADD COLUMN goods_description VARCHAR(1000)")
        op.execute("ALTER TABLE gift ADD COLUMN goods_value_minor BIGINT "
                   f"CONSTRAINT ck_gift_goods_or_services CHECK ({_GOODS_CHECK})")
    else:
        op.add_column("gift", sa.Column("goods_description", _TEXT(length=1000), nullable=True))
        op.add_column("gift", sa.Column("goods_value_minor", sa.BigInteger(), nullable=True))
        op.create_check_constraint(op.f("ck_gift_goods_or_services"), "gift", _GOODS_CHECK)
    op.create_table(
        "gift_tribute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("kind", _TEXT(length=10), nullable=False),
        sa.Column("honoree_name", _TEXT(length=200), nullable=False),
        sa.Column("notify_name", _TEXT(length=200), nullable=True),
        sa.Column("notify_address", _TEXT(length=500), nullable=True),
        sa.CheckConstraint("kind IN ('honour', 'memory')", name=op.f("ck_gift_tribute_kind")),
        sa.CheckConstraint("notify_address IS NULL OR notify_name IS NOT NULL",
                           name=op.f("ck_gift_tribute_notify_named")),
        sa.ForeignKeyConstraint(["gift_id"], ["gift.id"], name=op.f("fk_gift_tribute_gift_id_gift")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_tribute")),
        sa.UniqueConstraint("gift_id", name=op.f("uq_gift_tribute_gift_id")),
    )


def downgrade() -> None:
    op.drop_table("gift_tribute")
    # DROP COLUMN in place (SQLite 3.35+), as 0033 does; the CHECK goes with its column.
    for column in ("goods_value_minor", "goods_description"):
        op.execute(f"ALTER TABLE gift DROP COLUMN {column}")
