"""The gifts file's campaign, appeal and fund columns: codes checked in the dry run, gifts
imported with their designation through the batched door (sealed, counted in progress)."""

from __future__ import annotations

from sqlalchemy import select

from models import Gift, GiftDesignation
from tests.builders import ok
from tests.web.test_import import DONORS_HEADER, csv_text, errors_of, upload

HEADER = "external_ref,donor_external_id,amount,currency,received_on,purpose,campaign,appeal,fund"


def _setup(api) -> dict:
    campaign = ok(api.post("/campaigns", {"code": "year-end", "name": "Year end",
                                          "starts_on": "2025-01-01", "goal": "100.00"}))
    appeal = ok(api.post("/appeals", {"code": "letter", "name": "Letter",
                                      "campaign_id": campaign["id"]}))
    ops = ok(api.post("/funds", {"code": "ops", "name": "Operations"}))
    bio = ok(api.post("/funds", {"code": "bio", "name": "Bio", "restricted": True,
                                 "purpose": "Biosecurity evaluations"}))
    return {"campaign": campaign, "appeal": appeal, "ops": ops, "bio": bio}


def test_unknown_codes_and_contradictions_are_row_errors(api, web_as, db):
    _setup(api)
    response = upload(web_as("fundraiser"), "check",
                      donors=csv_text(DONORS_HEADER, "D1,person,Dana,,,"),
                      gifts=csv_text(HEADER,
                                     "G1,D1,10.00,USD,2025-02-01,,nope,,",
                                     "G2,D1,10.00,USD,2025-02-01,restricted,,,ops",
                                     "G3,D1,10.00,USD,2025-02-01,,,,BIO"))
    errors = errors_of(response)
    assert "no campaign with the code 'nope'" in errors["gifts.csv", 2]
    assert "restricted fund" in errors["gifts.csv", 3]
    assert ("gifts.csv", 4) not in errors  # codes are case-insensitive
    assert db.execute(select(Gift)).first() is None


def test_imported_gifts_carry_their_designation(api, web_as, db, job_worker):
    made = _setup(api)
    response = upload(web_as("fundraiser"), "import",
                      donors=csv_text(DONORS_HEADER, "D1,person,Dana,,,"),
                      gifts=csv_text(HEADER,
                                     "G1,D1,60.00,USD,2025-02-01,,,letter,bio",
                                     "G2,D1,15.00,USD,2025-02-02,,year-end,,",
                                     "G3,D1,5.00,USD,2025-02-03,,,,"))
    assert response.job["status"] == "done", response.get_data(as_text=True)[:2000]
    rows = {g.external_ref: d for g, d in db.execute(
        select(Gift, GiftDesignation).outerjoin(GiftDesignation,
                                                GiftDesignation.gift_id == Gift.id))}
    db.rollback()
    assert (rows["G1"].campaign_id, rows["G1"].appeal_id, rows["G1"].fund_id) == (
        made["campaign"]["id"], made["appeal"]["id"], made["bio"]["id"])
    assert (rows["G2"].campaign_id, rows["G2"].fund_id) == (made["campaign"]["id"], None)
    assert rows["G3"] is None
    progress = ok(api.get(f"/campaigns/{made['campaign']['id']}"), 200)
    assert (progress["raised"], progress["gifts"], progress["progress"]) == ("75.00", 2,
                                                                            "0.750000")
    assert ok(api.get("/audit/verify"), 200)["ok"] is True
