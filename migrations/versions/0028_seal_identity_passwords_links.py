"""Keyed seals of donors' identity and staff password hashes; account links sealed; the
seal watermark

Revision ID: 0028
Revises: 0029
Create Date: 2026-12-05 00:00:00

No schema change. From this revision the audit chain also seals, under a key kept outside
the database (AUDIT_SEAL_KEY_FILE, app.ledger.seal_key), each donor's name, e-mail, phone,
address and matching keys ("donor.identity") and each staff account's password hash
("staff_user.password"), and every account_link row. Rows already there have no such seal
until `armslength seal-rows` records them.

So that seal-rows seals only what was there, this revision appends a "ledger.seal_watermark"
entry to the chain: for every table then sealed, its largest id and its row count now
(app.ledger.row_sealing). seal-rows never seals a row above it. The entry is appended on an
empty database too. Downgrading leaves it (the chain is append-only); it is harmless.
"""
from collections.abc import Sequence

from alembic import op

from app.ledger.row_sealing import append_watermark

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The seals as of this revision: seal name -> (table, key column). Fixed here, whatever
#: app.ledger.row_hashes.SEALED becomes.
SEALED_TABLES = {name: (name.split(".", 1)[0], "id") for name in (
    "gift", "attribution", "decision", "refund", "stripe_dispute", "affiliation",
    "organization", "policy_version", "override_request", "published_disclosure", "donor",
    "donor.identity", "identity_verdict", "roster_entry", "pending_change", "staff_user",
    "staff_user.password", "account_link", "api_token", "pledge", "pledge_instalment",
    "in_kind_arrangement", "acknowledgement", "online_donation")}
SEALED_TABLES["donor_merge"] = ("donor_merge", "duplicate_id")
# The public-support facts, sealed from revision 0029 (just before this one).
SEALED_TABLES.update({"support_link": ("support_link", "id"),
                      "support_class": ("support_class", "donor_id"),
                      "unusual_grant": ("unusual_grant", "gift_id"),
                      "support_fact_removal": ("support_fact_removal", "id")})


def upgrade() -> None:
    append_watermark(op.get_bind(), revision, SEALED_TABLES)


def downgrade() -> None:
    pass
