"""Editing and ending in-kind arrangements (issue 17), under the two-person rule.

In-kind support from a lab stops no money, but the conflict-of-interest disclosure
publishes it: at a covered lab, an edit that would take disclosed support out of the
disclosure waits for a second person (202 pending_approval); one that shows more, or ends
the arrangement today or later, applies at once. At an organisation that is not covered,
everything applies at once.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from app.ledger.weakening import split_in_kind
from models import AuditEntry, InKindArrangement
from tests.builders import ok, organization

TODAY = date(2026, 6, 1)
BASE = {"organization_id": 1, "description": "Pre-release API access", "purpose": "evaluation",
        "start_date": date(2025, 1, 1), "end_date": None, "estimated_value_minor": 2_500_000,
        "currency": "USD"}


# --- the pure split: what waits and what applies at once -----------------------------------

@pytest.mark.parametrize("edit, waits", [
    ({"end_date": TODAY}, []),                                    # ended today: nothing hidden
    ({"end_date": date(2027, 1, 1)}, []),                         # ends later
    ({"end_date": date(2026, 5, 31)}, ["end_date"]),              # ended before today
    ({"start_date": date(2024, 6, 1)}, []),                       # earlier start shows more
    ({"start_date": date(2025, 6, 1)}, ["start_date"]),           # later start hides some
    ({"description": "Access"}, ["description"]),
    ({"purpose": "other"}, ["purpose"]),
    ({"estimated_value_minor": 9_000_000}, []),                   # raised
    ({"estimated_value_minor": 100}, ["estimated_value_minor", "currency"]),
    ({"estimated_value_minor": None, "currency": None}, ["estimated_value_minor", "currency"]),
    ({"currency": "EUR"}, ["estimated_value_minor", "currency"]),
    ({"organization_id": 2}, list(BASE)),                          # moved away: all waits
])
def test_split_at_a_covered_lab(edit, waits):
    split = split_in_kind(BASE, {**BASE, **edit}, covered=True, today=TODAY)
    assert sorted(split.pending) == sorted(waits)
    assert bool(split.weakens) == bool(waits)
    applied = {k: v for k, v in edit.items() if k not in waits}
    assert {k: split.now[k] for k in applied} == applied or waits == list(BASE)


def test_an_end_before_today_of_an_arrangement_that_ended_even_earlier_applies():
    ended = {**BASE, "end_date": date(2025, 3, 1)}
    split = split_in_kind(ended, {**ended, "end_date": date(2025, 6, 1)}, covered=True,
                          today=TODAY)
    assert split.pending == {} and split.now["end_date"] == date(2025, 6, 1)


def test_everything_applies_at_an_organisation_that_is_not_covered():
    wanted = {**BASE, "end_date": date(2025, 2, 1), "description": "x", "currency": None,
              "estimated_value_minor": None, "organization_id": 5}
    assert split_in_kind(BASE, wanted, covered=False, today=TODAY).pending == {}


# --- through the API ------------------------------------------------------------------------

def _arrangement(api, org_id, **extra) -> dict:
    return ok(api.post("/in-kind", {"organization_id": org_id,
                                    "description": "Pre-release API access",
                                    "purpose": "evaluation", "start_date": "2025-01-01",
                                    "estimated_value": "25000.00", "currency": "USD", **extra}))


def _body(item: dict, **changes) -> dict:
    keep = ("organization_id", "description", "purpose", "start_date", "end_date",
            "estimated_value", "currency")
    return {**{k: item[k] for k in keep}, **changes}


def test_ending_today_applies_at_once_and_is_audited(api, db):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    item = _arrangement(api, lab["id"])
    today = api.get("/compliance/summary").get_json()["as_of"]
    ended = ok(api.put(f"/in-kind/{item['id']}", _body(item, end_date=today)), 200)
    assert ended["end_date"] == today and ended["rescreened_gift_ids"] == []
    assert api.get(f"/in-kind/{item['id']}").get_json()["end_date"] == today
    actions = db.execute(select(AuditEntry.action).where(
        AuditEntry.entity_type == "in_kind_arrangement", AuditEntry.entity_id == item["id"])
        .order_by(AuditEntry.id)).scalars().all()
    assert actions == ["in_kind.recorded", "in_kind.updated"]
    assert api.get("/audit/verify").get_json()["ok"] is True


def test_hiding_a_labs_support_waits_for_a_second_person(api_as, db):
    fundraiser, reviewer = api_as("fundraiser"), api_as("reviewer")
    lab = organization(fundraiser, "Frontier Lab", covered_lab=True)
    item = _arrangement(fundraiser, lab["id"])
    waiting = ok(fundraiser.put(f"/in-kind/{item['id']}", _body(
        item, end_date="2025-02-01", estimated_value="50000.00")), 202)
    assert waiting["status"] == "pending_approval"
    assert waiting["weakens"] == ["ended before today"]
    # The raised value applied at once; the end waits.
    assert (waiting["end_date"], waiting["estimated_value"]) == (None, "50000.00")
    stored = db.execute(select(InKindArrangement)).scalar_one()
    db.refresh(stored)
    assert stored.end_date is None
    assert fundraiser.post(f"/changes/{waiting['change_id']}/approve").status_code == 403
    ok(reviewer.post(f"/changes/{waiting['change_id']}/approve", {"note": "ended then"}), 200)
    assert fundraiser.get(f"/in-kind/{item['id']}").get_json()["end_date"] == "2025-02-01"
    assert fundraiser.get("/audit/verify").get_json()["ok"] is True


def test_the_proposer_cannot_approve_their_own_edit(api_as):
    reviewer, second = api_as("reviewer"), api_as("reviewer", "r2")
    lab = organization(reviewer, "Frontier Lab", covered_lab=True)
    item = _arrangement(reviewer, lab["id"])
    waiting = ok(reviewer.put(f"/in-kind/{item['id']}", _body(item, description="Access")), 202)
    assert reviewer.post(f"/changes/{waiting['change_id']}/approve").status_code == 409
    ok(second.post(f"/changes/{waiting['change_id']}/approve"), 200)
    assert reviewer.get(f"/in-kind/{item['id']}").get_json()["description"] == "Access"


def test_edits_at_an_organisation_that_is_not_covered_apply_at_once(api):
    cloud = organization(api, "Cloud Co")
    item = _arrangement(api, cloud["id"])
    edited = ok(api.put(f"/in-kind/{item['id']}", _body(
        item, end_date="2025-02-01", description="Spare GPUs", estimated_value=None,
        currency=None)), 200)
    assert (edited["end_date"], edited["description"], edited["estimated_value"]) == (
        "2025-02-01", "Spare GPUs", None)


def test_bad_edits_are_refused_and_change_nothing(api, api_as):
    lab = organization(api, "Frontier Lab", covered_lab=True)
    item = _arrangement(api, lab["id"])
    assert api.put(f"/in-kind/{item['id']}", _body(item, end_date="2024-01-01")).status_code == 422
    assert api.put("/in-kind/999999", _body(item)).status_code == 404
    assert api_as("viewer").put(f"/in-kind/{item['id']}", _body(item)).status_code == 403
    assert api.get(f"/in-kind/{item['id']}").get_json() == item


def test_a_reworded_arrangement_keeps_its_words_out_of_the_audit_chain(api_as, db):
    reviewer = api_as("reviewer")
    lab = organization(reviewer, "Frontier Lab", covered_lab=True)
    item = _arrangement(reviewer, lab["id"])
    waiting = ok(reviewer.put(f"/in-kind/{item['id']}",
                              _body(item, description="Unlimited free inference credits")), 202)
    entries = db.execute(select(AuditEntry).where(AuditEntry.action == "change.proposed")
                         ).scalars().all()
    assert [e.entity_id for e in entries] == [waiting["change_id"]]
    text = str(entries[0].data)
    assert "inference" not in text and "Pre-release" not in text
    assert entries[0].data["proposed"] == ["description"]
