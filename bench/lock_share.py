"""How much of a gift request's CPU runs while it holds the ledger lock (in process, one client).

    .venv/bin/python -m bench.lock_share [N]                     # this checkout, SQLite
    .venv/bin/python -m bench.lock_share [N] --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    PYTHONPATH=/path/to/other/checkout .venv/bin/python -m bench.lock_share   # another one

Builds a fresh SQLite database in a temporary directory, 50 donors (5 of them lab
employees), records 30 warm-up gifts and then N (default 300) through POST /api/v1/gifts
with Flask's test client, and prints the thread CPU time per request and the part of it
spent between taking the lock (BEGIN IMMEDIATE) and the commit. Under concurrency the lock's
hold time bounds the rate, so this ratio can be compared between two checkouts on a busy
machine, alternately, where wall-clock rates cannot.

With --pg-url it runs on a fresh PostgreSQL database (named from BENCH_DB_PREFIX, dropped
at the end) and also prints the CPU the database's backends spent per request (from /proc,
as bench.intake_http reads it). It prints the SQL statements per request too (each one
costs both sides CPU; PostgreSQL's transaction commands and pings are not counted).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date, timedelta

from sqlalchemy import create_engine, event, make_url, text

import models
from app import create_app
from app.auth.users import create_token, create_user
from app.db.locking import ensure_lock_row
from app.ledger.audit import Actor
from models.schemas import UserCreate

ADMIN = Actor("bench", role="admin")


def _setup(app) -> tuple[object, dict, list[int]]:
    st = app.extensions["armslength"]
    models.metadata.create_all(st.engine)
    with app.app_context(), st.sessions() as session:
        ensure_lock_row(session)
        create_user(session, UserCreate(email="bench@example.org", role="admin",
                                        password="long enough password"), ADMIN)
        token = create_token(session, "bench@example.org", ADMIN)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    lab = client.post("/api/v1/organizations", json={"name": "Lab", "covered_lab": True},
                      headers=headers).get_json()["id"]
    donors = [client.post("/api/v1/donors", json={"type": "person",
                                                  "name": f"Person {i} Example"},
                          headers=headers).get_json()["id"] for i in range(50)]
    for donor in donors[:5]:
        client.post(f"/api/v1/donors/{donor}/affiliations", headers=headers, json={
            "organization_id": lab, "kind": "employee", "start_date": "2015-01-01"})
    return client, headers, donors


def _fresh_postgresql(base_url: str) -> tuple[str, object]:
    """A new empty database next to base_url's: (its url, the admin engine to drop it)."""
    name = f"{os.environ.get('BENCH_DB_PREFIX', 'armslength')}_lockshare_{os.getpid()}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(base_url).set(database=name).render_as_string(hide_password=False), admin


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lock_share")
    parser.add_argument("n", nargs="?", type=int, default=300)
    parser.add_argument("--pg-url", help="run on PostgreSQL (a fresh database beside this one)")
    args = parser.parse_args()
    n = args.n
    admin = None
    if args.pg_url:
        url, admin = _fresh_postgresql(args.pg_url)
    else:
        workdir = tempfile.mkdtemp(prefix="armslength-lockshare-")
        url = f"sqlite:///{os.path.join(workdir, 'db.sqlite3')}"
    try:
        return _run(url, n)
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" '
                                  "WITH (FORCE)"))
            admin.dispose()


def _run(url: str, n: int) -> int:
    from bench.intake_http import DatabaseCpu

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-" + "x" * 40,
                      "ORG_TIMEZONE": "UTC", "TESTING": True})
    engine = app.extensions["armslength"].engine
    client, headers, donors = _setup(app)
    database_cpu = DatabaseCpu(url)
    held = [0.0]
    statements = [0]
    since: list[float | None] = [None]

    def statement(conn, cursor, text, *args):
        statements[0] += 1
        if since[0] is None and (text.startswith("BEGIN IMMEDIATE") or "FOR UPDATE" in text):
            since[0] = time.thread_time()

    def commit(conn):
        if since[0] is not None:
            held[0] += time.thread_time() - since[0]
            since[0] = None

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    today = date.today()

    def gift(i: int) -> None:
        response = client.post("/api/v1/gifts", headers=headers, json={
            "donor_id": donors[i % len(donors)], "amount": f"{20 + i % 80}.00",
            "currency": "USD", "received_on": (today - timedelta(days=1 + i % 30)).isoformat()})
        if response.status_code != 201:
            raise RuntimeError(f"gift {i}: {response.status_code} {response.get_json()}")

    for i in range(30):
        gift(i)
    held[0] = 0.0
    statements[0] = 0
    db_cpu = database_cpu.sample()
    cpu, wall = time.thread_time(), time.perf_counter()
    for i in range(n):
        gift(i)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    db_cpu = database_cpu.sample() - db_cpu
    database = "" if not url.startswith("postgresql") else \
        f"; database CPU {1000 * db_cpu / n:.2f} ms"
    print(f"{n} gifts ({make_url(url).get_backend_name()}): CPU per request "
          f"{1000 * cpu / n:.2f} ms, of which under the lock "
          f"{1000 * held[0] / n:.2f} ms ({100 * held[0] / cpu:.0f}%){database}; "
          f"{statements[0] / n:.1f} statements; wall {1000 * wall / n:.2f} ms; "
          f"load {os.getloadavg()[0]:.1f}")
    database_cpu.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
