"""gift covering index carries the reporting currency: the public-support test reads the
five years from it alone

Revision ID: 0037
Revises: 0018
Create Date: 2026-12-05 03:00:00

The public-support computation (app.ledger.public_support.contributions) sums the five
years' gifts per year and per donor, grouped by reporting currency so that two currencies
are refused in the same pass. ix_gift_donor_status_received_on (donor_id, status,
received_on, kind, reporting_amount_minor; revision 0003) held everything but the
currency, so each of a million gifts was fetched from the table for it. The index is
rebuilt with reporting_currency last: the funding mix, which reads the same index by its
leading columns, is unaffected.
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ["donor_id", "status", "received_on", "kind", "reporting_amount_minor"]


def upgrade() -> None:
    op.drop_index("ix_gift_donor_status_received_on", table_name="gift")
    op.create_index("ix_gift_donor_status_received_on", "gift", [*OLD, "reporting_currency"])


def downgrade() -> None:
    op.drop_index("ix_gift_donor_status_received_on", table_name="gift")
    op.create_index("ix_gift_donor_status_received_on", "gift", OLD)
