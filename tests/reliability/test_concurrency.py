"""The one door for money under concurrency, on SQLite and on PostgreSQL.

Lab-employee gifts that each fit alone but not all together are raced by real
concurrent writers (threads of this process, then separate "spawn" processes,
each with its own app and engine), released together by a barrier. However the
race goes, exactly as many are accepted as fit one after the other, and the
ledger is whole afterwards: one decision and one audit entry per gift, a chain
that verifies, daily totals equal to the accepted gifts.

The numbers: 1000.00 of ordinary funding, then 400.00 lab-employee gifts. One
after the other: 400/1400 = 28.6% and 800/1800 = 44.4% are below the 50% cap,
1200/2200 = 54.5% is not. So exactly 2 fit (computed below, not assumed).

The lock tests show why: while one transaction holds the ledger lock a second
writer with a short lock wait is refused (PostgreSQL: FOR UPDATE on the
ledger_lock row with lock_timeout; SQLite: BEGIN IMMEDIATE with a busy
timeout), and a writer with the normal wait queues until the first commits.

Short lock waits are configured through DATABASE_URL (app.db.make_engine):
SQLite `?timeout=<seconds>`, PostgreSQL `?options=-c lock_timeout=<ms>`.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections import Counter
from datetime import date
from fractions import Fraction

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app import create_app
from app.db import make_engine, session_factory
from app.db.locking import ledger_write, lock_ledger
from app.errors import LedgerBusy
from app.ledger import audit
from app.ledger.audit import Actor, verify_chain
from app.ledger.gifts import record_gift
from app.ledger.summary import compliance_summary
from models import Attribution, AuditEntry, Decision, FundingDay, Gift, LedgerLock
from models.schemas import GiftCreate
from tests.builders import World, gift
from tests.reliability import race_worker

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it

DAY = date(2026, 3, 2)
BASE_MINOR = 100_000  # 1000.00 from an ordinary donor
LAB_GIFT = "400.00"
LAB_GIFT_MINOR = 40_000
N_THREADS = 12
N_PROCESSES = 6
ACTOR = Actor("test:concurrency", role="admin")
SHORT_WAIT_MS = 200


def fit_one_after_another(base_minor: int, gift_minor: int, n: int, cap) -> int:
    """How many of n equal lab-employee gifts are accepted when recorded in turn."""
    lab, total, accepted = 0, base_minor, 0
    for _ in range(n):
        if Fraction(lab + gift_minor, total + gift_minor) < Fraction(cap):
            lab += gift_minor
            total += gift_minor
            accepted += 1
    return accepted


def short_wait_url(url: str, wait_ms: int = SHORT_WAIT_MS) -> str:
    """The same database, with writers giving up after wait_ms."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        query = {"timeout": str(wait_ms / 1000)}
    else:
        query = {"options": f"-c lock_timeout={wait_ms}"}
    return parsed.update_query_dict(query).render_as_string(hide_password=False)


def is_postgres(app) -> bool:
    return app.extensions["armslength"].engine.dialect.name == "postgresql"


# --- arranging and checking the ledger --------------------------------------------------------


@pytest.fixture
def race(app, api, policy):
    """A lab employee, 1000.00 of ordinary funding on DAY, and the bodies of the racing gifts."""
    world = World(api)
    base = gift(api, world.donor["id"], "1000.00", DAY, external_ref="base")
    assert base["status"] == "accepted"

    def bodies(n: int) -> list[dict]:
        return [{"donor_id": world.employee["id"], "amount": LAB_GIFT, "currency": "USD",
                 "received_on": DAY.isoformat(), "external_ref": f"race-{i}"} for i in range(n)]

    world.bodies = bodies
    world.token = api.token
    expected = fit_one_after_another(BASE_MINOR, LAB_GIFT_MINOR, N_THREADS, policy.cap)
    assert expected == 2, "the numbers were chosen so that exactly two gifts fit"
    return world


