"""The public-support test (Form 990 Schedule A, Part II) on the worked example of
docs/public-support.md, built through the JSON API and checked against figures computed
by hand there. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from app.db import get_session
from models import AuditEntry
from tests.builders import accepted_gift, gift, ok, org_donor, organization, person


def _usd(minor: int) -> dict:
    return {"minor": minor, "amount": f"{minor // 100}.{minor % 100:02d}"}


class Example:
    """The worked example: five years 2021-2025, tax year 2025 (amounts in dollars)."""

    def __init__(self, api):
        self.api = api
        post = api.post
        alice = person(api, "Alice Aster")
        bob = person(api, "Bob Aster")
        self.aster_link = ok(post("/public-support/links", {
            "donor_id": alice["id"], "other_donor_id": bob["id"], "relation": "spouse",
            "reason": "married couple"}))
        holdings_org = organization(api, "Cobalt Holdings Inc")
        labs_org = organization(api, "Cobalt Labs LLC", parent_id=holdings_org["id"])
        holdings = org_donor(api, "Cobalt Holdings Inc", holdings_org["id"])
        labs = org_donor(api, "Cobalt Labs LLC", labs_org["id"])
        council = org_donor(api, "State Arts Council", category="other")
        ok(post("/public-support/classes", {"donor_id": council["id"],
                                            "support_class": "governmental_unit",
                                            "reason": "a state agency"}))
        foundation = org_donor(api, "Beacon Foundation", category="foundation")
        dana = person(api, "Dana Large")
        eve = person(api, "Eve Early")
        self.small = [person(api, f"Friend {n:02d}") for n in range(30)]
        self.donors = {"alice": alice, "bob": bob, "holdings": holdings, "labs": labs,
                       "council": council, "foundation": foundation, "dana": dana, "eve": eve}

        g = {}
        g["dana_2021"] = accepted_gift(api, dana["id"], "400000.00", date(2021, 3, 1))
        g["alice_2022"] = accepted_gift(api, alice["id"], "80000.00", date(2022, 5, 1))
        g["holdings_2023"] = accepted_gift(api, holdings["id"], "300000.00", date(2023, 2, 1))
        g["dana_2023"] = accepted_gift(api, dana["id"], "250000.00", date(2023, 6, 1))
        ok(post(f"/gifts/{g['dana_2023']['id']}/refund",
                {"amount": "50000.00", "refunded_on": "2024-03-01", "reason": "returned"}))
        g["bob_2024"] = accepted_gift(api, bob["id"], "70000.00", date(2024, 4, 1))
        g["council_2024"] = accepted_gift(api, council["id"], "1000000.00", date(2024, 9, 1))
        g["labs_2025"] = accepted_gift(api, labs["id"], "200000.00", date(2025, 1, 15))
        g["eve_2025"] = accepted_gift(api, eve["id"], "50000.00", date(2025, 7, 1))
        # A refund after the tax year closed does not rewrite the year.
        ok(post(f"/gifts/{g['eve_2025']['id']}/refund",
                {"amount": "50000.00", "refunded_on": "2026-02-01", "reason": "returned"}))
        g["foundation_2025"] = accepted_gift(api, foundation["id"], "2000000.00",
                                             date(2025, 10, 1))
        self.unusual = ok(post("/public-support/unusual-grants", {
            "gift_id": g["foundation_2025"]["id"],
            "reason": "one-off grant attracted by the organisation's public status"}))
        self.small_gifts = []
        for friend in self.small:
            for year in (2021, 2023, 2025):
                self.small_gifts.append(
                    accepted_gift(api, friend["id"], "30000.00", date(year, 11, 1)))
        # Not counted: outside the five years, in-kind, and a gift still held.
        g["outside"] = accepted_gift(api, dana["id"], "90000.00", date(2020, 12, 31))
        g["in_kind"] = accepted_gift(api, eve["id"], "5000.00", date(2024, 1, 1),
                                     kind="in_kind", description="compute credits")
        g["held"] = gift(api, dana["id"], "1500000.00", date(2022, 1, 1))
        assert g["held"]["status"] == "held"
        self.gifts = g

    def ids(self, *names) -> list[int]:
        return sorted(self.gifts[n]["id"] for n in names)


@pytest.fixture
def example(api):
    return Example(api)


def _small_ids(example, year) -> list[int]:
    return [g["id"] for g in example.small_gifts if g["received_on"].startswith(str(year))]


def test_worked_example_matches_the_hand_computation(api, example):
    body = ok(api.get("/public-support?year=2025"), 200)
    assert body["years"] == [2021, 2022, 2023, 2024, 2025]
    assert body["currency"] == "USD"
    lines = {line["year"]: line for line in body["lines"]}
    # Line 1 by year (docs/public-support.md, "The worked example").
    assert {y: lines[y]["contributions"]["minor"] for y in lines} == {
        2021: 130_000_000, 2022: 8_000_000, 2023: 140_000_000, 2024: 107_000_000,
        2025: 115_000_000}
    assert lines[2021]["gift_ids"] == sorted(example.ids("dana_2021") + _small_ids(example, 2021))
    assert lines[2023]["gift_ids"] == sorted(
        example.ids("holdings_2023", "dana_2023") + _small_ids(example, 2023))
    assert lines[2024]["gift_ids"] == example.ids("bob_2024", "council_2024")
    assert lines[2025]["unusual_gift_ids"] == example.ids("foundation_2025")
    assert lines[2025]["unusual_grants"] == _usd(200_000_000)
    assert body["total_support"] == _usd(500_000_000)
    assert body["donor_limit"] == _usd(10_000_000)
    assert body["excess"] == _usd(95_000_000)
    assert body["public_support"] == _usd(405_000_000)
    assert body["percentage"] == "81.00%"
    assert body["percentage_exact"] == "81/100"
    assert body["meets_support_test"] is True
    assert body["meets_facts_and_circumstances_floor"] is True

    by_donors = {tuple(d["id"] for d in c["donors"]): c for c in body["contributors"]}
    d = example.donors
    asters = by_donors[(d["alice"]["id"], d["bob"]["id"])]
    assert (asters["total"]["minor"], asters["excess"]["minor"]) == (15_000_000, 5_000_000)
    assert asters["gift_ids"] == example.ids("alice_2022", "bob_2024")
    cobalt = by_donors[(d["holdings"]["id"], d["labs"]["id"])]
    assert (cobalt["total"]["minor"], cobalt["excess"]["minor"]) == (50_000_000, 40_000_000)
    assert cobalt["gift_ids"] == example.ids("holdings_2023", "labs_2025")
    dana = by_donors[(d["dana"]["id"],)]
    assert (dana["total"]["minor"], dana["excess"]["minor"]) == (60_000_000, 50_000_000)
    assert dana["gift_ids"] == example.ids("dana_2021", "dana_2023")
    council = by_donors[(d["council"]["id"],)]
    assert council["unlimited"] is True
    assert (council["total"]["minor"], council["excess"]["minor"]) == (100_000_000, 0)
    assert council["donors"][0]["support_class"] == "governmental_unit"
    # Eve (50,000) and the 30 friends (90,000 each) are under the limit and not listed.
    assert len(body["contributors"]) == 4
    assert body["contributor_count"] == 4 + 1 + 30
    assert body["unusual_grants"] == [{"gift_id": example.gifts["foundation_2025"]["id"],
                                       "reason": example.unusual["reason"]}]


def test_unmarking_the_unusual_grant_recomputes_with_it(api, example):
    """The contrast in docs/public-support.md: without the exclusion the grant counts and
    raises total support, the limit and every excess."""
    grant = example.gifts["foundation_2025"]["id"]
    ok(api.delete(f"/public-support/unusual-grants/{grant}",
                  json={"reason": "not unusual after all"}), 200)
    body = ok(api.get("/public-support?year=2025"), 200)
    assert body["total_support"]["minor"] == 700_000_000
    assert body["donor_limit"]["minor"] == 14_000_000
    assert body["excess"]["minor"] == 269_000_000
    assert body["public_support"]["minor"] == 431_000_000
    assert body["percentage"] == "61.57%"
    assert body["percentage_exact"] == "431/700"


def test_a_later_tax_year_drops_the_first_year_and_counts_the_later_refund(api, example):
    body = ok(api.get("/public-support?year=2026"), 200)
    assert body["years"] == [2022, 2023, 2024, 2025, 2026]
    lines = {line["year"]: line["contributions"]["minor"] for line in body["lines"]}
    # Eve's gift refunded in full in 2026: in the 2026 computation it counts nothing.
    assert lines == {2022: 8_000_000, 2023: 140_000_000, 2024: 107_000_000,
                     2025: 110_000_000, 2026: 0}


def test_the_facts_are_audited_and_need_a_reviewer(app, api, api_as, example):
    fundraiser = api_as("fundraiser")
    d = example.donors
    refused = fundraiser.post("/public-support/links", {
        "donor_id": d["dana"]["id"], "other_donor_id": d["eve"]["id"], "relation": "family",
        "reason": "sisters"})
    assert refused.status_code == 403
    refused = fundraiser.post("/public-support/unusual-grants", {
        "gift_id": example.gifts["dana_2021"]["id"], "reason": "x"})
    assert refused.status_code == 403
    ok(fundraiser.get("/public-support?year=2025"), 200)  # reading is everyone's
    # A link once only, either way round.
    again = api.post("/public-support/links", {
        "donor_id": d["bob"]["id"], "other_donor_id": d["alice"]["id"], "relation": "spouse",
        "reason": "again"})
    assert again.status_code == 409, again.get_json()
    with app.app_context():
        actions = [a for a in get_session().execute(
            select(AuditEntry.action).order_by(AuditEntry.id)).scalars()
            if a.startswith("public_support.")]
    assert actions == ["public_support.linked", "public_support.class_set",
                       "public_support.unusual_grant"]
