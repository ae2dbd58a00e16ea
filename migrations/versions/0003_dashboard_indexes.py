"""dashboard indexes: the funding mix reads organisations' gifts, not everyone's

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 23:00:00

The compliance dashboard's funding mix (and GET /api/v1/compliance/series) credits money to
foundations and other organisations. It finds the organisation donors (donor: category),
sums the gifts they gave in the range from one index (gift: donor_id, status, received_on,
kind, reporting_amount_minor) and reads the few shares that may credit an organisation on
someone else's gift (attribution: donor_id, basis), instead of every gift in the range;
the attributions of the organisations' gifts are read from one index as well (attribution:
gift_id, donor_id, fraction_ppm).
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_donor_category", "donor", ["category"])
    op.create_index("ix_gift_donor_status_received_on", "gift",
                    ["donor_id", "status", "received_on", "kind", "reporting_amount_minor"])
    op.create_index("ix_attribution_donor_basis", "attribution", ["donor_id", "basis"])
    op.create_index("ix_attribution_gift_donor_ppm", "attribution",
                    ["gift_id", "donor_id", "fraction_ppm"])


def downgrade() -> None:
    op.drop_index("ix_attribution_gift_donor_ppm", table_name="attribution")
    op.drop_index("ix_attribution_donor_basis", table_name="attribution")
    op.drop_index("ix_gift_donor_status_received_on", table_name="gift")
    op.drop_index("ix_donor_category", table_name="donor")
