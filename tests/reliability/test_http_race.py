"""The one door for money raced over real HTTP, on SQLite and PostgreSQL.

A real gunicorn (three sync worker processes, `app.wsgi:app` configured from the
environment as in production) serves the test's database on a free port of 127.0.0.1.
Twelve client threads POST /api/v1/gifts at it, 15 gifts each: lab employees' and
ordinary donors' gifts spread over several dates, in a shuffled order, so many are
back-dated behind gifts already recorded. Every gift has its own external_ref. The
workers wait only briefly for the ledger lock, so some requests are answered 503; the
client retries those with the same body and the same external_ref, as the API says is
safe. Some gifts that were answered 201 are sent again, as by a client that lost the
response: that must be a 409 naming the gift already recorded, never a second gift.

The lab employees offer more money than the ordinary donors in total, so the cap
must bind: some lab gifts are rejected for it (checked, so the test cannot pass
vacuously). Afterwards, from the database rows:

- the lab-employee share is strictly below the cap in the window ending on every date
  with accepted gifts, recomputed independently from the gift, refund and attribution
  rows, and the app's compliance summary (in process and over HTTP) agrees;
- no gift is lost or duplicated: every 201's gift exists once, one gift row per
  external_ref answered 201 and no other;
- every gift has exactly one decision and one "gift.recorded" audit entry naming it;
  funding_day is the accepted gifts day by day; the audit chain verifies.

Bounded for CI: about 200 requests, well under a minute; gunicorn is always stopped.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import select

from app.ledger.audit import verify_chain
from app.ledger.summary import compliance_summary
from models import Attribution, AuditEntry, Decision, FundingDay, Gift, Refund
from models.schemas import PPM
from tests.builders import affiliate, organization, person
from tests.reliability.test_concurrency import short_wait_url

pytestmark = pytest.mark.slow  # long-running: `-m "not slow"` skips it, CI runs it

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3
THREADS = 12
PER_THREAD = 15
#: Every REPLAY_EVERY-th gift answered 201 is sent again (a client that lost the answer).
REPLAY_EVERY = 6
#: How long a worker waits for the ledger lock before answering 503 (short on purpose).
LOCK_WAIT_MS = 100
MAX_TRIES = 300
START_TIMEOUT = 45
RUN_BUDGET_SECONDS = 60

FIRST_DAY = date(2026, 2, 2)
DAYS = [FIRST_DAY + timedelta(days=7 * i) for i in range(6)]
#: (minor units) Ordinary gifts are all accepted; lab-employee gifts offer more in total
#: (about 1.6 times as much), so they cannot all fit below a 50% cap.
ORDINARY_AMOUNTS = [50_00, 80_00, 120_00]
LAB_AMOUNTS = [90_00, 150_00, 200_00]


def free_listening_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 and listening, handed to gunicorn as
    fd://N: no window in which another process could take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@dataclass
class Server:
    port: int
    token: str
    process: subprocess.Popen
    log: Path

    def request(self, method: str, path: str, body: dict | None = None,
                timeout: float = 30) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"Authorization": f"Bearer {self.token}"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else {}, dict(response.getheaders())
        finally:
            conn.close()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; its workers go with it
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def cast(app, api):
    """A covered lab, three of its employees, four ordinary donors (through the API)."""
    lab = organization(api, "Frontier Lab", covered_lab=True)
    employees = []
    for i in range(3):
        employee = person(api, f"Lab Employee {i}")
        affiliate(api, employee["id"], lab["id"], start="2015-01-01", title="Engineer")
        employees.append(employee["id"])
    ordinary = [person(api, f"Ordinary Donor {i}")["id"] for i in range(4)]
    return {"employees": employees, "ordinary": ordinary, "token": api.token}


@pytest.fixture
def server(app, cast, tmp_path):
    """gunicorn with WORKER sync workers serving the test's database; always stopped."""
    sock = free_listening_socket()
    port = sock.getsockname()[1]
    env = {**os.environ,
           "DATABASE_URL": short_wait_url(app.config["DATABASE_URL"], LOCK_WAIT_MS),
           "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
           "ORG_TIMEZONE": "UTC",
           "ARMSLENGTH_ENV": "development",
           "PYTHONPATH": str(ROOT)}
    env.pop("TESTING", None)
    log = tmp_path / "gunicorn.log"
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [sys.executable, "-m", "gunicorn", "--bind", f"fd://{sock.fileno()}",
                 "--workers", str(WORKERS), "--worker-class", "sync", "--timeout", "60",
                 "--graceful-timeout", "5", "app.wsgi:app"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),), start_new_session=True,
            )
    finally:
        sock.close()  # gunicorn has its own copy
    served = Server(port, cast["token"], process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"gunicorn exited:\n{served.log_tail()}"
            try:
                status, _body, _headers = served.request("GET", "/api/v1/openapi.json", timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not answer:\n{served.log_tail()}"
            time.sleep(0.2)
        yield served
    finally:
        stop(process)


# --- the clients ---------------------------------------------------------------------------

@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: external_ref -> the body of the 201 (the gift as recorded).
    created: dict[str, dict] = field(default_factory=dict)
    #: external_ref -> how many 201s it got (must be 1).
    created_count: Counter = field(default_factory=Counter)
    busy: int = 0
    replays: list[tuple[str, int, dict]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def plan(cast) -> list[list[dict]]:
    """The gift bodies of each thread: half lab, half ordinary, dates shuffled."""
    rng = random.Random(20261126)
    bodies = []
    for n in range(THREADS * PER_THREAD):
        lab = n % 2 == 0
        donor = rng.choice(cast["employees"] if lab else cast["ordinary"])
        minor = rng.choice(LAB_AMOUNTS if lab else ORDINARY_AMOUNTS)
        bodies.append({"donor_id": donor, "amount": f"{minor // 100}.{minor % 100:02d}",
                       "currency": "USD", "received_on": rng.choice(DAYS).isoformat(),
                       "external_ref": f"http-race-{n}"})
    rng.shuffle(bodies)
    return [bodies[i::THREADS] for i in range(THREADS)]


def client(server: Server, bodies: list[dict], results: Results, barrier: threading.Barrier) -> None:
    rng = random.Random(bodies[0]["external_ref"])
    try:
        barrier.wait(timeout=30)
        for n, body in enumerate(bodies):
            for _ in range(MAX_TRIES):
                status, answer, headers = server.request("POST", "/api/v1/gifts", body)
                if status != 503:
                    break
                assert headers.get("Retry-After"), headers
                with results.lock:
                    results.busy += 1
                time.sleep(rng.uniform(0.005, 0.03))  # shorter than Retry-After, for CI time
            ref = body["external_ref"]
            if status != 201:
                with results.lock:
                    results.failures.append(f"{ref}: HTTP {status} {answer}")
                continue
            with results.lock:
                results.created[ref] = answer
                results.created_count[ref] += 1
            if n % REPLAY_EVERY == 0:
                again, replay_answer, _ = server.request("POST", "/api/v1/gifts", body)
                while again == 503:
                    time.sleep(rng.uniform(0.005, 0.03))
                    again, replay_answer, _ = server.request("POST", "/api/v1/gifts", body)
                with results.lock:
                    results.replays.append((ref, again, replay_answer))
    except BaseException as error:  # noqa: BLE001 - reported to the test
        with results.lock:
            results.failures.append(f"{type(error).__name__}: {error}")


# --- the independent recomputation ------------------------------------------------------------

def recomputed_window(gifts, refunds, attributions, lab_people, end: date, window_days: int):
    """(total, lab) of accepted cash funding in the window ending on `end`, from the rows:
    a gift's lab part is its attributions to lab employees (each attribution here is the
    whole gift), less refunds made by `end` in proportion."""
    start = end - timedelta(days=window_days - 1)
    refunded: dict[int, int] = {}
    for r in refunds:
        if r.refunded_on <= end:
            refunded[r.gift_id] = refunded.get(r.gift_id, 0) + r.reporting_amount_minor
    lab_ppm: dict[int, int] = {}
    for a in attributions:
        if a.donor_id in lab_people:
            lab_ppm[a.gift_id] = lab_ppm.get(a.gift_id, 0) + a.fraction_ppm
    total = lab = 0
    for g in gifts:
        if g.status == "accepted" and g.kind == "cash" and start <= g.received_on <= end:
            net = g.reporting_amount_minor - refunded.get(g.id, 0)
            total += net
            lab += net * lab_ppm.get(g.id, 0) // PPM
    return total, lab


# --- the test ------------------------------------------------------------------------------------

def test_gifts_raced_over_http_through_gunicorn_keep_the_cap_and_the_ledger_whole(
        app, policy, cast, server):
    bodies = plan(cast)
    results = Results()
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=client, args=(server, mine, results, barrier), daemon=True)
               for mine in bodies]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=RUN_BUDGET_SECONDS * 2)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert results.failures == [], (results.failures[:10], server.log_tail())
    assert elapsed < RUN_BUDGET_SECONDS, elapsed
    assert server.process.poll() is None, "gunicorn died during the race"

    sent = {b["external_ref"]: b for mine in bodies for b in mine}
    # Every gift was answered 201 exactly once; every replay was refused as a duplicate.
    assert set(results.created) == set(sent)
    assert set(results.created_count.values()) == {1}
    assert results.replays, "no replay was sent"
    for ref, status, answer in results.replays:
        assert status == 409, (ref, status, answer)
        assert (answer["field"], answer["existing_id"]) == ("external_ref", results.created[ref]["id"])

    lab_people = set(cast["employees"])
    window_days = policy.window_days
    with app.extensions["armslength"].sessions() as session:
        gifts = session.execute(select(Gift).order_by(Gift.id)).scalars().all()
        refunds = session.execute(select(Refund)).scalars().all()
        attributions = session.execute(select(Attribution)).scalars().all()
        decisions = session.execute(select(Decision)).scalars().all()
        recorded = session.execute(
            select(AuditEntry).where(AuditEntry.action == "gift.recorded")).scalars().all()

        # No gift lost or duplicated.
        assert len(gifts) == len(set(results.created))
        assert Counter(g.external_ref for g in gifts) == Counter({ref: 1 for ref in sent})
        by_id = {g.id: g for g in gifts}
        for ref, answer in results.created.items():
            stored = by_id[answer["id"]]
            assert stored.external_ref == ref
            assert stored.status == answer["status"]
            body = sent[ref]
            assert (stored.donor_id, stored.received_on.isoformat(), stored.currency) == \
                (body["donor_id"], body["received_on"], "USD")
            assert stored.amount_minor == stored.reporting_amount_minor == \
                int(body["amount"].replace(".", ""))

        # One attribution (the whole gift, to its donor), one decision, one audit entry each.
        assert Counter(a.gift_id for a in attributions) == {g.id: 1 for g in gifts}
        assert all(a.fraction_ppm == PPM and a.donor_id == by_id[a.gift_id].donor_id
                   for a in attributions)
        assert Counter(d.gift_id for d in decisions) == {g.id: 1 for g in gifts}
        decision_of = {d.gift_id: d for d in decisions}
        assert Counter(e.entity_id for e in recorded) == {g.id: 1 for g in gifts}
        for entry in recorded:
            assert entry.data["decision_id"] == decision_of[entry.entity_id].id

        # Outcomes: ordinary money is accepted; lab money is accepted or refused for the cap,
        # and the cap really bound.
        refused_for_cap = 0
        for g in gifts:
            decision = decision_of[g.id]
            fired = tuple(r["rule"] for r in decision.reasons if r["fired"])
            status = {"accept": "accepted", "reject": "rejected", "hold": "held"}[decision.outcome]
            assert status == g.status
            if g.donor_id in lab_people:
                assert g.lab_minor == g.reporting_amount_minor
                assert (g.status, fired) in {("accepted", ()), ("rejected", ("lab_employee_cap",))}
                refused_for_cap += g.status == "rejected"
            else:
                assert g.lab_minor == 0
                assert (g.status, fired) == ("accepted", ())
        assert refused_for_cap >= 1, "the cap never bound: the test would pass vacuously"
        assert any(g.status == "accepted" for g in gifts if g.donor_id in lab_people)

        # funding_day is the accepted gifts, day by day.
        expected_days: dict[date, tuple[int, int, int]] = {}
        for g in gifts:
            if g.status == "accepted":
                t, lab, n = expected_days.get(g.received_on, (0, 0, 0))
                expected_days[g.received_on] = (t + g.reporting_amount_minor, lab + g.lab_minor, n + 1)
        stored_days = {d.day: (d.total_minor, d.lab_minor, d.gift_count)
                       for d in session.execute(select(FundingDay)).scalars()
                       if d.gift_count or d.total_minor or d.lab_minor}
        assert stored_days == expected_days

        # The share on every date with accepted gifts: strictly below the cap, and the
        # summary (in process and served by gunicorn) agrees with the recomputation.
        accepted_days = sorted({g.received_on for g in gifts if g.status == "accepted"})
        assert accepted_days
        for day in accepted_days:
            total, lab = recomputed_window(gifts, refunds, attributions, lab_people, day,
                                           window_days)
            assert total > 0 and Fraction(lab, total) < Fraction(policy.cap), (day, lab, total)
            summary = compliance_summary(session, day, policy, "USD")
            assert (summary.total_minor, summary.lab_minor) == (total, lab), day
            assert not summary.in_breach, day
            status, served, _ = server.request("GET", f"/api/v1/compliance/summary?as_of={day}")
            assert status == 200, served
            assert (served["total_funding"], served["lab_employee_funding"], served["in_breach"]) \
                == (f"{total // 100}.{total % 100:02d}", f"{lab // 100}.{lab % 100:02d}", False), day

        report = verify_chain(session)
        assert report.ok, report
        assert report.entries >= len(gifts)
