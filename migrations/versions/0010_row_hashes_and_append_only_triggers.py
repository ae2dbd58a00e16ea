"""audit_entry.row_hashes, and database triggers that keep append-only tables append-only

Revision ID: 0010
Revises: 0015
Create Date: 2026-12-04 18:00:00

An audit entry now carries the hashes of the ledger rows it wrote or changed
(app.ledger.row_hashes), so verification can compare every live row with the chain.
Entries written before this revision have none (NULL): rows they wrote show as "no entry"
until `armslength seal-rows` records them.

decision, audit_entry, refund, published_disclosure and policy_version refuse UPDATE and
DELETE from any role that cannot drop triggers (models.append_only; docs/deployment.md
gives the app such a role).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.append_only import DROP_FUNCTION, create_statements, drop_statements

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables as of this revision (models.append_only.APPEND_ONLY_TABLES may grow later).
TABLES = ("decision", "audit_entry", "refund", "published_disclosure", "policy_version")


def upgrade() -> None:
    op.add_column("audit_entry", sa.Column("row_hashes", sa.JSON(none_as_null=True),
                                           nullable=True))
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for statement in create_statements(dialect, table):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        for statement in drop_statements(dialect, table):
            op.execute(statement)
    if dialect == "postgresql":
        op.execute(DROP_FUNCTION)
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_column("row_hashes")
