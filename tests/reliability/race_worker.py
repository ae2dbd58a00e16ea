"""Writers for the concurrency tests (tests/reliability/test_concurrency.py).

The same attempt() runs in a thread of the test process or in a child process
started with the "spawn" context (process_main), so it only uses what a fresh
interpreter can import: the app factory, the ledger service and the JSON API.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from app import create_app
from app.errors import LedgerBusy
from app.ledger import audit, windows
from app.ledger.audit import Actor
from app.ledger.gifts import record_gift
from models.schemas import GiftCreate

#: Outcomes a writer reports; anything else is a failure the test shows verbatim.
ACCEPTED, REJECTED = "accepted", "rejected"

#: Seconds a writer sleeps between reading the funding totals and deciding, to widen
#: the read-then-write window: without the ledger lock every writer would then read
#: the same totals and the cap would break on every run, not just on unlucky ones.
RACE_WINDOW_SECONDS = 0.02


def app_config(url: str) -> dict:
    return {
        "DATABASE_URL": url,
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ORG_TIMEZONE": "UTC",
    }


@contextmanager
def widened_race_window(seconds: float = RACE_WINDOW_SECONDS):
    """Make every screening pause after it has read the window totals."""
    original = windows.funding_facts

    def slow_funding_facts(*args, **kwargs):
        facts = original(*args, **kwargs)
        time.sleep(seconds)
        return facts

    windows.funding_facts = slow_funding_facts
    try:
        yield
    finally:
        windows.funding_facts = original


def attempt(app, mode: str, body: dict, token: str | None, label: str,
            max_tries: int = 50) -> tuple[str, int]:
    """Record one gift through the API ("api") or the ledger service ("service").

    A retryable refusal (HTTP 503 / LedgerBusy) is retried, as a client would.
    Returns (outcome, retries): the gift's status, or a description of what went wrong.
    """
    st = app.extensions["armslength"]
    client = app.test_client() if mode == "api" else None
    retries = 0
    for _ in range(max_tries):
        if mode == "api":
            response = client.post("/api/v1/gifts", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 201:
                return response.get_json()["status"], retries
            if response.status_code == 503:
                retries += 1
                time.sleep(0.01)
                continue
            return f"HTTP {response.status_code}: {response.get_json()}", retries
        with st.sessions() as session:
            try:
                recorded = record_gift(session, GiftCreate.model_validate(body),
                                       Actor(label, role="admin"), st.policy,
                                       st.reporting_currency)
                return recorded.gift.status, retries
            except LedgerBusy:
                retries += 1
                time.sleep(0.01)
                continue
            except Exception as error:  # noqa: BLE001 - reported to the parent verbatim
                return f"{type(error).__name__}: {error}", retries
    return "gave up", retries


def _warm_up(app) -> None:
    """Open a pooled connection now, so connecting is not part of the race."""
    with app.extensions["armslength"].engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        conn.rollback()


def process_main(url: str, mode: str, body: dict, token: str | None, barrier, results,
                 widen: bool) -> None:
    """Child process: its own app, engine and session; start with the others."""
    app = create_app(app_config(url))
    engine = app.extensions["armslength"].engine
    try:
        _warm_up(app)
        barrier.wait(timeout=60)
        label = f"race:process-{os.getpid()}"
        if widen:
            with widened_race_window():
                outcome = attempt(app, mode, body, token, label)
        else:
            outcome = attempt(app, mode, body, token, label)
        results.put((body["external_ref"], *outcome))
    except BaseException as error:  # noqa: BLE001 - the parent must hear about it
        results.put((body.get("external_ref"), f"{type(error).__name__}: {error}", 0))
        raise
    finally:
        engine.dispose()


#: Exit status of a writer that "crashes" in the middle of record_gift.
CRASH_EXIT_CODE = 17


def crash_main(url: str, body: dict) -> None:
    """Child process: die abruptly after the gift, its decision and the funding
    totals are flushed but before the transaction commits."""
    app = create_app(app_config(url))
    st = app.extensions["armslength"]

    def die(*_args, **_kwargs):
        os._exit(CRASH_EXIT_CODE)  # no rollback, no cleanup: like a killed worker

    audit.append = die
    with st.sessions() as session:
        record_gift(session, GiftCreate.model_validate(body), Actor("race:crash", role="admin"),
                    st.policy, st.reporting_currency)
    os._exit(1)  # not reached: record_gift must have called audit.append
