"""The database connection dies after a recording request's commit (PostgreSQL).

The gift (or refund) is committed; then, before the response is sent, the server process
of the app's connection is terminated with pg_terminate_backend() and every other pooled
connection with it, and for the rest of the request no new connection can be made (the
server restarting). The app must answer with what it committed, 201 and the record, never
"503 the ledger is busy" (which says nothing was written) nor an HTML 500 from closing a
dead session; a retry with the same Idempotency-Key must get that first record, and the
ledger must hold it exactly once.

And the connection dying during the COMMIT itself: the outcome is unknown to the app, so
the answer is a 500 that says so (not a 503); a retry with the same key records the gift
once.

And a request whose session still holds a connection that died: closing the session at
the request's end fails, which is logged and never replaces the answer.

Only the fault is injected: SQLAlchemy events on the app's own sessionmaker (before and
after the commit) and engine (refusing new connections while the server is "down").
"""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import event, func, select

from app.api.idempotency import HEADER, REPLAYED_HEADER
from models import Gift, Refund
from tests.reliability.test_concurrency import (
    lab_gift,
    race,  # noqa: F401 - fixture
)
from tests.reliability.test_fault_connection import (  # noqa: F401 - fixtures
    admin,
    database_url,
    terminate,
    terminate_idle_app_connections,
    warm_pool,
)

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it


class ServerDown:
    """Arms a one-shot fault on the app: once a statement for which `marker(statement,
    parameters)` is true has run, kill that connection after its session's next commit
    (or, with during_commit, just before the COMMIT) together with every idle one, and
    refuse new connections until the block ends. The written objects themselves are not
    watched: a request's session may no longer hold them when it commits."""

    def __init__(self, app, admin_conn, marker, *, during_commit: bool = False):
        self.sessions = app.extensions["armslength"].sessions
        self.engine = app.extensions["armslength"].engine
        self.admin = admin_conn
        self.marker = marker
        self.moment = "before_commit" if during_commit else "after_commit"
        self.pid: int | None = None
        self.struck = False
        self.down = False

    def _after_execute(self, conn, _cursor, statement, parameters, _context, _many):
        if self.pid is None and self.marker(statement, parameters):
            self.pid = conn.connection.dbapi_connection.info.backend_pid

    def _strike(self, _session):
        if self.pid is not None and not self.struck:
            self.struck = True
            terminate(self.admin, self.pid)
            terminate_idle_app_connections(self.admin)
            self.down = True

    def _connect(self, *_args):
        if self.down:
            raise psycopg.OperationalError("connection refused (the test's server is down)")
        return None  # connect as usual

    def __enter__(self):
        event.listen(self.engine, "after_cursor_execute", self._after_execute)
        event.listen(self.sessions, self.moment, self._strike)
        event.listen(self.engine, "do_connect", self._connect)
        return self

    def __exit__(self, *_exc):
        self.down = False
        event.remove(self.engine, "after_cursor_execute", self._after_execute)
        event.remove(self.sessions, self.moment, self._strike)
        event.remove(self.engine, "do_connect", self._connect)


def inserts_gift(ref: str):
    return lambda statement, parameters: (statement.startswith("INSERT INTO gift ")
                                          and isinstance(parameters, dict)
                                          and parameters.get("external_ref") == ref)


def inserts_refund(statement, _parameters) -> bool:
    return statement.startswith("INSERT INTO refund ")


def keyed(api, path, body, key):
    return api.client.post(f"/api/v1{path}", json=body, headers={**api.headers, HEADER: key})


def gifts_with_ref(app, ref: str) -> int:
    with app.extensions["armslength"].sessions() as session:
        return session.execute(select(func.count()).select_from(Gift)
                               .where(Gift.external_ref == ref)).scalar_one()


