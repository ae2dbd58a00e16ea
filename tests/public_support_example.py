"""The worked example of docs/public-support.md, built through the JSON API: five years
(2021-2025), large donors, a married couple, a company and its subsidiary, a government
grant, an unusual grant and refunds. Used by the API, page and CLI tests."""

from __future__ import annotations

from datetime import date

from tests.builders import accepted_gift, gift, ok, org_donor, organization, person


def usd(minor: int) -> dict:
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
        # An address a spreadsheet would run as a formula: CSV exports must neutralise it.
        foundation = ok(post("/donors", {"type": "organization", "name": "Beacon Foundation",
                                         "category": "foundation",
                                         "postal_address": "=HYPERLINK(\"http://x\") 1 Main St"}))
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
        g["labs_servers"] = accepted_gift(api, labs["id"], "70000.00", date(2025, 3, 1),
                                          kind="in_kind", description="Donated GPU servers")
        g["held"] = gift(api, dana["id"], "1500000.00", date(2022, 1, 1))
        assert g["held"]["status"] == "held"
        self.gifts = g

    def ids(self, *names) -> list[int]:
        return sorted(self.gifts[n]["id"] for n in names)
