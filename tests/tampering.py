"""Editing the database behind the app's back, as someone with the schema owner's rights can.

The append-only tables refuse UPDATE and DELETE through triggers (models.append_only); an
owner can drop them first. These helpers drop them, run the edit and put them back, all in
one transaction, so the next test (PostgreSQL keeps one database for the run) still has
them.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text

from models.append_only import APPEND_ONLY_TABLES, create_statements, drop_statements


def tamper(connection, statement: str, params: dict | None = None):
    """Run one SQL statement on this connection or session with the triggers lifted, inside
    its current transaction (the caller commits)."""
    dialect = connection.get_bind().dialect.name if hasattr(connection, "get_bind") \
        else connection.dialect.name
    for table in APPEND_ONLY_TABLES:
        for lift in drop_statements(dialect, table):
            connection.execute(text(lift))
    result = connection.execute(text(statement), params or {})
    for table in APPEND_ONLY_TABLES:
        for guard in create_statements(dialect, table):
            connection.execute(text(guard))
    return result


def tamper_apart(database_url: str, *statements: str | tuple[str, dict]) -> None:
    """Run SQL statements through a connection of their own (not the app's, not the test's
    session), in one committed transaction, with the triggers lifted."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                sql, params = statement if isinstance(statement, tuple) else (statement, None)
                tamper(conn, sql, params)
    finally:
        engine.dispose()


def upgrade_watermark(database_url: str) -> None:
    """What migration 0028 does at the upgrade, through a connection of its own: append the
    chain's "ledger.seal_watermark" entry (app.ledger.row_sealing), with the migration's own
    list of sealed tables. Rows present now may then be sealed by `armslength seal-rows`."""
    import importlib.util
    from pathlib import Path

    from app.ledger.row_sealing import append_watermark

    path = Path(__file__).parents[1] / "migrations/versions/0028_seal_identity_passwords_links.py"
    spec = importlib.util.spec_from_file_location("migration_0028", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            append_watermark(conn, "0028", migration.SEALED_TABLES)
    finally:
        engine.dispose()
