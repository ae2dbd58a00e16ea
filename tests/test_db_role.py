"""The least-privilege PostgreSQL role of docs/deployment.md, applied as written there.

The SQL is read from the document itself, so the documentation cannot drift from what is
tested: an owner role runs the migrations, the app role records a gift, and the app role is
refused every edit of an append-only table, TRUNCATE and trigger changes.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app import create_app
from app.cli import MIGRATIONS
from app.db.locking import ensure_lock_row
from app.ledger import parties
from app.ledger.audit import verify_chain
from app.ledger.gifts import record_gift
from app.ledger.row_verify import verify_rows
from models.schemas import DonorCreate, GiftCreate
from tests.conftest import TEST_ACTOR

PG_URL = os.environ.get("TEST_DATABASE_URL")
DOC = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL not set")


def _block(marker: str) -> str:
    """The ```sql block of docs/deployment.md whose first line is `-- armslength: <marker>`."""
    for body in re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S):
        if body.startswith(f"-- armslength: {marker}\n"):
            return body
    raise AssertionError(f"no sql block '{marker}' in {DOC}")


def _statements(sql: str, names: dict[str, str]) -> list[str]:
    for old, new in names.items():
        sql = re.sub(rf"\b{old}\b", new, sql)
    lines = [line for line in sql.splitlines() if not line.startswith("--")]
    return [s.strip() for s in " ".join(lines).split(";") if s.strip()]


def _run(url: str, statements: list[str]) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def roles():
    suffix = f"{os.getpid()}"
    names = {"armslength_owner": f"al_owner_{suffix}", "armslength_app": f"al_app_{suffix}",
             "armslength": f"al_role_test_{suffix}"}
    owner, app_role, database = names["armslength_owner"], names["armslength_app"], names["armslength"]
    base = make_url(PG_URL)
    cleanup = [f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
               f"DROP ROLE IF EXISTS {app_role}", f"DROP ROLE IF EXISTS {owner}"]
    _run(PG_URL, cleanup)
    _run(PG_URL, [f"CREATE ROLE {owner} LOGIN",
                  f"CREATE ROLE {app_role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
                  f'CREATE DATABASE "{database}" OWNER {owner}'])
    urls = {who: base.set(database=database, username=user).render_as_string(hide_password=False)
            for who, user in (("superuser", base.username), ("owner", owner), ("app", app_role))}
    try:
        yield names, urls
    finally:
        _run(PG_URL, cleanup)


def test_the_documented_app_role_writes_the_ledger_and_cannot_edit_it(roles):
    names, urls = roles
    _run(urls["superuser"], _statements(_block("schema privileges"), names))
    owner_engine = create_engine(urls["owner"])
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = owner_engine
    command.upgrade(config, "head")
    owner_engine.dispose()
    _run(urls["owner"], _statements(_block("app grants"), names))

    app = create_app({"DATABASE_URL": urls["app"], "TESTING": True, "ORG_TIMEZONE": "UTC",
                      "SECRET_KEY": "test-secret-key-not-for-production"})
    st = app.extensions["armslength"]
    try:
        with app.app_context(), st.sessions() as session:
            ensure_lock_row(session)
            donor = parties.create_donor(session, DonorCreate(type="person", name="Dana"),
                                         TEST_ACTOR)
            recorded = record_gift(session, GiftCreate(
                donor_id=donor.id, amount="100.00", currency="USD",
                received_on=date(2026, 3, 1)), TEST_ACTOR, st.policy, "USD")
            assert recorded.gift.status == "accepted"
            assert verify_chain(session).ok and verify_rows(session).ok
    finally:
        st.engine.dispose()

    refused = [
        "UPDATE decision SET outcome = 'reject'",
        "DELETE FROM decision",
        "UPDATE audit_entry SET actor = 'x'",
        "DELETE FROM audit_entry",
        "TRUNCATE gift CASCADE",
        "ALTER TABLE decision DISABLE TRIGGER ALL",
        "DROP TRIGGER decision_append_only ON decision",
        "CREATE TABLE mine (id int)",
    ]
    for statement in refused:
        with pytest.raises(DBAPIError, match="permission denied|must be owner"):
            _run(urls["app"], [statement])
    # The app may change a gift (its status moves); verification then names it.
    _run(urls["app"], ["UPDATE gift SET status = 'rejected'"])
    app = create_app({"DATABASE_URL": urls["app"], "TESTING": True, "ORG_TIMEZONE": "UTC",
                      "SECRET_KEY": "test-secret-key-not-for-production"})
    try:
        with app.app_context(), app.extensions["armslength"].sessions() as session:
            report = verify_rows(session)
        assert [(f.table, f.id, f.problem) for f in report.findings] == [
            ("gift", recorded.gift.id, "content differs")]
    finally:
        app.extensions["armslength"].engine.dispose()
