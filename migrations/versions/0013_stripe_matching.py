"""Stripe events match a donation by Stripe's ids plus this installation's marks

Revision ID: 0013
Revises: 0017
Create Date: 2026-12-04 18:00:00

Webhook events found their online donation by the form number in the metadata, which
repeats across installations sharing a Stripe account and after a restore from a backup.
online_donation.reference is a random value per donation, sent in the metadata with this
installation's random id (stripe_install, one row, made at the first donation) and compared
on every event; donations stored before this revision keep NULL and are matched by their
stored Stripe ids alone. stripe_unmatched_event keeps the events that matched no donation.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=32),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_online_donation_reference"),
                                          ["reference"])
    op.create_table(
        "stripe_install",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("install_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_install")),
        sa.UniqueConstraint("install_id", name=op.f("uq_stripe_install_install_id")),
    )
    op.create_table(
        "stripe_unmatched_event",
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("object_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("claimed_install", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("claimed_donation", sqlmodel.sql.sqltypes.AutoString(length=100),
                  nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["stripe_event.id"],
                                name=op.f("fk_stripe_unmatched_event_event_id_stripe_event")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stripe_unmatched_event")),
    )
    with op.batch_alter_table("stripe_unmatched_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_unmatched_event_created_at"), ["created_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stripe_unmatched_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stripe_unmatched_event_created_at"))
    op.drop_table("stripe_unmatched_event")
    op.drop_table("stripe_install")
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_online_donation_reference"), type_="unique")
        batch_op.drop_column("reference")