@pytest.mark.parametrize("with_key", [True, False])
def test_a_gift_committed_before_the_connection_dies_is_answered_201(
        app, api, race, admin, with_key):  # noqa: F811
    body = lab_gift(race, f"after-commit-{with_key}")
    warm_pool(app)
    with ServerDown(app, admin, inserts_gift(body["external_ref"])) as fault:
        response = (keyed(api, "/gifts", body, "lost-answer") if with_key
                    else api.post("/gifts", body))
        assert fault.struck, "the fault must strike after the gift's commit"
    assert response.status_code == 201, (response.status_code, response.get_data()[:300])
    first = response.get_json()
    assert first["external_ref"] == body["external_ref"] and first["status"] == "accepted"
    assert gifts_with_ref(app, body["external_ref"]) == 1
    if with_key:
        # The client never saw that 201 (the network dropped it): it retries.
        again = keyed(api, "/gifts", body, "lost-answer")
        assert again.status_code == 201 and again.headers[REPLAYED_HEADER] == "true"
        assert again.get_json() == first
        assert gifts_with_ref(app, body["external_ref"]) == 1


def test_a_refund_committed_before_the_connection_dies_is_answered_201(
        app, api, race, admin):  # noqa: F811
    made = api.post("/gifts", lab_gift(race, "to-refund")).get_json()
    warm_pool(app)
    with ServerDown(app, admin, inserts_refund) as fault:
        response = keyed(api, f"/gifts/{made['id']}/refund",
                         {"amount": "100.00", "reason": "asked"}, "refund-once")
        assert fault.struck
    assert response.status_code == 201, (response.status_code, response.get_data()[:300])
    assert response.get_json()["gift"]["refunded_amount"] == "100.00"
    again = keyed(api, f"/gifts/{made['id']}/refund", {"amount": "100.00", "reason": "asked"},
                  "refund-once")
    assert (again.status_code, again.get_json()) == (201, response.get_json())
    with app.extensions["armslength"].sessions() as session:
        assert session.execute(select(func.count()).select_from(Refund)).scalar_one() == 1


def test_a_connection_lost_during_the_commit_is_an_unknown_outcome_and_a_retry_records_once(
        app, api, race, admin):  # noqa: F811
    body = lab_gift(race, "during-commit")
    warm_pool(app)
    with ServerDown(app, admin, inserts_gift(body["external_ref"]),
                    during_commit=True) as fault:
        response = keyed(api, "/gifts", body, "unknown-outcome")
        assert fault.struck
    assert response.status_code == 500, (response.status_code, response.get_json())
    assert "unknown" in response.get_json()["error"]
    assert gifts_with_ref(app, body["external_ref"]) == 0  # this time it was not committed
    again = keyed(api, "/gifts", body, "unknown-outcome")
    assert again.status_code == 201 and REPLAYED_HEADER not in again.headers
    assert keyed(api, "/gifts", body, "unknown-outcome").get_json() == again.get_json()
    assert gifts_with_ref(app, body["external_ref"]) == 1


def test_a_dead_connection_at_the_session_teardown_never_replaces_the_response(
        app, api, race, admin):  # noqa: F811
    """The request's session holds a connection whose server process is gone when the
    request ends: closing it (a rollback) fails, and is logged; the answer stands."""
    from flask import request_finished

    from app.db import get_session

    armed = []

    def kill_the_sessions_connection(_sender, response, **_extra):
        if armed:
            armed.clear()
            pid = get_session().connection().connection.dbapi_connection.info.backend_pid
            terminate(admin, pid)

    request_finished.connect(kill_the_sessions_connection, app)
    try:
        armed.append(True)
        read = api.get("/gifts")
        assert not armed and read.status_code == 200, read.get_data()[:300]
        body = lab_gift(race, "teardown")
        armed.append(True)
        made = keyed(api, "/gifts", body, "teardown")
        assert not armed and made.status_code == 201, (made.status_code, made.get_data()[:300])
    finally:
        request_finished.disconnect(kill_the_sessions_connection, app)
    assert keyed(api, "/gifts", body, "teardown").get_json() == made.get_json()
    assert gifts_with_ref(app, "teardown") == 1
