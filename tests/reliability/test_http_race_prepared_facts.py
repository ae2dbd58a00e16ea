"""Gifts whose facts were read before the ledger lock, raced against the write that changes
those facts, over real HTTP, on SQLite and PostgreSQL.

POST /gifts reads the donor, its affiliations and its identity matches before it takes the
ledger lock (app.ledger.gifts.prepare_gift) and uses them only if, under the lock, nothing
but gifts was audited since. Here eight client threads record gifts of four ordinary
donors while a ninth, at moments spread through the run, makes each of them a lab
employee (POST /donors/{id}/affiliations, on the same gunicorn). Every gift answered 201
was therefore either committed before that donor's affiliation, and then held by the
re-screening the affiliation does, or after it, and then screened as a lab employee's.

So at the end no gift of those donors may be accepted with no lab-employee part: one would
be a gift screened on facts read before the affiliation but committed after it, which no
re-screening saw. The test checks that some gifts came on each side of every affiliation
(by the audit chain's order), so it cannot pass vacuously.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import select

from app.ledger.audit import verify_chain
from models import AuditEntry, Gift
from tests.builders import person
from tests.reliability.test_http_race import MAX_TRIES, Server, cast, server  # noqa: F401

pytestmark = pytest.mark.slow

THREADS = 8
PER_THREAD = 12
DONORS = 4


@pytest.fixture
def converts(app, api, cast):  # noqa: F811 - the fixture imported above
    return [person(api, f"Soon Lab Employee {i}")["id"] for i in range(DONORS)]


def _post(served: Server, path: str, body: dict, rng: random.Random) -> tuple[int, dict]:
    for _ in range(MAX_TRIES):
        status, answer, _headers = served.request("POST", path, body)
        if status != 503:
            return status, answer
        time.sleep(rng.uniform(0.005, 0.03))
    return status, answer


def test_gifts_prepared_before_an_affiliation_committed_after_it_are_screened_on_it(
        app, db, server, cast, converts):  # noqa: F811
    lab = cast["lab"] if "lab" in cast else None
    if lab is None:
        status, answer, _ = server.request("POST", "/api/v1/organizations",
                                           {"name": "Second Lab", "covered_lab": True})
        assert status == 201, answer
        lab = answer["id"]
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS + 1)

    created = [0]
    affiliations_done = threading.Event()

    def giver(n: int) -> None:
        # At least PER_THREAD gifts, and on until the affiliations are all in: whatever the
        # machine's load, gifts are recorded on both sides of each affiliation.
        rng = random.Random(n)
        try:
            barrier.wait(timeout=30)
            i = 0
            while (i < PER_THREAD or not affiliations_done.is_set()) and i < PER_THREAD * 30:
                body = {"donor_id": converts[(n + i) % DONORS], "amount": "40.00",
                        "currency": "USD", "received_on": "2026-03-02",
                        "external_ref": f"prep-{n}-{i}"}
                status, answer = _post(server, "/api/v1/gifts", body, rng)
                with lock:
                    if status == 201:
                        created[0] += 1
                    else:
                        failures.append(f"gift {body['external_ref']}: {status} {answer}")
                i += 1
        except BaseException as error:  # noqa: BLE001 - reported to the test
            with lock:
                failures.append(f"{type(error).__name__}: {error}")

    def affiliator() -> None:
        rng = random.Random(99)
        try:
            barrier.wait(timeout=30)
            deadline = time.monotonic() + 60
            while created[0] < THREADS and time.monotonic() < deadline:
                time.sleep(0.05)  # some gifts first, so some precede every affiliation
            for donor_id in converts:
                time.sleep(rng.uniform(0.3, 0.8))
                status, answer = _post(server, f"/api/v1/donors/{donor_id}/affiliations", {
                    "organization_id": lab, "kind": "employee", "title": "Engineer",
                    "senior_decision_maker": False, "start_date": "2015-01-01",
                    "end_date": None}, rng)
                if status != 201:
                    with lock:
                        failures.append(f"affiliation {donor_id}: {status} {answer}")
        except BaseException as error:  # noqa: BLE001
            with lock:
                failures.append(f"{type(error).__name__}: {error}")
        finally:
            affiliations_done.set()

    threads = [threading.Thread(target=giver, args=(n,)) for n in range(THREADS)]
    threads.append(threading.Thread(target=affiliator))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "clients did not finish"
    assert failures == []

    db.rollback()
    affiliated_at = dict(db.execute(
        select(AuditEntry.entity_id, AuditEntry.id)
        .where(AuditEntry.action == "affiliation.added",
               AuditEntry.entity_id.in_(converts))).all())
    assert sorted(affiliated_at) == sorted(converts)
    recorded_at = dict(db.execute(
        select(AuditEntry.entity_id, AuditEntry.id)
        .where(AuditEntry.action == "gift.recorded")).all())
    gifts = db.execute(select(Gift).where(Gift.donor_id.in_(converts))).scalars().all()
    assert len(gifts) == created[0] >= THREADS * PER_THREAD
    before = [g for g in gifts if recorded_at[g.id] < affiliated_at[g.donor_id]]
    after = [g for g in gifts if recorded_at[g.id] > affiliated_at[g.donor_id]]
    assert before and after, "the affiliations did not fall inside the run of gifts"
    unscreened = [(g.id, g.status, g.lab_minor) for g in gifts
                  if g.status == "accepted" and g.lab_minor == 0]
    assert unscreened == []
    assert all(g.lab_minor > 0 or g.status == "rejected" for g in after)
    assert verify_chain(db).ok
