"""Append-only tables refuse UPDATE and DELETE in the database itself, not only in the ORM.

The ORM guard (models.gifts.make_append_only) stops the app's own code; these triggers stop
anything that connects as the app's database role and runs SQL by hand. They do not stop a
role that may drop or disable triggers (the schema's owner, a superuser): that is why the
app runs as a role that owns nothing (docs/deployment.md), and why the audit chain, its row
hashes and its signed checkpoints detect what the triggers cannot prevent.

The same statements serve create_all (tests, a new SQLite database) and migrations 0010 and
0019.
TRUNCATE fires no row trigger; the app's role is not granted TRUNCATE.
"""

from __future__ import annotations

from sqlalchemy import DDL, event

#: Tables whose rows, once written, are never changed or deleted.
#: audit_checkpoint: on PostgreSQL with the function and trigger migration 0011 made (below),
#: on SQLite with the same triggers as the others (migration 0019).
APPEND_ONLY_TABLES = ("decision", "audit_entry", "refund", "published_disclosure",
                      "published_funding_report",
                      "policy_version", "audit_checkpoint")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION armslength_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def _name(table: str, what: str) -> str:
    return f"{table}_append_only{what}"


#: audit_checkpoint's PostgreSQL guard as migration 0011 made it: its own function and message.
_PG_CHECKPOINT = ["""
CREATE OR REPLACE FUNCTION audit_checkpoint_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_checkpoint is append-only';
END;
$$ LANGUAGE plpgsql""", """
CREATE TRIGGER audit_checkpoint_append_only BEFORE UPDATE OR DELETE ON audit_checkpoint
FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_append_only()"""]


def create_statements(dialect: str, table: str) -> list[str]:
    """The statements that make `table` refuse UPDATE and DELETE on this dialect."""
    if dialect == "postgresql" and table == "audit_checkpoint":
        return list(_PG_CHECKPOINT)
    if dialect == "postgresql":
        return [_PG_FUNCTION,
                f"CREATE TRIGGER {_name(table, '')} BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION armslength_refuse_change()"]
    if dialect == "sqlite":
        return [f"CREATE TRIGGER {_name(table, '_' + op.lower())} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{op} on {table}: the table is append-only'); END"
                for op in ("UPDATE", "DELETE")]
    return []


def drop_statements(dialect: str, table: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {_name(table, '')} ON {table}"]
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {_name(table, '_' + op)}" for op in ("update", "delete")]
    return []


#: After every append-only table is gone (migration downgrade).
DROP_FUNCTION = "DROP FUNCTION IF EXISTS armslength_refuse_change()"


def install(metadata) -> None:
    """Create the triggers with their tables whenever metadata.create_all builds them."""
    for name in APPEND_ONLY_TABLES:
        table = metadata.tables[name]
        for dialect in ("postgresql", "sqlite"):
            for statement in create_statements(dialect, name):
                event.listen(table, "after_create",
                             DDL(statement.replace("%", "%%")).execute_if(dialect=dialect))