def assert_race_outcome(app, policy, refs: list[str], outcomes: dict[str, str]) -> None:
    """The ledger after a race of len(refs) lab-employee gifts of LAB_GIFT each."""
    n = len(refs)
    k = fit_one_after_another(BASE_MINOR, LAB_GIFT_MINOR, n, policy.cap)
    assert Counter(outcomes.values()) == Counter({race_worker.ACCEPTED: k,
                                                 race_worker.REJECTED: n - k}), \
        outcomes
    with app.extensions["armslength"].sessions() as session:
        gifts = session.execute(select(Gift).order_by(Gift.id)).scalars().all()
        by_ref = {g.external_ref: g for g in gifts}
        assert sorted(by_ref) == sorted(["base", *refs])  # one row per attempt, no extras
        for ref in refs:
            assert by_ref[ref].status == outcomes[ref], ref
        accepted = [g for g in gifts if g.status == "accepted"]
        assert len(accepted) == k + 1  # the base gift and the k that fit

        # Exactly one decision per gift, agreeing with its status.
        decisions = session.execute(select(Decision)).scalars().all()
        assert Counter(d.gift_id for d in decisions) == {g.id: 1 for g in gifts}
        outcome_of = {d.gift_id: d for d in decisions}
        for g in gifts:
            decision = outcome_of[g.id]
            assert {"accept": "accepted", "reject": "rejected"}[decision.outcome] == g.status
            fired = [r["rule"] for r in decision.reasons if r["fired"]]
            assert fired == (["lab_employee_cap"] if g.status == "rejected" else [])

        # One attribution per gift (each is the donor's own money).
        attributions = session.execute(select(Attribution)).scalars().all()
        assert Counter(a.gift_id for a in attributions) == {g.id: 1 for g in gifts}

        # Exactly one "gift.recorded" audit entry per gift, naming its decision.
        recorded = session.execute(
            select(AuditEntry).where(AuditEntry.action == "gift.recorded")
        ).scalars().all()
        assert Counter(e.entity_id for e in recorded) == {g.id: 1 for g in gifts}
        for entry in recorded:
            assert entry.data["decision_id"] == outcome_of[entry.entity_id].id
        report = verify_chain(session)
        all_entries = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        assert report.ok, report
        assert report.entries == all_entries

        # Daily totals, recomputed from the gift table; lab parts from first principles.
        for g in gifts:
            assert g.lab_minor == (0 if g.external_ref == "base" else LAB_GIFT_MINOR)
        expected_days = {}
        for g in accepted:
            total, lab, count = expected_days.get(g.received_on, (0, 0, 0))
            expected_days[g.received_on] = (total + g.reporting_amount_minor, lab + g.lab_minor,
                                            count + 1)
        stored_days = {
            d.day: (d.total_minor, d.lab_minor, d.gift_count)
            for d in session.execute(select(FundingDay)).scalars()
        }
        assert stored_days == expected_days
        assert stored_days == {DAY: (BASE_MINOR + k * LAB_GIFT_MINOR, k * LAB_GIFT_MINOR, k + 1)}

        # The compliance summary agrees, and the share is strictly below the cap.
        summary = compliance_summary(session, DAY, policy, "USD")
        assert (summary.total_minor, summary.lab_minor) == stored_days[DAY][:2]
        assert summary.lab_employee_share < Fraction(policy.cap)
        assert summary.lab_employee_share == Fraction(k * LAB_GIFT_MINOR,
                                                      BASE_MINOR + k * LAB_GIFT_MINOR)
        assert not summary.in_breach


def ledger_snapshot(app) -> dict:
    """Everything a money write touches, to show that a failed one wrote nothing."""
    with app.extensions["armslength"].sessions() as session:
        def count(model):
            return session.execute(select(func.count()).select_from(model)).scalar_one()

        return {
            "gifts": count(Gift),
            "decisions": count(Decision),
            "attributions": count(Attribution),
            "audit": session.execute(
                select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id)
            ).all(),
            "funding_days": session.execute(
                select(FundingDay.day, FundingDay.total_minor, FundingDay.lab_minor,
                       FundingDay.gift_count).order_by(FundingDay.day)
            ).all(),
        }


def lab_gift(race, ref: str) -> dict:
    return {"donor_id": race.employee["id"], "amount": LAB_GIFT, "currency": "USD",
            "received_on": DAY.isoformat(), "external_ref": ref}


