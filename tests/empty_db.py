"""Empty databases for tests that build the schema themselves (migrations, init-db).

The shared fixtures in conftest.py hand out databases already made with
create_all(). Tests of the migrations need nothing in the database at all: a new
SQLite file, or on PostgreSQL a dedicated database created for the test and
dropped after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _admin(statement: str) -> None:
    engine = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def empty_database(backend: str, directory: Path, label: str) -> Iterator[str]:
    """Yield the URL of a database with no tables; drop it afterwards (PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'{label}.sqlite3'}"
        return
    base = make_url(PG_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{base.database}_armslength_{label}_{worker}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
