"""ledger_batch: many ledger writes, one transaction, one lock; all or nothing."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import create_engine, func, select

from app.db.locking import BatchAborted, ledger_batch, ledger_write
from app.errors import ValidationFailed
from app.ledger.audit import Actor
from app.ledger.gifts import record_gift
from app.ledger.parties import create_donor
from models import AuditEntry, Donor, Gift
from models.schemas import DonorCreate, GiftCreate

ACTOR = Actor("test", role="admin")


@pytest.fixture
def outside(app):
    """Counts rows through a connection of its own: sees only what is committed.

    A plain engine of its own; a read never waits for the batch's lock (on SQLite, WAL
    lets readers past the write lock that ledger writes take with BEGIN IMMEDIATE).
    """
    engine = create_engine(app.config["DATABASE_URL"])

    def count(model) -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar_one()

    yield count
    engine.dispose()


def _person(name: str) -> DonorCreate:
    return DonorCreate(type="person", name=name)


def _gift(donor_id: int, amount: str = "100.00", ref: str | None = None) -> GiftCreate:
    return GiftCreate(donor_id=donor_id, amount=amount, currency="USD",
                      received_on=date(2025, 1, 10), external_ref=ref)


def test_ledger_write_alone_still_commits_each_write(db, outside):
    create_donor(db, _person("Ada"), ACTOR)
    assert outside(Donor) == 1
    assert outside(AuditEntry) == 1


def test_nested_writes_commit_nothing_until_the_batch_ends(db, outside, policy):
    with ledger_batch(db):
        ada = create_donor(db, _person("Ada"), ACTOR)
        create_donor(db, _person("Bo"), ACTOR)
        record_gift(db, _gift(ada.id), ACTOR, policy, "USD")
        assert db.in_transaction()
        assert (outside(Donor), outside(Gift), outside(AuditEntry)) == (0, 0, 0)
        # Inside the batch its own writes are visible.
        assert db.execute(select(func.count()).select_from(Donor)).scalar_one() == 2
    assert (outside(Donor), outside(Gift), outside(AuditEntry)) == (2, 1, 3)


def test_an_exception_rolls_back_every_write_of_the_batch(db, outside, policy):
    with pytest.raises(ValidationFailed):
        with ledger_batch(db):
            ada = create_donor(db, _person("Ada"), ACTOR)
            record_gift(db, _gift(ada.id, ref="r-1"), ACTOR, policy, "USD")
            record_gift(db, _gift(ada.id + 1000), ACTOR, policy, "USD")  # no such donor
    assert (outside(Donor), outside(Gift), outside(AuditEntry)) == (0, 0, 0)
    assert not db.in_transaction()
    # The session is usable again, and outside a batch ledger_write behaves as before.
    create_donor(db, _person("Cy"), ACTOR)
    assert outside(Donor) == 1


def test_an_error_in_the_block_itself_rolls_back(db, outside):
    with pytest.raises(KeyError):
        with ledger_batch(db):
            create_donor(db, _person("Ada"), ACTOR)
            raise KeyError("boom")
    assert outside(Donor) == 0


def test_a_swallowed_failure_still_aborts_the_batch(db, outside, policy):
    with pytest.raises(BatchAborted, match="no such donor"):
        with ledger_batch(db):
            create_donor(db, _person("Ada"), ACTOR)
            try:
                record_gift(db, _gift(424242), ACTOR, policy, "USD")
            except ValidationFailed:
                pass  # the caller ignores it; the batch must not
    assert outside(Donor) == 0


def test_writes_after_a_failure_are_refused(db, policy):
    with pytest.raises(BatchAborted, match="earlier write"):
        with ledger_batch(db):
            try:
                record_gift(db, _gift(424242), ACTOR, policy, "USD")
            except ValidationFailed:
                pass
            create_donor(db, _person("Ada"), ACTOR)


def test_a_commit_inside_the_batch_is_detected(db, outside):
    with pytest.raises(BatchAborted, match="ended early"):
        with ledger_batch(db):
            create_donor(db, _person("Ada"), ACTOR)
            db.commit()  # what a careless helper might do
            create_donor(db, _person("Bo"), ACTOR)
    # The commit did happen (nothing can undo it), which is why the batch says so loudly.
    assert outside(Donor) == 1


def test_a_batch_inside_a_batch_joins_it(db, outside):
    with ledger_batch(db):
        create_donor(db, _person("Ada"), ACTOR)
        with ledger_batch(db):
            create_donor(db, _person("Bo"), ACTOR)
        assert outside(Donor) == 0  # the inner batch did not commit
    assert outside(Donor) == 2


def test_a_failure_in_an_inner_batch_undoes_the_outer_one(db, outside):
    with pytest.raises(BatchAborted):
        with ledger_batch(db):
            create_donor(db, _person("Ada"), ACTOR)
            try:
                with ledger_batch(db):
                    create_donor(db, _person("Bo"), ACTOR)
                    raise ValueError("a refusal the caller catches")
            except ValueError:
                pass
    assert outside(Donor) == 0


def test_nested_ledger_write_does_not_commit(db, outside):
    with ledger_batch(db):
        with ledger_write(db):
            create_donor(db, _person("Ada"), ACTOR)
        assert outside(Donor) == 0
    assert outside(Donor) == 1