# --- racing writers ----------------------------------------------------------------------------


def test_racing_threads_accept_only_what_fits(app, policy, race):
    """12 threads, half through the JSON API (a test client each), half through the
    ledger service (a session each), released together by a barrier."""
    bodies = race.bodies(N_THREADS)
    barrier = threading.Barrier(N_THREADS)
    outcomes: dict[str, str] = {}
    retries: dict[str, int] = {}
    lock = threading.Lock()

    def writer(i: int, body: dict) -> None:
        mode = "api" if i % 2 == 0 else "service"
        try:
            barrier.wait(timeout=30)
            outcome, tries = race_worker.attempt(app, mode, body, race.token, f"race:thread-{i}")
        except BaseException as error:  # noqa: BLE001 - reported through the outcome
            outcome, tries = f"{type(error).__name__}: {error}", 0
        with lock:
            outcomes[body["external_ref"]] = outcome
            retries[body["external_ref"]] = tries

    threads = [threading.Thread(target=writer, args=(i, body), daemon=True)
               for i, body in enumerate(bodies)]
    started = time.monotonic()
    with race_worker.widened_race_window():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert time.monotonic() - started < 30
    assert_race_outcome(app, policy, [b["external_ref"] for b in bodies], outcomes)


def test_racing_processes_accept_only_what_fits(app, policy, race, database_url):
    """6 spawned processes, each creating its own app and engine, half through the
    JSON API and half through the ledger service, released together by a barrier."""
    ctx = multiprocessing.get_context("spawn")
    bodies = race.bodies(N_PROCESSES)
    barrier = ctx.Barrier(N_PROCESSES)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=race_worker.process_main,
                    args=(database_url, "api" if i % 2 == 0 else "service", body, race.token,
                          barrier, results, True))
        for i, body in enumerate(bodies)
    ]
    outcomes: dict[str, str] = {}
    try:
        for p in processes:
            p.start()
        # A hang guard, not a timing: six spawned interpreters each import the app before
        # the barrier, which took over a minute on a machine at load 20.
        deadline = time.monotonic() + 240
        while len(outcomes) < N_PROCESSES and time.monotonic() < deadline:
            ref, outcome, _retries = results.get(timeout=max(0.1, deadline - time.monotonic()))
            outcomes[ref] = outcome
        for p in processes:
            p.join(timeout=30)
        assert [p.exitcode for p in processes] == [0] * N_PROCESSES, outcomes
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
                p.join()
            p.close()
        results.close()
        results.join_thread()
    assert_race_outcome(app, policy, [b["external_ref"] for b in bodies], outcomes)


# --- the lock itself ---------------------------------------------------------------------------


def test_second_writer_cannot_take_the_ledger_lock_while_the_first_holds_it(app, database_url):
    st = app.extensions["armslength"]
    short_engine = make_engine(short_wait_url(database_url))
    try:
        with st.sessions() as first:
            lock_ledger(first)  # holds the lock until this transaction ends

            # The bare database mechanism, with a short wait, is refused.
            started = time.monotonic()
            if is_postgres(app):
                with st.engine.connect() as conn:  # the app's engine: its normal wait is 30 s
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                    with pytest.raises(OperationalError) as refused:
                        conn.execute(select(LedgerLock.id).where(LedgerLock.id == 1)
                                     .with_for_update())
                    assert refused.value.orig.sqlstate == "55P03"  # lock_not_available
            else:
                path = make_url(database_url).database
                raw = sqlite3.connect(path, timeout=SHORT_WAIT_MS / 1000, isolation_level=None)
                try:
                    with pytest.raises(sqlite3.OperationalError, match="locked"):
                        raw.execute("BEGIN IMMEDIATE")
                finally:
                    raw.close()
            assert time.monotonic() - started < 5

            # The ledger's own entry point says "busy", which callers may retry.
            second = session_factory(short_engine)()
            try:
                with pytest.raises(LedgerBusy):
                    with ledger_write(second):
                        pytest.fail("took the ledger lock while another transaction held it")
            finally:
                second.close()
            first.rollback()

        # Released: the same short-wait writer now gets it at once.
        with session_factory(short_engine)() as second:
            with ledger_write(second):
                pass
    finally:
        short_engine.dispose()


