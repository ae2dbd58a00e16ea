"""One reader of "accepted cash net of refunds" (app.ledger.giving): the donor list, the
donor's giving summary, the reports and campaign progress agree on the same ledger."""

from __future__ import annotations

from datetime import date

from app.ledger import campaigns, reports
from app.ledger.profile import giving_summary
from app.web.donors import giving_totals
from tests.builders import World, gift, ok


def test_the_readers_agree(api, api_as, db):
    w = World(api)
    campaign = ok(api.post("/campaigns", {"code": "all", "name": "All",
                                          "starts_on": "2024-01-01"}))
    designated = {"campaign_id": campaign["id"]}
    first = gift(api, w.donor["id"], "100.00", "2025-03-01", **designated)
    gift(api, w.donor["id"], "40.00", "2026-01-05", **designated)
    gift(api, w.donor["id"], "5000", "2026-01-06", currency="JPY", fx_rate="0.0065",
         **designated)
    gift(api, w.donor["id"], "70.00", "2026-02-01", kind="in_kind", **designated)  # not cash
    held = gift(api, w.lab_donor["id"], "900.00", "2026-01-07")
    assert held["status"] == "held"
    ok(api_as("finance").post(f"/gifts/{first['id']}/refund",
                              {"amount": "30.00", "refunded_on": "2026-02-01"}))

    expected = 10000 - 3000 + 4000 + 3250  # in-kind and the held gift do not count
    summary = giving_summary(db, w.donor["id"], "USD", date(2026, 6, 1))
    listed = giving_totals(db, [w.donor["id"], w.lab_donor["id"]], "USD")
    years = reports.donor_years(db, "USD")
    (progress,) = campaigns.progress(db, "campaign", "USD")
    db.rollback()
    assert summary.lifetime_minor == expected
    assert listed[w.donor["id"]].accepted_minor == expected
    assert w.lab_donor["id"] not in years and listed[w.lab_donor["id"]].accepted_minor == 0
    assert sum(years[w.donor["id"]].values()) == expected
    assert (progress.raised_minor, progress.gifts) == (expected, 3)
