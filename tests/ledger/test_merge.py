"""app.ledger.merge.merge_donors as other services call it (the probable-match resolution
"same person"): one call, one transaction, a MergeResult; nothing kept when it fails."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.errors import NotAllowed
from app.ledger.audit import Actor
from app.ledger.merge import MergeResult, merge_donors
from models import AuditEntry, Donor, DonorMerge, Gift
from tests.builders import World, affiliate, gift, person

REVIEWER = Actor("test:reviewer@example.org", role="reviewer")


def test_merge_donors_returns_what_moved_and_what_was_rescreened(api, db, policy):
    w = World(api)
    gift(api, w.donor["id"], "100000.00", "2026-01-05")
    survivor = person(api, "Morgan Chen")
    affiliate(api, survivor["id"], w.lab["id"], start="2024-01-01", senior=True,
              title="Vice President")
    duplicate = person(api, "M. Chen")
    given = gift(api, duplicate["id"], "5000.00", "2026-03-02")
    result = merge_donors(db, survivor["id"], duplicate["id"], REVIEWER, policy)
    assert isinstance(result, MergeResult)
    assert (result.survivor_id, result.duplicate_id) == (survivor["id"], duplicate["id"])
    assert result.moved["gift.donor_id"] == [given["id"]]
    assert result.rescreened_gift_ids == [given["id"]]
    assert db.get(Gift, given["id"]).status == "held"
    assert db.get(DonorMerge, duplicate["id"]).survivor_id == survivor["id"]
    assert db.get(Donor, duplicate["id"]).name == "M. Chen"  # the row is kept
    db.rollback()


def test_a_refused_merge_keeps_nothing(api, db, policy):
    a, b = person(api, "A"), person(api, "B")
    merge_donors(db, a["id"], b["id"], REVIEWER, policy)
    entries = db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    db.rollback()
    with pytest.raises(NotAllowed):
        merge_donors(db, b["id"], a["id"], REVIEWER, policy)
    assert db.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == entries
    assert db.execute(select(func.count()).select_from(DonorMerge)).scalar_one() == 1
    db.rollback()