def test_a_writer_with_the_normal_wait_queues_until_the_first_commits(app):
    st = app.extensions["armslength"]
    waited: list[float] = []
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            with st.sessions() as second:
                started = time.monotonic()
                with ledger_write(second):
                    waited.append(time.monotonic() - started)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    hold = 0.5
    with st.sessions() as first:
        with ledger_write(first):
            thread = threading.Thread(target=second_writer, daemon=True)
            thread.start()
            time.sleep(hold)  # the second writer queues behind us meanwhile
            assert waited == [], "the second writer got the lock while the first held it"
    thread.join(timeout=20)
    assert not thread.is_alive() and errors == []
    assert waited and hold * 0.8 <= waited[0] < 15


# --- faults ------------------------------------------------------------------------------------


class Injected(RuntimeError):
    pass


def _fail_after_flush(monkeypatch, ref: str, error: BaseException) -> list[bool]:
    """Make the "gift.recorded" audit append raise, after checking that the gift row,
    its decision and the day's new totals have already been flushed to the database."""
    seen: list[bool] = []
    original = audit.append

    def failing_append(session, actor, action, *args, **kwargs):
        if action != "gift.recorded":
            return original(session, actor, action, *args, **kwargs)
        written = session.execute(select(Gift).where(Gift.external_ref == ref)).scalar_one()
        decisions = session.execute(
            select(func.count()).select_from(Decision).where(Decision.gift_id == written.id)
        ).scalar_one()
        day = session.execute(select(FundingDay.total_minor).where(FundingDay.day == DAY))
        seen.append(decisions == 1 and day.scalar_one() > BASE_MINOR)
        raise error

    monkeypatch.setattr(audit, "append", failing_append)
    return seen


def busy_error() -> OperationalError:
    return OperationalError("INSERT INTO audit_entry ...", {},
                            sqlite3.OperationalError("database is locked"))


@pytest.mark.parametrize("error", [Injected("disk on fire"), busy_error()],
                         ids=["unexpected", "busy"])
def test_a_failure_inside_record_gift_writes_nothing_and_a_retry_writes_once(
        app, policy, race, monkeypatch, error):
    st = app.extensions["armslength"]
    body = lab_gift(race, "faulty")
    before = ledger_snapshot(app)
    seen = _fail_after_flush(monkeypatch, "faulty", error)
    expected = LedgerBusy if isinstance(error, OperationalError) else Injected
    with st.sessions() as session:
        with pytest.raises(expected):
            record_gift(session, GiftCreate.model_validate(body), ACTOR, policy, "USD")
    assert seen == [True], "the fault must strike after the gift was flushed"
    assert ledger_snapshot(app) == before

    monkeypatch.undo()
    with st.sessions() as session:
        recorded = record_gift(session, GiftCreate.model_validate(body), ACTOR, policy, "USD")
    assert recorded.gift.status == "accepted"
    assert_race_outcome(app, policy, ["faulty"], {"faulty": "accepted"})


@pytest.mark.parametrize("error", [Injected("disk on fire"), busy_error()],
                         ids=["unexpected", "busy"])
def test_api_failure_inside_record_gift_writes_nothing(app, policy, race, api, monkeypatch,
                                                       error):
    body = lab_gift(race, "faulty")
    before = ledger_snapshot(app)
    seen = _fail_after_flush(monkeypatch, "faulty", error)
    response = api.post("/gifts", body)
    assert seen == [True]
    if isinstance(error, OperationalError):
        # A retryable conflict: 503 with Retry-After, never 500.
        assert response.status_code == 503, response.get_json()
        assert response.headers["Retry-After"]
    else:
        assert response.status_code == 500
        assert response.get_json() == {"error": "internal error"}  # no internals leak
    assert ledger_snapshot(app) == before

    monkeypatch.undo()
    assert api.post("/gifts", body).status_code == 201
    assert api.post("/gifts", body).status_code == 409  # the retry recorded it once
    assert_race_outcome(app, policy, ["faulty"], {"faulty": "accepted"})


