"""Reading the ledger from the donor, organisation, pledge and in-kind screen tests.

Use with a module-level `db` fixture that opens a plain session *without* pushing an app
context: the shared `db` fixture's context would be reused by every test-client request,
and with it `g` (the request session, the signed-in user).
"""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEntry


def read(db, statement) -> list:
    """Rows of a query, then the read transaction ends at once: an open one would hold
    SQLite's write lock (BEGIN IMMEDIATE) and block the app's next write."""
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
