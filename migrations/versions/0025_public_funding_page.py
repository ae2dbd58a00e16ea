"""public funding page: donors' consent to be named, published funding reports

Revision ID: 0025
Revises: 0028
Create Date: 2026-12-05 00:20:00

The public funding page (app.ledger.funding_report) names a donor only if the donor agreed:
donor.public_name_consent, false for every donor until someone records a yes. Published
versions of the page are frozen in published_funding_report (canonical JSON and its
SHA-256), append-only like published_disclosure (models.append_only's triggers).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.append_only import create_statements, drop_statements

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("donor", sa.Column("public_name_consent", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.create_table(
        "published_funding_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_year", sa.Integer(), nullable=False),
        sa.Column("last_year", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("audit_head", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("last_year >= first_year",
                           name=op.f("ck_published_funding_report_years_ordered")),
        sa.ForeignKeyConstraint(["published_by_id"], ["staff_user.id"],
                                name=op.f("fk_published_funding_report_published_by_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_published_funding_report")),
    )
    for statement in create_statements(op.get_bind().dialect.name, "published_funding_report"):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name, "published_funding_report"):
        op.execute(statement)
    op.drop_table("published_funding_report")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of donor would have to
    # drop the table every other table points at.
    op.drop_column("donor", "public_name_consent")