def test_api_answers_503_and_writes_nothing_while_the_ledger_is_locked(app, policy, race):
    """Another connection holds the ledger lock; an app whose writers wait only
    SHORT_WAIT_MS answers 503 (never 500) and writes nothing; later the retry works."""
    database_url = app.config["DATABASE_URL"]
    impatient = create_app(race_worker.app_config(short_wait_url(database_url)))
    client = impatient.test_client()
    headers = {"Authorization": f"Bearer {race.token}"}
    body = lab_gift(race, "while-locked")
    try:
        before = ledger_snapshot(app)
        with app.extensions["armslength"].sessions() as holder:
            lock_ledger(holder)
            started = time.monotonic()
            response = client.post("/api/v1/gifts", json=body, headers=headers)
            assert response.status_code == 503, (response.status_code, response.get_json())
            assert response.headers["Retry-After"]
            assert time.monotonic() - started < 5
            holder.rollback()
        assert ledger_snapshot(app) == before

        response = client.post("/api/v1/gifts", json=body, headers=headers)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["status"] == "accepted"
        assert_race_outcome(app, policy, ["while-locked"], {"while-locked": "accepted"})
    finally:
        impatient.extensions["armslength"].engine.dispose()


def test_a_writer_process_killed_mid_transaction_leaves_nothing_and_frees_the_lock(
        app, policy, race, database_url):
    ctx = multiprocessing.get_context("spawn")
    body = lab_gift(race, "crashed")
    before = ledger_snapshot(app)
    child = ctx.Process(target=race_worker.crash_main, args=(database_url, body))
    child.start()
    child.join(timeout=60)
    try:
        assert child.exitcode == race_worker.CRASH_EXIT_CODE
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        child.close()
    assert ledger_snapshot(app) == before

    # The dead writer's lock is gone: the same gift is recorded promptly, once.
    st = app.extensions["armslength"]
    deadline = time.monotonic() + 10
    while True:
        with st.sessions() as session:
            try:
                recorded = record_gift(session, GiftCreate.model_validate(body), ACTOR,
                                       policy, "USD")
                break
            except LedgerBusy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    assert recorded.gift.status == "accepted"
    assert_race_outcome(app, policy, ["crashed"], {"crashed": "accepted"})


# --- a session reused across writes ------------------------------------------------------------


def test_a_long_lived_session_does_not_write_back_stale_values(app, policy, race):
    """Sessions keep objects across commits; a write must still start from what other
    writers committed since (found by this suite: a gift could be refunded twice)."""
    from app.ledger.gifts import refund_gift
    from models import Refund

    st = app.extensions["armslength"]
    with st.sessions() as a, st.sessions() as b:
        recorded = record_gift(a, GiftCreate.model_validate(lab_gift(race, "stale")), ACTOR,
                               policy, "USD")
        day = a.get(FundingDay, DAY)  # held by the caller, so it stays in a's identity map
        a.commit()  # end the read transaction; expire_on_commit=False keeps the objects
        gift_id = recorded.gift.id

        record_gift(b, GiftCreate.model_validate({**lab_gift(race, "other"), "amount": "10.00",
                                                   "donor_id": race.donor["id"]}),
                    ACTOR, policy, "USD")
        refund_gift(b, gift_id, ACTOR, refunded_on=DAY)

        with pytest.raises(Exception, match="already fully refunded"):
            refund_gift(a, gift_id, ACTOR, refunded_on=DAY)
        record_gift(a, GiftCreate.model_validate({**lab_gift(race, "third"), "amount": "5.00",
                                                   "donor_id": race.donor["id"]}),
                    ACTOR, policy, "USD")
        assert day.total_minor == BASE_MINOR + LAB_GIFT_MINOR + 1_000 + 500

    with st.sessions() as session:
        assert session.get(Gift, gift_id).refunded_minor == LAB_GIFT_MINOR
        refunds = session.execute(select(func.sum(Refund.amount_minor))).scalar_one()
        assert refunds == LAB_GIFT_MINOR
        stored = session.get(FundingDay, DAY)
        assert (stored.total_minor, stored.gift_count) == (BASE_MINOR + LAB_GIFT_MINOR + 1_500, 4)
