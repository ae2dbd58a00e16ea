"""The relationship facts reach the policy on every path that screens a gift: the door
(one gift), a batch (GiftIntake: every relationship read once, RelativeIndex) and the
what-if replay (BulkFacts), with the same decision; and the facts name both ends of a
relationship, whichever way it was recorded."""

from __future__ import annotations

import dataclasses
from datetime import date

from app.db.locking import ledger_batch
from app.ledger import whatif
from app.ledger.audit import Actor
from app.ledger.facts import CoveredOrganizations, RelativeIndex, relatives_of
from app.ledger.intake import GiftIntake
from models.schemas import GiftCreate
from tests import builders as b

ACTOR = Actor("test", role="admin")
RULE = "household_of_senior_decision_maker"


def _household(api):
    lab = b.organization(api, "Frontier Lab", covered_lab=True)
    other = b.organization(api, "Plain Corp")
    senior = b.person(api, "Carla Chief")
    b.affiliate(api, senior["id"], lab["id"], start="2018-01-01", senior=True, title="CEO")
    b.affiliate(api, senior["id"], other["id"], start="2010-01-01", end="2017-12-31")
    spouse = b.person(api, "Sam Spouse")
    b.ok(api.post(f"/donors/{spouse['id']}/relationships", {
        "related_donor_id": senior["id"], "kind": "spouse_partner", "start_date": "2015-01-01"}))
    return senior, spouse


def test_relatives_are_read_from_both_ends_with_only_covered_affiliations(api, db):
    senior, spouse = _household(api)
    covered = CoveredOrganizations(db)
    found = relatives_of(db, covered, [spouse["id"], senior["id"]])
    (of_spouse,) = found[spouse["id"]]
    assert (of_spouse.donor_id, of_spouse.name, of_spouse.kind) == (
        senior["id"], "Carla Chief", "spouse_partner")
    assert [(a.organization, a.senior_decision_maker) for a in of_spouse.affiliations] == [
        ("Frontier Lab", True)]  # Plain Corp is never covered: not read
    (of_senior,) = found[senior["id"]]
    assert (of_senior.donor_id, of_senior.affiliations) == (spouse["id"], ())
    assert RelativeIndex(db, covered)._by_donor == relatives_of(db, covered, None)
    db.rollback()


def test_a_batch_holds_the_spouses_gift_as_the_door_does(api, db, policy):
    _senior, spouse = _household(api)
    one = b.gift(api, spouse["id"], "10.00", "2026-03-01")
    assert one["status"] == "held"
    data = GiftCreate(donor_id=spouse["id"], amount="12.00", currency="USD",
                      received_on=date(2026, 3, 2))
    with ledger_batch(db), GiftIntake(db, ACTOR, policy, "USD") as intake:
        screened = intake.record(data)
    assert screened.gift.status == "held"
    assert RULE in {f.rule for f in screened.evaluation.fired}


def test_the_what_if_replay_sees_the_relationship(api, db, policy):
    _senior, spouse = _household(api)
    held = b.gift(api, spouse["id"], "10.00", "2026-03-01")
    off = dataclasses.replace(policy, version="off", settings={
        **policy.settings, RULE: {**policy.settings[RULE], "enabled": False}})
    try:
        result = whatif.replay(db, policy, off, date(2026, 1, 1), date(2026, 12, 31))
    finally:
        db.rollback()
    (difference,) = result.differences
    assert (difference.gift_id, difference.current_outcome, difference.whatif_outcome) == (
        held["id"], "hold", "accept")
