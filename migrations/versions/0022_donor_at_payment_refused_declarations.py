"""online_donation: the donor record is made when the payment arrives; refused declarations

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-04 21:00:00

The donate form created a bare donor record (name, e-mail) at the screening for an e-mail
no donor had, before any payment: anonymous visitors could fill the donor table. The form's
name and e-mail now stay on the pending donation (donor_name, donor_email) and the record is
made by the payment's webhook, so donor_id and payer_donor_id are empty until then.

refused_declaration keeps, by normalised e-mail, a lab role declared on the form whose gift
the policy refused before payment: a later attempt from that e-mail is screened with it.

pending_change may hold a roster entry's edit or removal (kinds roster_entry,
roster_entry_removal): ending or deleting a roster entry at a covered lab waits for a
second person, like an affiliation's.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_OLD_KINDS = "('policy_version', 'organization', 'affiliation', 'affiliation_removal')"
_NEW_KINDS = ("('policy_version', 'organization', 'affiliation', 'affiliation_removal', "
              "'roster_entry', 'roster_entry_removal')")


def _change_kinds(kinds: str) -> None:
    with op.batch_alter_table("pending_change", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pending_change_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_pending_change_kind"), f"kind IN {kinds}")


def upgrade() -> None:
    _change_kinds(_NEW_KINDS)
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.alter_column("donor_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("payer_donor_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("donor_name", sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=True))
        batch_op.add_column(sa.Column("donor_email",
                                      sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True))
    op.create_table(
        "refused_declaration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_key", sqlmodel.sql.sqltypes.AutoString(length=320),
                  nullable=False),
        sa.Column("declared_lab_id", sa.Integer(), nullable=False),
        sa.Column("declared_senior", sa.Boolean(), nullable=False),
        sa.Column("declared_employer", sqlmodel.sql.sqltypes.AutoString(length=200),
                  nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("policy_version", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("dismissed_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("dismissed_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("state IN ('waiting', 'dismissed')",
                           name=op.f("ck_refused_declaration_state")),
        sa.ForeignKeyConstraint(["declared_lab_id"], ["organization.id"],
                                name=op.f("fk_refused_declaration_declared_lab_id_organization")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refused_declaration")),
    )
    op.create_index(op.f("ix_refused_declaration_email_key"), "refused_declaration",
                    ["email_key"])


def downgrade() -> None:
    op.execute("DELETE FROM pending_change WHERE kind IN ('roster_entry', 'roster_entry_removal')")
    _change_kinds(_OLD_KINDS)
    op.drop_index(op.f("ix_refused_declaration_email_key"),
                  table_name="refused_declaration")
    op.drop_table("refused_declaration")
    with op.batch_alter_table("online_donation", schema=None) as batch_op:
        batch_op.drop_column("donor_email")
        batch_op.drop_column("donor_name")
        # Donations whose payment never came have no donor: there is none to restore.
        batch_op.alter_column("payer_donor_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("donor_id", existing_type=sa.Integer(), nullable=False)
