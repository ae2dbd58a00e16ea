"""Fixtures for the end-to-end API tests.

Each test builds its ledger through the public JSON API on a fresh database (SQLite, and
PostgreSQL when TEST_DATABASE_URL is set: see tests/conftest.py).
"""

from __future__ import annotations

import pytest

from app.db import close_session


@pytest.fixture(autouse=True)
def _one_session_per_request(app):
    """Close each request's database session when the request ends.

    The app closes it when the application context ends. The `db` fixture keeps one
    context pushed for the whole test, so the client's requests run inside it and their
    session would outlive each request with a read transaction open, and the next
    request would reuse it (on SQLite with its old snapshot: plain reads begin DEFERRED).
    In production every request has its own context; this gives the tests the same.
    """
    app.teardown_request(lambda _exc: close_session())
