"""The public-support test (Form 990 Schedule A, Part II) on the worked example of
docs/public-support.md, built through the JSON API and checked against figures computed
by hand there. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import get_session
from models import AuditEntry
from tests.builders import ok
from tests.public_support_example import Example, usd


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
    assert lines[2025]["unusual_grants"] == usd(200_000_000)
    assert body["total_support"] == usd(500_000_000)
    assert body["donor_limit"] == usd(10_000_000)
    assert body["excess"] == usd(95_000_000)
    assert body["public_support"] == usd(405_000_000)
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


def test_gift_ids_false_answers_the_same_without_the_id_lists(api, example):
    full = ok(api.get("/public-support?year=2025"), 200)
    lean = ok(api.get("/public-support?year=2025&gift_ids=false"), 200)
    assert all("gift_ids" not in row for row in (*lean["lines"], *lean["contributors"]))
    for row in (*full["lines"], *full["contributors"]):
        assert row["gift_count"] == len(row.pop("gift_ids"))
    assert lean == full
    assert ok(api.get("/public-support?year=2025&gift_ids=true"), 200)["lines"][0]["gift_ids"]
    assert api.get("/public-support?year=2025&gift_ids=no").status_code == 422


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


def test_schedule_b_staff_and_public_copies(api, example):
    """2025: contributions 3,220,000 (cash 3,150,000 with the unusual grant and Eve's gift,
    refunded only in 2026; Cobalt Labs' servers 70,000 in kind). The organisation meets the
    33 1/3% test, so the special rule applies: threshold max(5,000, 2% x 3,220,000) = 64,400."""
    staff = ok(api.get("/public-support/schedule-b?year=2025"), 200)
    assert staff["copy"] == "staff"
    assert staff["total_contributions"] == usd(322_000_000)
    assert staff["special_rule"] is True
    assert staff["threshold"] == usd(6_440_000)
    d, g = example.donors, example.gifts
    first, second = staff["contributors"]
    assert (first["number"], first["name"], first["type"]) == (1, "Beacon Foundation", "Person")
    assert first["address"].startswith("=HYPERLINK")
    assert first["total"] == first["cash"] == usd(200_000_000)
    assert first["cash_gift_ids"] == [g["foundation_2025"]["id"]]
    assert (second["number"], second["donor_id"], second["type"]) == (
        2, d["labs"]["id"], "Person, Noncash")
    assert (second["cash"], second["noncash"], second["total"]) == (
        usd(20_000_000), usd(7_000_000), usd(27_000_000))
    assert second["noncash_property"] == [{"description": "Donated GPU servers",
                                           "value": usd(7_000_000), "received_on": "2025-03-01",
                                           "gift_id": g["labs_servers"]["id"]}]

    public = ok(api.get("/public-support/schedule-b?year=2025&copy=public"), 200)
    text = str(public)
    for private in ("Beacon", "Cobalt", "HYPERLINK", "donor_id", "gift_id", "name", "address"):
        assert private not in text, private
    assert [(c["number"], c["total"]["minor"], c["type"]) for c in public["contributors"]] == [
        (1, 200_000_000, "Person"), (2, 27_000_000, "Person, Noncash")]
    assert public["contributors"][1]["noncash_property"] == [
        {"description": "Donated GPU servers", "value": usd(7_000_000),
         "received_on": "2025-03-01"}]
    assert api.get("/public-support/schedule-b?year=2025&copy=all").status_code == 422


def test_a_joint_gift_is_split_exactly_between_its_contributors(api):
    """One gift of 100.01 credited to three people (attributions 0.333334 / 0.333333 /
    0.333333): parts of 33.34, 33.34 and 33.33 in minor units, summing to the gift exactly,
    each limited on its own (they are not linked)."""
    from datetime import date

    from tests.builders import accepted_gift, person

    a, b, c = (person(api, f"Joint {n}") for n in "ABC")
    made = accepted_gift(api, a["id"], "100.01", date(2025, 5, 1), attributions=[
        {"donor_id": a["id"], "fraction": "0.333334"},
        {"donor_id": b["id"], "fraction": "0.333333"},
        {"donor_id": c["id"], "fraction": "0.333333"}])
    big = person(api, "Big Giver")
    accepted_gift(api, big["id"], "1000.00", date(2025, 6, 1))
    body = ok(api.get("/public-support?year=2025"), 200)
    assert body["total_support"]["minor"] == 110_001
    assert body["contributor_count"] == 4
    assert body["lines"][-1]["gift_ids"] == sorted([made["id"], body["lines"][-1]["gift_ids"][-1]])
    # limit floor(110,001 x 2%) = 2,200; Big Giver 100,000 -> 97,800; each joint part
    # (3,334 / 3,334 / 3,333) -> 1,134 / 1,134 / 1,133.
    assert body["donor_limit"]["minor"] == 2_200
    assert body["excess"]["minor"] == 97_800 + 1_134 + 1_134 + 1_133
    parts = sorted(c["total"]["minor"] for c in body["contributors"] if c["gift_ids"] == [made["id"]])
    assert parts == [3_333, 3_334, 3_334]


def test_merging_donor_records_carries_their_public_support_facts(api):
    """Alice's second record is linked to Bob and to Alice herself, and is a public charity
    (for the test's sake): after merging it into Alice, the self-link is gone, the link to
    Bob is Alice's, and the class is Alice's."""
    from datetime import date

    from tests.builders import accepted_gift, person

    alice, alice2, bob = person(api, "Alice Aster"), person(api, "Alice M Aster"), \
        person(api, "Bob Aster")
    own = ok(api.post("/public-support/links", {"donor_id": alice["id"],
                                                "other_donor_id": alice2["id"],
                                                "relation": "family", "reason": "same?"}))
    ok(api.post("/public-support/links", {"donor_id": bob["id"], "other_donor_id": alice2["id"],
                                          "relation": "spouse", "reason": "married"}))
    ok(api.post("/public-support/classes", {"donor_id": alice2["id"],
                                            "support_class": "public_charity", "reason": "x"}))
    ok(api.post(f"/donors/{alice['id']}/merge", {"duplicate_id": alice2["id"]}), 200)
    accepted_gift(api, alice["id"], "500.00", date(2025, 1, 2))
    body = ok(api.get("/public-support?year=2025"), 200)
    assert [(link["donor_ids"], link["relation"]) for link in body["links"]] == [
        ([alice["id"], bob["id"]], "spouse")]
    assert own["id"] not in [link["id"] for link in body["links"]]
    (group,) = body["contributors"]
    assert group["unlimited"] is True
    assert group["donors"][0]["id"] == alice["id"]
    assert group["donors"][0]["support_class"] == "public_charity"


def test_the_staff_copy_needs_the_export_permission_and_each_view_is_audited(app, api, api_as,
                                                                              example):
    """Names and postal addresses are an export's (finance, admin): a role that may only
    read gets 403 for the staff copy, which stays the default (its meaning unchanged), and
    the public copy as before. Each view of the staff copy is an audited export."""
    for role in ("viewer", "fundraiser", "reviewer"):
        reader = api_as(role)
        for query in ("", "&copy=staff"):
            refused = reader.get(f"/public-support/schedule-b?year=2025{query}")
            assert refused.status_code == 403, (role, query)
            assert "Beacon" not in refused.get_data(as_text=True)
        public = ok(reader.get("/public-support/schedule-b?year=2025&copy=public"), 200)
        assert public["copy"] == "public" and "name" not in public["contributors"][0]
    finance = api_as("finance")
    staff = ok(finance.get("/public-support/schedule-b?year=2025"), 200)
    assert staff["copy"] == "staff" and staff["contributors"][0]["name"] == "Beacon Foundation"
    ok(api.get("/public-support/schedule-b?year=2025&copy=staff"), 200)
    with app.app_context():
        entries = get_session().execute(
            select(AuditEntry.actor_id, AuditEntry.data)
            .where(AuditEntry.action == "export.schedule_b_staff").order_by(AuditEntry.id)).all()
    assert [(who, data["format"], data["copy"]) for who, data in entries] == [
        (finance.user_id, "json", "staff"), (api.user_id, "json", "staff")]
