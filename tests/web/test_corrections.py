"""Voiding and correcting a gift from its staff page, with the page's own form: finance may,
a fundraiser may not; the mistaken gift stays, marked voided, and names its replacement."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import GiftCorrection
from tests import builders as b
from tests.web.ledger_reads import objects, text
from tests.webtools import post_refused, submit


def test_finance_corrects_a_typed_amount_from_the_gift_page(api, web_as, db):
    donor = b.person(api, "Tina Typo")
    made = b.gift(api, donor["id"], "5000.00", "2026-03-01")
    finance = web_as("finance")
    page = f"/staff/gifts/{made['id']}"
    response = submit(finance, page, {"correct-reason": "The cheque says 50.00", "correct-amount": "50.00"},
                      action=f"/staff/gifts/{made['id']}/correct", follow_redirects=True)
    assert response.status_code == 200
    shown = text(response)
    assert f"Gift {made['id']} voided and corrected" in shown
    assert re.search(rf"Recorded in place of .*gift #{made['id']}", shown)
    [correction] = objects(db, select(GiftCorrection))
    assert (correction.kind, correction.reason) == ("correction", "The cheque says 50.00")
    replaced = b.ok(api.get(f"/gifts/{correction.replacement_gift_id}"), 200)
    assert (replaced["amount"], replaced["status"]) == ("50.00", "accepted")
    old = text(finance.get(page))
    assert 'id="voided-tag"' in old and "The cheque says 50.00" in old
    assert 'id="correct-gift"' not in old  # voided once


def test_voiding_needs_a_reason_and_the_permission(api, web_as, db):
    donor = b.person(api, "Tina Typo")
    made = b.gift(api, donor["id"], "20.00", "2026-03-01")
    page = f"/staff/gifts/{made['id']}"
    finance = web_as("finance")
    response = submit(finance, page, {"correct-reason": ""}, action=f"/staff/gifts/{made['id']}/correct")
    assert response.status_code == 422
    assert objects(db, select(GiftCorrection)) == []
    fundraiser = web_as("fundraiser")
    assert 'id="correct-gift"' not in text(fundraiser.get(page))
    refused = post_refused(fundraiser, page, f"/staff/gifts/{made['id']}/correct",
                           {"correct-reason": "mistake"})
    assert refused.status_code == 403
    voided = submit(finance, page, {"correct-reason": "Recorded twice"},
                    action=f"/staff/gifts/{made['id']}/correct", follow_redirects=True)
    assert f"Gift {made['id']} voided." in text(voided)
    [correction] = objects(db, select(GiftCorrection))
    assert (correction.kind, correction.replacement_gift_id) == ("void", None)
