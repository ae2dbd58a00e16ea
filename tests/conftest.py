"""Shared fixtures.

Every database test runs on SQLite (a fresh file per test) and, when
TEST_DATABASE_URL is set, again on PostgreSQL (a dedicated database, tables
truncated between tests). If TEST_DATABASE_URL is set but PostgreSQL cannot be
reached the run stops with an error: it never quietly becomes a SQLite-only run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import models
from app import create_app
from app.auth import passwords
from app.auth.users import create_token, create_user
from app.db.locking import ensure_lock_row
from app.ledger.audit import Actor
from models.schemas import UserCreate

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
TEST_ACTOR = Actor("test", role="admin")


def pytest_report_header(config):
    return [f"database backends: {', '.join(BACKENDS)}"]


def pytest_sessionstart(session):
    # Checked once, before pytest-xdist starts its workers: a worker that stops the run
    # from a fixture (postgres_url) shows up as a crashed worker, without the reason.
    if PG_URL and not hasattr(session.config, "workerinput"):
        try:
            _admin_execute("SELECT 1")
        except Exception as error:  # noqa: BLE001 - any failure here must stop the run
            pytest.exit(f"TEST_DATABASE_URL is set but PostgreSQL is unusable: {error}", returncode=3)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():
    """Real Argon2id with its smallest cost parameters, for every test: tests create and sign
    in many staff users, and the production cost (deliberately slow) would dominate the run.
    A test about the production parameters can monkeypatch passwords._hasher back itself."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


def _worker_database_name() -> str:
    # One database per test process, so concurrent runs (xdist workers, two
    # developers' runs on one server) never truncate each other's tables.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{make_url(PG_URL).database}_armslength_{worker}_{os.getpid()}"


def _admin_execute(*statements: str) -> None:
    admin = create_engine(make_url(PG_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def _worker_database_url() -> str:
    """A fresh database of our own on the TEST_DATABASE_URL server."""
    name = _worker_database_name()
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL not set")
    try:
        url = _worker_database_url()
    except Exception as error:  # noqa: BLE001 - any failure here must stop the run
        pytest.exit(f"TEST_DATABASE_URL is set but PostgreSQL is unusable: {error}", returncode=3)
    engine = create_engine(url)
    models.metadata.create_all(engine)
    engine.dispose()
    yield url
    _admin_execute(f'DROP DATABASE IF EXISTS "{_worker_database_name()}" WITH (FORCE)')


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in models.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory) -> Path:
    """A SQLite file with the empty schema, made once per test process: copying it is about
    a thousand times cheaper than a create_all() for every test."""
    path = tmp_path_factory.mktemp("schema") / "schema.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    models.metadata.create_all(engine)
    engine.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_schema"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@dataclass
class AuditKey:
    """A signing key file made for one test (the audit_key fixture)."""

    path: Path
    public_key: str

    @property
    def settings(self) -> dict:
        return {"AUDIT_SIGNING_KEY_FILE": str(self.path)}


@pytest.fixture
def audit_key(tmp_path) -> AuditKey:
    """An Ed25519 audit signing key in tmp_path. A test that asks for it gets an `app`
    configured with it (AUDIT_SIGNING_KEY_FILE); without it the app has no key, as in
    development."""
    from app.ledger.signing import generate_key_file

    path = tmp_path / "audit-signing-key.pem"
    return AuditKey(path, generate_key_file(path))


@pytest.fixture
def app(database_url, request, tmp_path):
    settings = {
        "DATABASE_URL": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ORG_TIMEZONE": "UTC",
        # Jobs' files and queue (app/jobs): this test's own.
        "JOBS_DIR": str(tmp_path / "jobs"),
    }
    if "audit_key" in request.fixturenames:
        settings.update(request.getfixturevalue("audit_key").settings)
    application = create_app(settings)
    with application.app_context():
        with application.extensions["armslength"].sessions() as session:
            ensure_lock_row(session)
    yield application
    application.extensions["armslength"].engine.dispose()


@pytest.fixture
def job_worker(app):
    """The real huey consumer of the app's queue (its SQLite file), in threads of this test
    process, running jobs as the Procfile's worker does. It polls every 50 ms."""
    import signal

    from app.jobs.queue import consumer

    worker = consumer(app, workers=1, initial_delay=0.05, backoff=1.0, max_delay=0.05)
    # The consumer installs its own signal handlers; pytest's Ctrl-C must keep working.
    kept = {signum: signal.getsignal(signum) for signum in
            (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    worker.start()
    for signum, handler in kept.items():
        signal.signal(signum, handler)
    yield worker
    worker.stop(graceful=True)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """A session on the app's database, for arranging and inspecting the ledger.

    No app context is held open: requests made by the test client meanwhile get
    their own context, session and signed-in user, as in production. A read keeps its
    snapshot until the session's transaction ends: call db.rollback() (or read through
    tests/web/ledger_reads.py) to see what requests committed since.
    """
    with app.extensions["armslength"].sessions() as session:
        yield session


@pytest.fixture
def policy(app):
    return app.extensions["armslength"].policy


@dataclass
class Api:
    """A test client that sends a role's bearer token with every request."""

    client: object
    token: str
    user_id: int

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path, **kw):
        return self.client.get(f"/api/v1{path}", headers=self.headers, **kw)

    def post(self, path, json=None, **kw):
        return self.client.post(f"/api/v1{path}", json=json, headers=self.headers, **kw)

    def put(self, path, json=None, **kw):
        return self.client.put(f"/api/v1{path}", json=json, headers=self.headers, **kw)

    def patch(self, path, json=None, **kw):
        return self.client.patch(f"/api/v1{path}", json=json, headers=self.headers, **kw)

    def delete(self, path, **kw):
        return self.client.delete(f"/api/v1{path}", headers=self.headers, **kw)


@pytest.fixture
def api_as(app, client):
    """api_as("fundraiser") -> an Api client with a fresh user of that role."""
    from tests.webtools import establish

    made: dict[str, Api] = {}

    def make(role: str, name: str | None = None) -> Api:
        key = name or role
        if key not in made:
            with app.extensions["armslength"].sessions() as session:
                email = f"{key}@example.org"
                user = create_user(session, UserCreate(email=email, role=role,
                                                       password="long enough password"),
                                   TEST_ACTOR)
                establish(session, user.id)  # staff of long standing: may approve
                token = create_token(session, email, TEST_ACTOR)
                made[key] = Api(client, token, user.id)
        return made[key]

    return make


@pytest.fixture
def api(api_as):
    """An admin API client: may do everything."""
    return api_as("admin")


@pytest.fixture
def web_as(app):
    """web_as("reviewer") -> a test client signed in as a fresh user with that role."""
    from tests.webtools import make_user, sign_in

    clients: dict[str, object] = {}

    def make(role: str, name: str | None = None):
        key = name or f"web-{role}"
        if key not in clients:
            make_user(app, f"{key}@example.org", role)
            client = app.test_client()
            response = sign_in(client, f"{key}@example.org")
            assert response.status_code == 302, response.status_code
            clients[key] = client
        return clients[key]

    return make
