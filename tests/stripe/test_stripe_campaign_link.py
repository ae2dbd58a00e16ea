"""The donate link's campaign (/donate?campaign=code): an open campaign is kept with the
donation and carried by its gift; anything else the link says is ignored."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEntry, Gift, GiftDesignation, OnlineDonation
from tests.builders import ok
from tests.stripe.stripe_stubs import (
    expect_settlement,
    post_event,
    session_completed,
    start_donation,
)


@pytest.fixture
def campaigns(api) -> dict[str, int]:
    made = {}
    for code, extra in (("spring", {}), ("closed", {"active": False}),
                        ("finished", {"ends_on": "2021-12-31"}), ("later", {
                            "starts_on": "2999-01-01"})):
        body = {"code": code, "name": f"The {code} campaign", "starts_on": "2021-01-01",
                **extra}
        made[code] = ok(api.post("/campaigns", body))["id"]
    return made


def _donate(client, httpserver, db, query: str, session_id: str) -> OnlineDonation:
    return start_donation(client, httpserver, db, session_id, query, amount="50")


def test_an_open_campaign_in_the_link_is_carried_to_the_gift(client, httpserver, db,
                                                             campaigns):
    page = client.get("/donate?campaign=SPRING").get_data(as_text=True)
    assert "The spring campaign" in page
    assert "campaign=spring" in page  # the form and the currency links keep it
    donation = _donate(client, httpserver, db, "?campaign=spring", "cs_test_spring")
    assert donation.campaign_id == campaigns["spring"]
    started = db.execute(select(AuditEntry).where(
        AuditEntry.action == "donation.started")).scalar_one()
    assert started.data["campaign_id"] == campaigns["spring"]
    db.rollback()

    expect_settlement(httpserver, "pi_1", 5000)
    answer = post_event(client, session_completed(donation))
    assert "recorded: accept" in answer.get_json()["outcome"], answer.get_json()
    db.rollback()
    gift = db.execute(select(Gift)).scalar_one()
    designation = db.execute(select(GiftDesignation)).scalar_one()
    db.rollback()
    assert (designation.gift_id, designation.campaign_id) == (gift.id, campaigns["spring"])


@pytest.mark.parametrize("code", ["nope", "closed", "finished", "later", "x" * 300,
                                  "<script>"])
def test_anything_else_in_the_link_is_ignored(client, httpserver, db, campaigns, code):
    page = client.get(f"/donate?campaign={code}").get_data(as_text=True)
    assert 'id="campaign"' not in page and f"campaign={code}" not in page
    donation = _donate(client, httpserver, db, f"?campaign={code}", f"cs_test_{len(code)}")
    assert donation.campaign_id is None
