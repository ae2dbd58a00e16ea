"""once_committed: what must follow a ledger write's commit (a processor returning money)
runs after it, never before, and never for a write that was rolled back; its failure is
logged and leaves what was committed, and the caller's answer, alone."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import create_engine, func, select

from app.db.locking import ledger_batch, once_committed
from app.ledger.audit import Actor
from app.ledger.parties import create_donor
from models import Donor
from models.schemas import DonorCreate

ACTOR = Actor("test", role="admin")


@pytest.fixture
def committed_donors(app):
    engine = create_engine(app.config["DATABASE_URL"])

    def count() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(Donor)).scalar_one()

    yield count
    engine.dispose()


def test_inside_a_batch_it_waits_for_the_commit(db, committed_donors):
    seen = []
    with ledger_batch(db, growing=False):
        create_donor(db, DonorCreate(type="person", name="A"), ACTOR)
        once_committed(db, lambda: seen.append(committed_donors()))
        assert seen == []  # the batch has not committed yet
    assert seen == [1]  # ran after the commit, which it could see


def test_a_rolled_back_batch_never_runs_it(db, committed_donors):
    seen = []
    with pytest.raises(RuntimeError), ledger_batch(db, growing=False):
        create_donor(db, DonorCreate(type="person", name="A"), ACTOR)
        once_committed(db, lambda: seen.append("ran"))
        raise RuntimeError("the request failed after the write")
    assert seen == [] and committed_donors() == 0


def test_outside_a_batch_it_runs_at_once_and_a_failure_is_logged(db, caplog):
    create_donor(db, DonorCreate(type="person", name="A"), ACTOR)  # its own commit

    def fails():
        raise ConnectionError("the processor is unreachable")

    with caplog.at_level(logging.ERROR, logger="app.db.locking"):
        once_committed(db, fails)
    assert "follow-up of a committed ledger write failed" in caplog.text
