"""Reading the ledger from the donor, organisation, pledge and in-kind screen tests.

Use with the shared `db` fixture (tests/conftest.py): a plain session with no app context
pushed, so every test-client request gets its own `g` (the request session, the signed-in user).
"""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry


def read(db, statement) -> list:
    """Rows of a query, then the read transaction ends at once: on SQLite an open one
    keeps its snapshot, and the next read would miss what the app commits meanwhile."""
    try:
        rows = db.execute(statement).all()
        for row in rows:
            for value in row:
                if hasattr(value, "_sa_instance_state"):
                    db.expunge(value)
        return rows
    finally:
        db.rollback()


def objects(db, statement) -> list:
    """The first column of each row (e.g. the entities of select(Model))."""
    return [row[0] for row in read(db, statement)]


def audit(db, action: str) -> list[AuditEntry]:
    return objects(db, select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))


def text(response) -> str:
    return response.get_data(as_text=True)
