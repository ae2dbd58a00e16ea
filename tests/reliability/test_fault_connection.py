"""The database connection dropped in the middle of a money write (PostgreSQL).

While record_gift is inside its locked transaction, another connection terminates the
writer's server process with pg_terminate_backend(): the way a restarted or failed-over
server, a killed backend or a broken network path looks to the app. Two moments:

- right after the gift row is inserted (its funding totals, attributions, decision and
  audit entry not written yet);
- at the commit, when everything has been flushed (the app cannot know whether a COMMIT
  whose connection died was committed: the service raises CommitUncertain, the API answers
  500 "outcome unknown", never a 503; here it was not).

Each through the ledger service and through the JSON API. The write must fail (an
exception; the API answers 5xx, never 201), nothing of it may be in the ledger (no gift,
decision, attribution, audit entry or funding_day change), the app's connection pool must
recover (pool_pre_ping; other pooled connections are terminated too), and retrying the
same gift (same external_ref) records it exactly once.

Only the fault is injected, by a SQLAlchemy event on the app's own engine (after the
gift's INSERT, however the door issues it) or sessionmaker (before the commit); the
ledger code runs unchanged. There is no server connection to drop on SQLite, so these
tests are generated for PostgreSQL only (a killed SQLite writer is in test_fault_kill.py).
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from app.errors import CommitUncertain
from app.ledger.audit import Actor
from app.ledger.gifts import record_gift
from models.schemas import GiftCreate
from tests.conftest import PG_URL, _truncate_postgres
from tests.reliability.test_concurrency import (
    assert_race_outcome,
    lab_gift,
    ledger_snapshot,
    race,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it

ACTOR = Actor("test:dropped-connection", role="admin")
MOMENTS = ["after_gift_flush", "at_commit"]


@pytest.fixture(params=["postgresql"] if PG_URL else [
    pytest.param("postgresql", marks=pytest.mark.skip(reason="needs TEST_DATABASE_URL (PostgreSQL)"))])
def database_url(request) -> str:
    """Overrides conftest's: these tests exist for PostgreSQL only."""
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def admin(database_url):
    """A connection of our own, outside the app's pool, to terminate the app's backends from."""
    engine = create_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def terminate(admin, pid: int) -> None:
    # Waits (up to 5 s) until the backend is gone, so the writer's next statement fails.
    assert admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()


