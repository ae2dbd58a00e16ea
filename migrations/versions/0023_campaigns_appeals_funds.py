"""campaign, appeal, fund, gift_designation; online_donation.campaign_id

Revision ID: 0023
Revises: 0025 (main's head when rebased; reserved to follow 0022)
Create Date: 2026-12-04 23:45:00

Campaigns, appeals and funds, and the designation a gift carries (one row per designated
gift, sealed with it). The donate link's campaign is kept on the online donation until
the payment records its gift.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_INSTANT = sqlmodel.sql.sqltypes.UTCDateTime


def _common(table: str) -> list:
    """The columns every one of the three tables has, in the models' order after code, name."""
    return [
        sa.Column("goal_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", _TEXT(length=3), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _INSTANT(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("goal_minor IS NULL OR goal_minor > 0",
                           name=op.f(f"ck_{table}_goal_positive")),
        sa.ForeignKeyConstraint(["created_by_id"], ["staff_user.id"],
                                name=op.f(f"fk_{table}_created_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("code", name=op.f(f"uq_{table}_code")),
    ]


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _TEXT(length=60), nullable=False),
        sa.Column("name", _TEXT(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.CheckConstraint("ends_on IS NULL OR ends_on >= starts_on",
                           name=op.f("ck_campaign_dates_ordered")),
        *_common("campaign"),
    )
    op.create_table(
        "appeal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _TEXT(length=60), nullable=False),
        sa.Column("name", _TEXT(length=200), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("channel", _TEXT(length=20), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "channel IN ('mail', 'email', 'event', 'phone', 'online', 'social', 'other')",
            name=op.f("ck_appeal_channel")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"],
                                name=op.f("fk_appeal_campaign_id_campaign")),
        *_common("appeal"),
    )
    op.create_index("ix_appeal_campaign_id", "appeal", ["campaign_id"])
    op.create_table(
        "fund",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", _TEXT(length=60), nullable=False),
        sa.Column("name", _TEXT(length=200), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("purpose", _TEXT(length=1000), nullable=True),
        sa.CheckConstraint("NOT restricted OR purpose IS NOT NULL",
                           name=op.f("ck_fund_restricted_purpose")),
        *_common("fund"),
    )
    op.create_table(
        "gift_designation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("fund_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "campaign_id IS NOT NULL OR appeal_id IS NOT NULL OR fund_id IS NOT NULL",
            name=op.f("ck_gift_designation_names_something")),
        sa.ForeignKeyConstraint(["gift_id"], ["gift.id"],
                                name=op.f("fk_gift_designation_gift_id_gift")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"],
                                name=op.f("fk_gift_designation_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeal.id"],
                                name=op.f("fk_gift_designation_appeal_id_appeal")),
        sa.ForeignKeyConstraint(["fund_id"], ["fund.id"],
                                name=op.f("fk_gift_designation_fund_id_fund")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gift_designation")),
        sa.UniqueConstraint("gift_id", name=op.f("uq_gift_designation_gift_id")),
    )
    op.create_index("ix_gift_designation_campaign_gift", "gift_designation",
                    ["campaign_id", "gift_id"])
    op.create_index("ix_gift_designation_fund_gift", "gift_designation", ["fund_id", "gift_id"])
    op.create_index("ix_gift_designation_appeal_gift", "gift_designation",
                    ["appeal_id", "gift_id"])
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_online_donation_campaign_id_campaign"),
                                    "campaign", ["campaign_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_online_donation_campaign_id_campaign"),
                                 type_="foreignkey")
        batch_op.drop_column("campaign_id")
    for name in ("ix_gift_designation_appeal_gift", "ix_gift_designation_fund_gift",
                 "ix_gift_designation_campaign_gift"):
        op.drop_index(name, table_name="gift_designation")
    op.drop_table("gift_designation")
    op.drop_table("fund")
    op.drop_index("ix_appeal_campaign_id", table_name="appeal")
    op.drop_table("appeal")
    op.drop_table("campaign")
