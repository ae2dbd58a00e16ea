"""Recurring gifts: each monthly donation's subscription as Stripe reports it, and which
donation each gift paid.

Revision ID: 0032
Revises: 0018

online_donation gains Stripe's subscription status, whether collection is paused, the amount
of future invoices, the next charge day, the count of failed payments and the instant of the
last snapshot applied (app.payments.recurring). None of them is sealed (Stripe's facts, like
the donation's Stripe ids and state).

online_donation_gift links a gift to the online donation it paid, so a monthly donation's
lifetime value is the net cash of its gifts. Gifts recorded before this revision are linked
by the form number every Stripe gift's description has carried since the first release
("Online donation (monthly) through Stripe, form #12"), when that donation exists.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision = "0032"
down_revision = "0037"
branch_labels = None
depends_on = None

_FORM_NUMBER = re.compile(r"^Online donation \((?:once|monthly)\) through Stripe, form #(\d+)")


def _link_recorded_gifts() -> None:
    conn = op.get_bind()
    donations = {row[0] for row in conn.execute(sa.text("SELECT id FROM online_donation"))}
    links = []
    for gift_id, description in conn.execute(sa.text(
            "SELECT id, description FROM gift WHERE method = 'stripe' "
            "AND description LIKE 'Online donation (%' ORDER BY id")):
        found = _FORM_NUMBER.match(description or "")
        if found and int(found.group(1)) in donations:
            links.append({"donation_id": int(found.group(1)), "gift_id": gift_id})
    if links:
        table = sa.table("online_donation_gift", sa.column("donation_id", sa.Integer()),
                         sa.column("gift_id", sa.Integer()),
                         sa.column("created_at", UTCDateTime()))
        now = datetime.now(UTC)
        op.bulk_insert(table, [{**link, "created_at": now} for link in links])


def upgrade() -> None:
    op.add_column("online_donation", sa.Column("subscription_status", sa.String(length=20),
                                               nullable=True))
    op.add_column("online_donation", sa.Column("collection_paused", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))
    op.add_column("online_donation", sa.Column("current_amount_minor", sa.BigInteger(),
                                               nullable=True))
    op.add_column("online_donation", sa.Column("next_charge_on", sa.Date(), nullable=True))
    op.add_column("online_donation", sa.Column("failed_payments", sa.Integer(), nullable=False,
                                               server_default="0"))
    op.add_column("online_donation", sa.Column("subscription_synced_at", UTCDateTime(),
                                               nullable=True))
    op.create_table(
        "online_donation_gift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("donation_id", sa.Integer(), nullable=False),
        sa.Column("gift_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["donation_id"], ["online_donation.id"],
                                name=op.f("fk_online_donation_gift_donation_id_online_donation")),
        sa.ForeignKeyConstraint(["gift_id"], ["gift.id"],
                                name=op.f("fk_online_donation_gift_gift_id_gift")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_online_donation_gift")),
        sa.UniqueConstraint("gift_id", name=op.f("uq_online_donation_gift_gift_id")),
    )
    op.create_index(op.f("ix_online_donation_gift_donation_id"), "online_donation_gift",
                    ["donation_id"], unique=False)
    _link_recorded_gifts()


def downgrade() -> None:
    op.drop_index(op.f("ix_online_donation_gift_donation_id"), table_name="online_donation_gift")
    op.drop_table("online_donation_gift")
    # DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    for column in ("subscription_synced_at", "failed_payments", "next_charge_on",
                   "current_amount_minor", "collection_paused", "subscription_status"):
        op.execute(f"ALTER TABLE online_donation DROP COLUMN {column}")