def terminate_idle_app_connections(admin) -> int:
    """Every other idle connection to the test database: the app's pooled ones."""
    pids = admin.execute(text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state = 'idle'")).scalars().all()
    for pid in pids:
        terminate(admin, pid)
    return len(pids)


def drop_connection_inside(app, admin, ref: str, moment: str):
    """Arm a one-shot fault: terminate the backend of the session writing gift `ref`.
    Returns (disarm, struck) where struck lists what the fault saw when it struck."""
    sessions = app.extensions["armslength"].sessions
    struck: list[dict] = []

    def strike(pid: int, seen: dict) -> None:
        struck.append({**seen, "pid": pid})
        terminate(admin, pid)

    if moment == "after_gift_flush":
        # At the connection, so it does not matter how the door writes the row (a flush or a
        # Core INSERT): the INSERT INTO gift for this external_ref has just run.
        target, name = app.extensions["armslength"].engine, "after_cursor_execute"

        def listener(conn, _cursor, statement, parameters, _context, _executemany):
            if (not struck and statement.startswith("INSERT INTO gift ")
                    and isinstance(parameters, dict) and parameters.get("external_ref") == ref):
                strike(conn.connection.dbapi_connection.info.backend_pid,
                       {"after": "INSERT INTO gift"})
    else:
        # The connection that inserted the gift, struck at its session's commit. Not found
        # through the gift object: an API request commits after its view has returned,
        # when the session may no longer hold the gift (its identity map is weak).
        target, name = sessions, "before_commit"
        writer: list[int] = []

        def inserted(conn, _cursor, statement, parameters, _context, _executemany):
            if (not writer and statement.startswith("INSERT INTO gift ")
                    and isinstance(parameters, dict) and parameters.get("external_ref") == ref):
                writer.append(conn.connection.dbapi_connection.info.backend_pid)

        def listener(session):
            if not struck and writer:
                strike(writer[0], {"at": "commit"})

        event.listen(app.extensions["armslength"].engine, "after_cursor_execute", inserted)

    event.listen(target, name, listener)

    def disarm():
        if event.contains(target, name, listener):
            event.remove(target, name, listener)
        engine = app.extensions["armslength"].engine
        if moment != "after_gift_flush" and event.contains(engine, "after_cursor_execute",
                                                           inserted):
            event.remove(engine, "after_cursor_execute", inserted)

    return disarm, struck


def warm_pool(app, n: int = 3) -> None:
    """Several pooled connections, so the pool holds some that will be terminated while idle."""
    engine = app.extensions["armslength"].engine
    conns = [engine.connect() for _ in range(n)]
    for conn in conns:
        conn.execute(text("SELECT 1"))
    for conn in conns:
        conn.close()


@pytest.mark.parametrize("moment", MOMENTS)
def test_service_write_whose_connection_drops_leaves_nothing_and_a_retry_records_once(
        app, policy, race, admin, moment):  # noqa: F811
    st = app.extensions["armslength"]
    body = lab_gift(race, f"dropped-{moment}")
    warm_pool(app)
    before = ledger_snapshot(app)
    disarm, struck = drop_connection_inside(app, admin, body["external_ref"], moment)
    try:
        with st.sessions() as session:
            with pytest.raises((DBAPIError, CommitUncertain)) as failed:
                record_gift(session, GiftCreate.model_validate(body), ACTOR, policy, "USD")
            # Lost at the COMMIT itself, the outcome is unknown to the app: CommitUncertain
            # (app.db.locking.commit), never "nothing was saved".
            lost = failed.value if moment == "after_gift_flush" else failed.value.__cause__
            assert isinstance(failed.value, CommitUncertain) == (moment == "at_commit")
            assert lost.connection_invalidated, failed.value
            assert len(struck) == 1, "the fault must strike inside record_gift"
            if moment == "after_gift_flush":
                assert struck[0]["after"] == "INSERT INTO gift"  # the gift row had been inserted
    finally:
        disarm()
    assert ledger_snapshot(app) == before

    # Other pooled connections die too (a server restart); the pool must still recover.
    terminate_idle_app_connections(admin)
    with st.sessions() as session:
        recorded = record_gift(session, GiftCreate.model_validate(body), ACTOR, policy, "USD")
        assert recorded.gift.status == "accepted"
    assert_race_outcome(app, policy, [body["external_ref"]], {body["external_ref"]: "accepted"})


@pytest.mark.parametrize("moment", MOMENTS)
def test_api_write_whose_connection_drops_answers_5xx_leaves_nothing_and_a_retry_records_once(
        app, api, policy, race, admin, moment):  # noqa: F811
    body = lab_gift(race, f"api-dropped-{moment}")
    warm_pool(app)
    before = ledger_snapshot(app)
    disarm, struck = drop_connection_inside(app, admin, body["external_ref"], moment)
    try:
        response = api.post("/gifts", body)
    finally:
        disarm()
    assert len(struck) == 1, "the fault must strike inside the request's write"
    assert 500 <= response.status_code < 600, (response.status_code, response.get_json())
    answer = response.get_json()
    assert set(answer) == {"error"} and "terminat" not in answer["error"]  # no internals leak
    assert ledger_snapshot(app) == before

    terminate_idle_app_connections(admin)
    assert api.get("/gifts").status_code == 200  # reads work again at once
    first = api.post("/gifts", body)
    assert first.status_code == 201, first.get_json()
    again = api.post("/gifts", body)
    assert again.status_code == 409
    assert again.get_json()["existing_id"] == first.get_json()["id"]
    assert_race_outcome(app, policy, [body["external_ref"]], {body["external_ref"]: "accepted"})
