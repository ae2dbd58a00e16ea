"""The door's fast write path: rows built and inserted without the unit of work, the audit
head read with the donor, and the plan setting of PostgreSQL batches."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text

from app.db import rows
from app.db.locking import ledger_batch
from app.ledger.audit import Actor, verify_chain
from app.ledger.gifts import record_gift
from app.ledger.parties import create_donor
from models import Attribution, AuditEntry, Decision, Gift
from models.schemas import DonorCreate, GiftCreate

ACTOR = Actor("test", role="admin")


def _gift(donor_id: int, amount: str = "100.00", ref: str | None = None) -> GiftCreate:
    return GiftCreate(donor_id=donor_id, amount=amount, currency="USD",
                      received_on=date(2025, 1, 10), external_ref=ref)


def test_new_builds_what_the_constructor_builds():
    values = {"donor_id": 3, "amount_minor": 500, "currency": "USD",
              "reporting_amount_minor": 500, "reporting_currency": "USD",
              "received_on": date(2025, 1, 10)}
    fast, slow = rows.new(Gift, **values), Gift(**values)
    assert fast.created_at is not None
    assert fast.model_dump(exclude={"created_at"}) == slow.model_dump(exclude={"created_at"})
    decision = rows.new(Decision, gift_id=1, outcome="accept", policy_version="v")
    assert decision.reasons == [] and decision.figures == {}
    assert decision.reasons is not rows.new(Decision, gift_id=1, outcome="accept",
                                            policy_version="v").reasons  # a fresh list each


def test_new_refuses_unknown_and_missing_fields():
    for bad in ({"gift_id": 1, "outcome": "accept", "policy_version": "v", "colour": "red"},
                {"outcome": "accept", "policy_version": "v"}):
        try:
            rows.new(Decision, **bad)
        except TypeError:
            continue
        raise AssertionError(f"accepted {bad}")


def test_recorded_rows_are_persistent_objects_matching_the_database(db, policy):
    donor = create_donor(db, DonorCreate(type="person", name="Ada"), ACTOR)
    recorded = record_gift(db, _gift(donor.id, ref="r-1"), ACTOR, policy, "USD")
    gift, decision = recorded.gift, recorded.decision
    assert gift in db and decision in db
    assert gift.id is not None and decision.id is not None and decision.gift_id == gift.id
    assert not db.dirty and not db.new
    db.expire_all()
    assert (gift.status, gift.amount_minor, gift.external_ref) == ("accepted", 10000, "r-1")
    assert (decision.outcome, decision.kind) == ("accept", "screening")
    assert db.execute(select(func.count()).select_from(Attribution)
                      .where(Attribution.gift_id == gift.id)).scalar_one() == 1
    # An ordinary ORM object afterwards: a change is flushed as an UPDATE.
    gift.description = "thank-you sent"
    db.commit()
    db.expire_all()
    assert gift.description == "thank-you sent"


def test_each_gift_extends_the_head_another_session_committed(app, db, policy):
    """The head comes with the door's first read under the lock, not from a cache."""
    donor = create_donor(db, DonorCreate(type="person", name="Ada"), ACTOR)
    record_gift(db, _gift(donor.id), ACTOR, policy, "USD")
    with app.extensions["armslength"].sessions() as other:
        create_donor(other, DonorCreate(type="person", name="Bo"), ACTOR)
        record_gift(other, _gift(donor.id), ACTOR, policy, "USD")
    record_gift(db, _gift(donor.id), ACTOR, policy, "USD")
    entries = db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    assert [e.action for e in entries] == ["donor.created", "gift.recorded", "donor.created",
                                           "gift.recorded", "gift.recorded"]
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert verify_chain(db).ok


def test_a_batch_plans_each_statement_for_the_tables_as_they_are(db, policy):
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with ledger_batch(db):
        assert db.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
    assert db.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"


def test_a_rolled_back_insert_leaves_the_session_as_a_flushed_one_would(db, policy):
    """A rollback expunges what rows.insert attached, so an id the database hands out again
    (SQLite reuses a rolled-back row id) does not collide with a stale object."""
    donor = create_donor(db, DonorCreate(type="person", name="Ada"), ACTOR)
    with pytest.raises(RuntimeError):
        with ledger_batch(db):
            recorded = record_gift(db, _gift(donor.id, ref="r-1"), ACTOR, policy, "USD")
            raise RuntimeError("undo")
    assert recorded.gift not in db and recorded.decision not in db
    again = record_gift(db, _gift(donor.id, ref="r-1"), ACTOR, policy, "USD")
    assert again.gift in db and db.get(Gift, again.gift.id) is again.gift
