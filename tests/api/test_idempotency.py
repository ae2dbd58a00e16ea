"""Idempotency-Key on the API's recording requests (app.api.idempotency), SQLite and
PostgreSQL: the same key and request replays the first response and records nothing
more; another request under the key is a 422; keys are per token and expire; racing
requests with one key record once; a request still running under a key is a 409."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.pool import NullPool

from app.api.idempotency import HEADER, REPLAYED_HEADER, purge_expired, stored_answer
from app.db.locking import advisory_lock_number
from models import Donor, Gift, IdempotencyKey, Refund, utcnow
from tests.api.helpers import count, gift_body
from tests.builders import World, ok, person

DAY = "2026-03-02"


def send(api, path, body, key, method="post"):
    headers = {**api.headers, HEADER: key}
    return getattr(api.client, method)(f"/api/v1{path}", json=body, headers=headers)


@pytest.fixture
def world(api):
    return World(api)


def test_same_key_same_body_replays_the_first_response_and_records_once(api, world, db):
    body = gift_body(world.donor["id"], "250.00", DAY)
    first = send(api, "/gifts", body, "gift-1")
    assert first.status_code == 201, first.get_json()
    assert REPLAYED_HEADER not in first.headers
    again = send(api, "/gifts", body, "gift-1")
    assert again.status_code == 201
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.get_json() == first.get_json()
    assert count(db, Gift) == 1
    # The first answer, built from what the door returned, is the gift as stored.
    assert first.get_json() == ok(api.get(f"/gifts/{first.get_json()['id']}"), 200)


def test_a_retry_is_a_replay_even_where_the_request_itself_would_now_be_refused(
        api, world, db):
    """An external_ref already recorded is a 409 for a new request; for a retry of the
    request that recorded it, the first answer."""
    body = gift_body(world.donor["id"], "250.00", DAY, external_ref="bank-77")
    first = ok(send(api, "/gifts", body, "ref-77"))
    again = send(api, "/gifts", body, "ref-77")
    assert (again.status_code, again.get_json()) == (201, first)
    assert api.post("/gifts", body).status_code == 409  # without the key: a duplicate
    assert count(db, Gift) == 1


def test_same_key_with_another_request_is_a_422_and_records_nothing(api, world, db):
    ok(send(api, "/gifts", gift_body(world.donor["id"], "250.00", DAY), "k"))
    other = send(api, "/gifts", gift_body(world.donor["id"], "251.00", DAY), "k")
    assert other.status_code == 422
    assert HEADER in other.get_json()["errors"]
    elsewhere = send(api, "/donors", {"type": "person", "name": "Someone"}, "k")
    assert elsewhere.status_code == 422
    assert count(db, Gift) == 1
    assert count(db, Donor) == 3  # World's


def test_the_same_body_serialised_otherwise_is_the_same_request(api, world, db):
    body = gift_body(world.donor["id"], "250.00", DAY)
    first = ok(send(api, "/gifts", body, "order"))
    reordered = dict(reversed(list(body.items())))
    again = send(api, "/gifts", reordered, "order")
    assert (again.status_code, again.get_json()) == (201, first)
    assert count(db, Gift) == 1


def test_keys_are_per_token(api, api_as, world, db):
    other = api_as("fundraiser")
    body = gift_body(world.donor["id"], "250.00", DAY)
    mine = ok(send(api, "/gifts", body, "shared-key"))
    theirs = ok(send(other, "/gifts", body, "shared-key"))
    assert mine["id"] != theirs["id"]
    assert count(db, Gift) == 2


def test_a_refused_request_stores_no_key(api, world, db):
    refused = send(api, "/gifts", gift_body(999_999, "250.00", DAY), "fix-and-retry")
    assert refused.status_code == 422
    made = send(api, "/gifts", gift_body(world.donor["id"], "250.00", DAY), "fix-and-retry")
    assert made.status_code == 201 and REPLAYED_HEADER not in made.headers
    assert count(db, IdempotencyKey) == 1


def test_an_expired_key_is_forgotten_and_purged(api, world, db):
    body = gift_body(world.donor["id"], "250.00", DAY)
    first = ok(send(api, "/gifts", body, "old"))
    ok(send(api, "/gifts", body, "recent"))
    stored = db.execute(select(IdempotencyKey).where(IdempotencyKey.key == "old")).scalar_one()
    assert stored.expires_at - stored.created_at >= timedelta(hours=24)
    db.rollback()
    # A day passes for the first key only.
    db.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
               .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    again = send(api, "/gifts", body, "old")
    assert again.status_code == 201 and REPLAYED_HEADER not in again.headers
    assert again.get_json()["id"] != first["id"]  # a new request: recorded again
    assert count(db, Gift) == 3

    db.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
               .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert purge_expired(db) == 1
    assert db.execute(select(IdempotencyKey.key)).scalars().all() == ["recent"]
    token_id = db.execute(select(IdempotencyKey.token_id)).scalar_one()
    assert stored_answer(db, token_id, "recent") is not None
    assert stored_answer(db, token_id, "recent", now=utcnow() + timedelta(hours=25)) is None


def test_an_invalid_key_is_a_422(api, world, db):
    body = gift_body(world.donor["id"], "250.00", DAY)
    for key in ("", "x" * 256, "caf\u00e9"):
        response = send(api, "/gifts", body, key)
        assert response.status_code == 422, key
        assert HEADER in response.get_json()["errors"]
    assert count(db, Gift) == 0


def test_other_recording_requests_replay_too(api, world, db):
    """A donor, a refund and a review: each once however often its request is sent."""
    donor_body = {"type": "person", "name": "Once Only"}
    donor = ok(send(api, "/donors", donor_body, "d"))
    assert send(api, "/donors", donor_body, "d").get_json() == donor
    assert count(db, Donor) == 4

    made = ok(api.post("/gifts", gift_body(world.donor["id"], "300.00", DAY)))
    refund_body = {"amount": "100.00", "refunded_on": DAY, "reason": "asked"}
    refund = ok(send(api, f"/gifts/{made['id']}/refund", refund_body, "r"))
    assert refund["gift"]["refunded_amount"] == "100.00"
    replayed = send(api, f"/gifts/{made['id']}/refund", refund_body, "r")
    assert (replayed.status_code, replayed.get_json()) == (201, refund)
    assert count(db, Refund) == 1

    held = ok(api.post("/gifts", gift_body(world.lab_donor["id"], "500.00", DAY)))
    assert held["status"] == "held"
    review = {"outcome": "reject", "reason": "lab corporate money"}
    decided = ok(send(api, f"/gifts/{held['id']}/review", review, "rv"))
    assert send(api, f"/gifts/{held['id']}/review", review, "rv").get_json() == decided
    decisions = ok(api.get(f"/gifts/{held['id']}"), 200)["decisions"]
    assert [d["kind"] for d in decisions] == ["screening", "review"]


def test_identical_requests_racing_record_once(app, api, world, db):
    """Threads send the same keyed request at once: one gift; every answer is its 201
    (first or replayed) or a 409 while it was still running."""
    body = gift_body(world.donor["id"], "250.00", DAY)
    n = 8
    barrier = threading.Barrier(n)
    answers: list = [None] * n

    def client(i: int) -> None:
        test_client = app.test_client()
        barrier.wait()
        answers[i] = test_client.post("/api/v1/gifts", json=body,
                                      headers={**api.headers, HEADER: "race"})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {201, 409}, statuses
    created = [a for a in answers if a.status_code == 201]
    assert len([a for a in created if REPLAYED_HEADER not in a.headers]) == 1
    assert len({a.get_data() for a in created}) == 1
    assert count(db, Gift) == 1


def test_a_request_whose_key_is_in_flight_is_answered_409_at_once(app, api, world, db):
    """While another transaction holds the key's lock (as the first request does until it
    commits), a request with the key is refused at once, records nothing, and may be sent
    again once the first has finished."""
    url = app.config["DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.skip("SQLite queues writers at BEGIN IMMEDIATE: a second request waits")
    token_id = db.execute(text("SELECT id FROM api_token")).scalar_one()
    db.rollback()
    body = gift_body(world.donor["id"], "250.00", DAY)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_xact_lock(:n)"),
                           {"n": advisory_lock_number(f"idempotency:{token_id}:busy")})
            busy = send(api, "/gifts", body, "busy")
            assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
            holder.rollback()
        assert count(db, Gift) == 0
        assert send(api, "/gifts", body, "busy").status_code == 201
    finally:
        engine.dispose()


def test_every_recording_route_is_marked_and_documented(app):
    """Each API route that writes (all but GET, the preview and the two-person-rule changes:
    openapi.NOT_RECORDING) takes Idempotency-Key,
    and the OpenAPI document lists the header on exactly those."""
    from app.api.openapi import NOT_RECORDING, openapi_document

    writes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"GET", "HEAD", "OPTIONS"}:
            operation = (method.lower(), re.sub(r"<int:\w+>", "{id}",
                                                 rule.rule.removeprefix("/api/v1")))
            if operation not in NOT_RECORDING:
                writes.add((method.lower(), rule.rule))
                assert getattr(view, "records", False), rule.rule
            else:
                assert not getattr(view, "records", False), rule.rule
    documented = set()
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            if any(p["name"] == HEADER for p in operation["parameters"]):
                documented.add((method, path))
    normalised = {(m, re.sub(r"<int:\w+>", "{id}", r.removeprefix("/api/v1")))
                  for m, r in writes}
    assert documented == normalised


def test_without_the_header_nothing_is_stored(api, world, db):
    ok(api.post("/gifts", gift_body(world.donor["id"], "250.00", DAY)))
    ok(api.post("/gifts", gift_body(world.donor["id"], "250.00", DAY)))
    assert count(db, Gift) == 2
    assert count(db, IdempotencyKey) == 0
    person(api, "Plain Request")


def test_the_purge_command_deletes_expired_keys_only(app, api, world, db):
    body = gift_body(world.donor["id"], "250.00", DAY)
    ok(send(api, "/gifts", body, "expired"))
    ok(send(api, "/gifts", body, "live"))
    db.execute(update(IdempotencyKey).where(IdempotencyKey.key == "expired")
               .values(expires_at=utcnow() - timedelta(minutes=1)))
    db.commit()
    result = app.test_cli_runner().invoke(args=["purge-idempotency-keys"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "purged 1 expired idempotency keys"
    assert db.execute(select(IdempotencyKey.key)).scalars().all() == ["live"]
