"""A writer killed with SIGKILL in the middle of its transaction, on SQLite and PostgreSQL.

tests/reliability/test_concurrency.py covers a writer that dies by itself (os._exit inside
record_gift) and errors raised inside the transaction. Here the *parent* kills a child
that is stopped inside a ledger write, at a point where every row of the write has been
flushed to the database and the ledger lock is held (shown by a second writer being
refused while the child waits):

- a gift recorded through the JSON API (POST /api/v1/gifts);
- a CSV import, in its one transaction, after some of its gifts were recorded;
  (the Stripe webhook is in tests/stripe/test_stripe_webhook_kill.py)

Afterwards nothing of the killed write is in the ledger, the lock is free at once, and
retrying the same request gives exactly one result: the gift once (the next retry is a
409), the import once (running it again is refused as duplicates).
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from app.db import make_engine, session_factory
from app.db.locking import ledger_write
from app.errors import LedgerBusy
from app.ledger.audit import Actor, verify_chain
from app.ledger.csv_import import KINDS, CsvImport
from models import Decision, Donor, DonorExternalId, FundingDay, Gift
from tests.builders import organization
from tests.reliability import fault_worker, race_worker
from tests.reliability.test_concurrency import (
    assert_race_outcome,
    lab_gift,
    ledger_snapshot,
    race,  # noqa: F401 - fixture
    short_wait_url,
)

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it

SPAWN = multiprocessing.get_context("spawn")
ENTER_TIMEOUT = 90


def kill_when_inside(target, args: tuple, database_url: str) -> None:
    """Start the child, wait until it is stopped inside its transaction, check that it
    holds the ledger lock, then SIGKILL it."""
    entered = SPAWN.Event()
    child = SPAWN.Process(target=target, args=(*args, entered))
    child.start()
    try:
        assert entered.wait(ENTER_TIMEOUT), "the child never reached the point to kill it at"
        assert_ledger_locked(database_url)
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        child.close()


def assert_ledger_locked(database_url: str) -> None:
    """A second writer that waits only briefly is refused: the child holds the lock."""
    engine = make_engine(short_wait_url(database_url))
    try:
        with session_factory(engine)() as session:
            with pytest.raises(LedgerBusy):
                with ledger_write(session):
                    pytest.fail("took the ledger lock the killed writer should hold")
    finally:
        engine.dispose()


def first_write_succeeds(write, deadline_seconds: float = 10):
    """The dead writer's lock must be gone promptly (PostgreSQL notices the closed
    connection, SQLite's file lock goes with the process): retry briefly on LedgerBusy."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return write()
        except LedgerBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def child_config(app) -> dict:
    return race_worker.app_config(app.config["DATABASE_URL"])


# --- a gift through the API ------------------------------------------------------------------

def test_a_killed_api_gift_leaves_nothing_and_its_retry_records_it_once(app, api, policy, race):  # noqa: F811
    body = lab_gift(race, "killed-api")
    before = ledger_snapshot(app)
    kill_when_inside(fault_worker.api_gift_main, (child_config(app), race.token, body),
                     app.config["DATABASE_URL"])
    assert ledger_snapshot(app) == before

    response = first_write_succeeds(lambda: _post_or_busy(api, body))
    assert response.status_code == 201, response.get_json()
    again = api.post("/gifts", body)
    assert again.status_code == 409
    assert again.get_json()["existing_id"] == response.get_json()["id"]
    assert_race_outcome(app, policy, ["killed-api"], {"killed-api": "accepted"})


def _post_or_busy(api, body):
    response = api.post("/gifts", body)
    if response.status_code == 503:
        raise LedgerBusy("retry")
    return response


# --- a CSV import ------------------------------------------------------------------------------

IMPORT_GIFTS = 12
TODAY = date(2026, 6, 30)


def write_import(directory) -> None:
    with (directory / "donors.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "type", "name"])
        for i in range(1, 5):
            w.writerow([f"k-d{i}", "person", f"Kill Test Donor {i}"])
    with (directory / "affiliations.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["donor_external_id", "organization", "senior_decision_maker", "start_date"])
        w.writerow(["k-d1", "Kill Test Lab", "false", "2020-01-01"])
    with (directory / "gifts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_ref", "donor_external_id", "amount", "currency", "received_on"])
        for i in range(IMPORT_GIFTS):
            w.writerow([f"k-g{i}", f"k-d{1 + i % 4}", f"{100 + i}.00", "USD",
                        f"2026-{1 + i % 6:02d}-{1 + i:02d}"])


def imported_counts(app) -> dict:
    with app.extensions["armslength"].sessions() as session:
        def count(model):
            return session.execute(select(func.count()).select_from(model)).scalar_one()

        return {"donors": count(Donor), "external_ids": count(DonorExternalId),
                "gifts": count(Gift), "decisions": count(Decision)}


def run_import(app, directory) -> CsvImport:
    st = app.extensions["armslength"]
    with st.sessions() as session:
        with CsvImport(session, today=TODAY, reporting_currency="USD") as job:
            for kind in KINDS:
                with (directory / f"{kind}.csv").open("rb") as stream:
                    job.check(kind, stream)
            if not job.errors:
                job.result = job.run(Actor("test:import", role="admin"), st.policy_for(session),
                                     files={kind: f"{kind}.csv" for kind in KINDS})
            return job


def test_a_killed_import_leaves_nothing_and_its_retry_imports_once(app, api, tmp_path):
    organization(api, "Kill Test Lab", covered_lab=True)
    write_import(tmp_path)
    before = ledger_snapshot(app)
    before_counts = imported_counts(app)
    skip = IMPORT_GIFTS // 2  # killed with half its gifts (and all its donors) flushed
    kill_when_inside(fault_worker.import_main,
                     (child_config(app), str(tmp_path), TODAY.isoformat(), skip),
                     app.config["DATABASE_URL"])
    assert ledger_snapshot(app) == before
    assert imported_counts(app) == before_counts

    job = first_write_succeeds(lambda: run_import(app, tmp_path))
    assert job.errors == []
    assert (job.result.donors, job.result.affiliations, job.result.gifts) == (4, 1, IMPORT_GIFTS)
    after = imported_counts(app)
    assert after == {"donors": before_counts["donors"] + 4, "external_ids": 4,
                     "gifts": IMPORT_GIFTS, "decisions": IMPORT_GIFTS}

    again = run_import(app, tmp_path)  # the same files again: every row is a duplicate
    assert again.errors and not hasattr(again, "result")
    assert imported_counts(app) == after
    with app.extensions["armslength"].sessions() as session:
        assert verify_chain(session).ok
        stored = {d.day: d.total_minor for d in session.execute(select(FundingDay)).scalars()
                  if d.gift_count}
        expected: dict = {}
        for g in session.execute(select(Gift).where(Gift.status == "accepted")).scalars():
            expected[g.received_on] = expected.get(g.received_on, 0) + g.reporting_amount_minor
        assert stored == expected
